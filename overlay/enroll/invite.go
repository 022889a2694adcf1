package enroll

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/chordphone/chordphone/overlay/identity"
)

// InviteScheme is the URI scheme of join links (the desktop entry registers
// x-scheme-handler/chordphone).
const InviteScheme = "chordphone"

// Invitation is a join link an operator hands out: it names the overlay and
// pins its CA (the overlay's root-cert, RFC 6940 §11.1) by SHA-256, so that
// a phone trusts exactly that CA for the configuration server (§11.2) and
// the enrollment server (§11.3):
//
//	chordphone:join?overlay=lab.example.org&ca=sha256:HEX[&user=alice][&config=URL]
type Invitation struct {
	Overlay string
	// CAFingerprint is the SHA-256 of the CA certificate (DER), lower-case hex.
	CAFingerprint string
	User          string // optional: the account the invitation is for
	Config        string // optional: the configuration URL, when not https://OVERLAY/.well-known/reload-config
}

// String is the link.
func (inv Invitation) String() string {
	q := []string{"overlay=" + url.QueryEscape(inv.Overlay), "ca=sha256:" + inv.CAFingerprint}
	if inv.User != "" {
		q = append(q, "user="+url.QueryEscape(inv.User))
	}
	if inv.Config != "" {
		q = append(q, "config="+url.QueryEscape(inv.Config))
	}
	return InviteScheme + ":join?" + strings.Join(q, "&")
}

// IsInvitation reports whether s looks like a join link (it may still not parse).
func IsInvitation(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), InviteScheme+":")
}

// ParseInvitation reads a join link. Its error messages are written for
// the person who pasted it.
func ParseInvitation(s string) (Invitation, error) {
	s = strings.TrimSpace(s)
	if !IsInvitation(s) {
		return Invitation{}, errors.New("an invitation link starts with chordphone:join?")
	}
	rest := s[len(InviteScheme)+1:]
	rest = strings.TrimPrefix(rest, "//") // chordphone://join?... as some programs rewrite it
	what, query, _ := strings.Cut(rest, "?")
	if !strings.EqualFold(strings.TrimSuffix(what, "/"), "join") {
		return Invitation{}, errors.New("an invitation link starts with chordphone:join?")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Invitation{}, errors.New("the invitation link is damaged (copy all of it)")
	}
	inv := Invitation{Overlay: q.Get("overlay"), User: q.Get("user"), Config: q.Get("config")}
	if err := identity.ValidOverlayName(inv.Overlay); err != nil {
		return Invitation{}, errors.New("the invitation link names no valid overlay (copy all of it)")
	}
	if inv.CAFingerprint, err = NormalizeFingerprint(q.Get("ca")); err != nil {
		return Invitation{}, errors.New("the invitation link has no valid CA fingerprint (copy all of it)")
	}
	if inv.Config != "" && !strings.HasPrefix(inv.Config, "https://") {
		return Invitation{}, errors.New("the invitation's configuration URL is not https")
	}
	return inv, nil
}

// CAFingerprint is the SHA-256 of a CA certificate as invitations and
// "overlay-server invite" give it: lower-case hex.
func CAFingerprint(ca *x509.Certificate) string { return identity.Fingerprint(ca) }

// NormalizeFingerprint accepts a SHA-256 fingerprint as people copy it
// ("sha256:HEX", "AB:CD:...", "ab12 cd34 ...") and returns lower-case hex.
func NormalizeFingerprint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256:") {
		s = s[7:]
	}
	s = strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.ToLower(s))
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return s, nil
}
