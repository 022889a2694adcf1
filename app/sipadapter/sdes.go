package sipadapter

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v2"
)

// SDES-SRTP (RFC 4568) on the user agent's side: when a UA offers RTP/SAVP with a=crypto, the
// adapter answers with its own key and both directions are SRTP (RFC 3711).

// sdesSuites are the crypto suites the adapter takes (RFC 4568 §6.2), best first.
var sdesSuites = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
}

// errNoCryptoSuite: an RTP/SAVP offer without a suite the adapter knows (answer 488).
var errNoCryptoSuite = errors.New("no known SDES crypto suite (the adapter takes AES_CM_128_HMAC_SHA1_80 and _32)")

// sdes is one call's SRTP keys: the UA's (to decrypt what it sends) and ours.
type sdes struct {
	in, out *srtp.Context
	line    string // our a=crypto attribute value
}

// isSAVP reports whether a media line asks for SRTP (RTP/SAVP, RFC 3711 §12).
func isSAVP(m *sdp.MediaDescription) bool {
	return strings.Join(m.MediaName.Protos, "/") == "RTP/SAVP"
}

// newSDES takes the first usable a=crypto of an RTP/SAVP media line and makes our key for
// the same tag and suite (RFC 4568 §7.1.1: the answer picks one offered attribute).
func newSDES(m *sdp.MediaDescription) (*sdes, error) {
	for _, a := range m.Attributes {
		if a.Key != "crypto" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 3 {
			continue
		}
		profile, ok := sdesSuites[f[1]]
		if !ok {
			continue
		}
		key, salt, err := inlineKey(f[2])
		if err != nil {
			return nil, err
		}
		in, err := srtp.CreateContext(key, salt, profile)
		if err != nil {
			return nil, fmt.Errorf("the UA's SRTP key: %w", err)
		}
		ours := make([]byte, 30)
		_, _ = rand.Read(ours)
		out, err := srtp.CreateContext(ours[:16], ours[16:], profile)
		if err != nil {
			return nil, fmt.Errorf("our SRTP key: %w", err)
		}
		line := fmt.Sprintf("%s %s inline:%s", f[0], f[1], base64.StdEncoding.EncodeToString(ours))
		return &sdes{in: in, out: out, line: line}, nil
	}
	return nil, errNoCryptoSuite
}

// inlineKey decodes "inline:BASE64[|lifetime][|MKI:len]" into the 16-byte master key and the
// 14-byte salt (RFC 4568 §6.1, §6.2).
func inlineKey(param string) (key, salt []byte, err error) {
	v, ok := strings.CutPrefix(param, "inline:")
	if !ok {
		return nil, nil, fmt.Errorf("crypto key parameter %q is not inline", param)
	}
	v, rest, _ := strings.Cut(v, "|")
	if strings.Contains(rest, ":") {
		return nil, nil, errors.New("crypto keys with an MKI are not supported")
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(v); err != nil {
			return nil, nil, fmt.Errorf("crypto key: %w", err)
		}
	}
	if len(b) != 30 {
		return nil, nil, fmt.Errorf("crypto key of %d bytes, want 30", len(b))
	}
	return b[:16], b[16:], nil
}
