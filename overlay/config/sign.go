package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // rsa-sha1 signatures of RFC 6940 §11.1.1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Signing of configuration documents (RFC 6940 §11.1): the configuration
// element, from the first "<" of "<configuration" to the last ">" of
// "</configuration>", is a binary blob signed with the standard SecurityBlock
// of §6.3.4 (certificates plus Signature), base64 encoded in the following
// <signature> element. The signature input is the blob alone. kind-blocks
// are signed the same way over the <kind> element.

// SignBlob signs data with id and returns the encoded SecurityBlock
// (RFC 6940 §6.3.4) carrying id's certificate chain.
func SignBlob(data []byte, id *identity.Identity) ([]byte, error) {
	var alg wire.SignatureAndHashAlgorithm
	var opts crypto.SignerOpts = crypto.SHA256
	switch id.Key.Public().(type) {
	case *ecdsa.PublicKey:
		alg = wire.AlgECDSASHA256
	case *rsa.PublicKey:
		alg = wire.AlgRSASHA256
	default:
		return nil, fmt.Errorf("cannot sign with a %T key", id.Key.Public())
	}
	digest := sha256.Sum256(data)
	value, err := id.Key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("sign configuration: %w", err)
	}
	certHash := sha256.Sum256(id.Cert().Raw)
	sig := wire.Signature{
		Algorithm: alg,
		Identity:  wire.SignerIdentity{Type: wire.IdentityCertHash, HashAlg: wire.HashSHA256, Hash: certHash[:]},
		Value:     value,
	}
	sb, err := sig.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// struct { GenericCertificate certificates<0..2^16-1>; Signature signature; } SecurityBlock;
	var certs []byte
	for _, c := range id.Chain {
		certs = append(certs, byte(wire.CertificateX509))
		certs = binary.BigEndian.AppendUint16(certs, uint16(len(c.Raw)))
		certs = append(certs, c.Raw...)
	}
	if len(certs) > 0xffff {
		return nil, errors.New("certificate chain too large for a SecurityBlock")
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(certs)))
	out = append(out, certs...)
	return append(out, sb...), nil
}

// decodeSecurityBlock splits an encoded SecurityBlock.
func decodeSecurityBlock(b []byte) ([]*x509.Certificate, wire.Signature, error) {
	var sig wire.Signature
	if len(b) < 2 {
		return nil, sig, errors.New("security block truncated")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return nil, sig, errors.New("security block: certificate list longer than the block")
	}
	list, rest := b[:n], b[n:]
	var certs []*x509.Certificate
	for len(list) > 0 {
		if len(list) < 3 {
			return nil, sig, errors.New("security block: truncated certificate")
		}
		typ, l := list[0], int(binary.BigEndian.Uint16(list[1:]))
		list = list[3:]
		if l > len(list) {
			return nil, sig, errors.New("security block: certificate longer than the list")
		}
		if wire.CertificateType(typ) == wire.CertificateX509 {
			c, err := x509.ParseCertificate(list[:l])
			if err != nil {
				return nil, sig, fmt.Errorf("security block: %w", err)
			}
			certs = append(certs, c)
		}
		list = list[l:]
	}
	if err := sig.UnmarshalBinary(rest); err != nil {
		return nil, sig, fmt.Errorf("security block: %w", err)
	}
	return certs, sig, nil
}

func hashFor(h wire.HashAlgorithm) (crypto.Hash, error) {
	switch h {
	case wire.HashSHA1:
		return crypto.SHA1, nil
	case wire.HashSHA256:
		return crypto.SHA256, nil
	case wire.HashSHA384:
		return crypto.SHA384, nil
	case wire.HashSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("unsupported hash algorithm %d", h)
}

func sum(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(data) //nolint:gosec
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return s[:]
	case crypto.SHA512:
		s := sha512.Sum512(data)
		return s[:]
	default:
		s := sha256.Sum256(data)
		return s[:]
	}
}

// VerifyBlob checks an encoded SecurityBlock over data and returns the
// signer's certificate and the other certificates of the block. It checks
// only the signature, not whether the signer is trusted.
func VerifyBlob(data, block []byte) (signer *x509.Certificate, others []*x509.Certificate, err error) {
	certs, sig, err := decodeSecurityBlock(block)
	if err != nil {
		return nil, nil, err
	}
	if sig.Identity.Type != wire.IdentityCertHash && sig.Identity.Type != wire.IdentityCertHashNodeID {
		return nil, nil, fmt.Errorf("signer identity type %d does not name a certificate", sig.Identity.Type)
	}
	ih, err := hashFor(sig.Identity.HashAlg)
	if err != nil {
		return nil, nil, fmt.Errorf("signer identity: %w", err)
	}
	for _, c := range certs {
		match := false
		if sig.Identity.Type == wire.IdentityCertHash {
			match = bytes.Equal(sum(ih, c.Raw), sig.Identity.Hash)
		} else { // H(NodeId || certificate)
			for _, id := range identity.NodeIDsFromCert(c) {
				match = match || bytes.Equal(sum(ih, append(id[:], c.Raw...)), sig.Identity.Hash)
			}
		}
		if match {
			signer = c
		} else {
			others = append(others, c)
		}
	}
	if signer == nil {
		return nil, nil, errors.New("the signer's certificate is not in the security block")
	}
	h, err := hashFor(sig.Algorithm.Hash)
	if err != nil {
		return nil, nil, err
	}
	digest := sum(h, data)
	switch pub := signer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if sig.Algorithm.Signature != wire.SignatureECDSA || !ecdsa.VerifyASN1(pub, digest, sig.Value) {
			return nil, nil, ErrBadSignature
		}
	case *rsa.PublicKey:
		if sig.Algorithm.Signature != wire.SignatureRSA || rsa.VerifyPKCS1v15(pub, h, digest, sig.Value) != nil {
			return nil, nil, ErrBadSignature
		}
	default:
		return nil, nil, fmt.Errorf("unsupported signer key %T", signer.PublicKey)
	}
	return signer, others, nil
}

// VerifyOptions controls Config.Verify.
type VerifyOptions struct {
	// Previous is the previously accepted configuration of this overlay.
	// When set, the signer must be one of its configuration-signers and
	// chain to its root-certs (RFC 6940 §11.1: "signed by one of the
	// configuration-signer elements from the previous extant
	// configuration"), and the sequence must not go back. When nil the
	// document is checked against itself (first contact, whose
	// authenticity comes from the HTTPS fetch of §11.2).
	Previous *Config
	// Now is the time for expiration checks; zero means time.Now().
	Now time.Time
	// AllowUnsigned accepts a document without signatures (a local file
	// for a self-signed overlay).
	AllowUnsigned bool
}

// Verify checks the configuration's signature and its kind-block
// signatures (RFC 6940 §11.1).
func (c *Config) Verify(o VerifyOptions) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if c.Expired(now) {
		return &Error{Element: "configuration expiration", Value: c.Expiration.Format(time.RFC3339), Msg: "the configuration has expired"}
	}
	trust := c
	if o.Previous != nil {
		trust = o.Previous
		if c.Sequence < o.Previous.Sequence {
			return &Error{Element: "configuration sequence", Value: fmt.Sprint(c.Sequence),
				Msg: fmt.Sprintf("older than the configuration already accepted (sequence %d)", o.Previous.Sequence)}
		}
	}
	if c.Signature == nil {
		if o.AllowUnsigned {
			return nil
		}
		return &Error{Element: "signature", Msg: fmt.Sprintf("configuration of overlay %s is not signed", c.InstanceName), Err: ErrUnsigned}
	}
	signer, others, err := VerifyBlob(c.Raw, c.Signature)
	if err != nil {
		if errors.Is(err, ErrBadSignature) {
			return &Error{Element: "signature", Msg: fmt.Sprintf("configuration of overlay %s was altered after signing, or signed with another key", c.InstanceName), Err: err}
		}
		return &Error{Element: "signature", Msg: "cannot check", Err: err}
	}
	if err := trust.checkSigner(signer, others, trust.ConfigurationSigners, "configuration-signer", now); err != nil {
		return err
	}
	ks := c.Kinds
	if o.AllowUnsigned { // kind-blocks may be unsigned as well; signed ones must verify
		ks = nil
		for _, k := range c.Kinds {
			if k.Signature != nil {
				ks = append(ks, k)
			}
		}
	}
	// "kind-block elements MUST be signed by a node listed in the kind-signers block of
	// the current configuration"
	return c.VerifyKinds(ks, now)
}

func (k Kind) label() string {
	if k.Name != "" {
		return fmt.Sprintf("kind name=%q", k.Name)
	}
	return fmt.Sprintf("kind id=\"%d\"", k.ID)
}

func (c *Config) checkSigner(signer *x509.Certificate, others []*x509.Certificate, allowed []string, role string, now time.Time) error {
	ids := identity.NodeIDsFromCert(signer)
	ok := false
	for _, id := range ids {
		ok = ok || slices.Contains(allowed, hex.EncodeToString(id[:]))
	}
	if !ok {
		return &Error{Element: "signature", Msg: fmt.Sprintf("signed by Node-ID %s, which is not a %s of overlay %s", hexIDs(ids), role, c.InstanceName)}
	}
	if err := c.trustCert(signer, others, now); err != nil {
		return &Error{Element: "signature", Msg: fmt.Sprintf("%s certificate is not trusted", role), Err: err}
	}
	return nil
}

func hexIDs(ids []wire.NodeID) string {
	if len(ids) == 0 {
		return "(none)"
	}
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id.String()
	}
	return s
}
