package identity

import (
	"crypto/sha1" //nolint:gosec // RFC 6940 §11.1 requires sha1 support for self-signed Node-IDs.
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"

	"github.com/chordphone/chordphone/overlay/wire"
)

// NodeIDLen is the Node-ID length this implementation uses (RFC 6940
// §11.1 node-id-length default, 128 bits).
const NodeIDLen = wire.NodeIDSize

// Digest names the hash a self-signed certificate's Node-ID is computed with
// (RFC 6940 §11.1 self-signed-permitted "digest" attribute).
type Digest string

// Digests every implementation must support (RFC 6940 §11.1).
const (
	DigestSHA1   Digest = "sha1"
	DigestSHA256 Digest = "sha256"
)

func (d Digest) newHash() (hash.Hash, error) {
	switch d {
	case DigestSHA1:
		return sha1.New(), nil //nolint:gosec // required by RFC 6940 §11.1
	case DigestSHA256, "":
		return sha256.New(), nil
	default:
		return nil, fmt.Errorf("unknown self-signed digest %q (want sha1 or sha256)", string(d))
	}
}

// SelfSignedNodeID computes the Node-ID of a self-signed certificate from the
// DER subjectPublicKeyInfo (RFC 6940 §11.3.1). With count == 1 it is the
// high-order bits of digest(spki); with several Node-IDs the 1-based index is
// prepended as a 4-byte big-endian integer: digest(index || spki).
func SelfSignedNodeID(spki []byte, d Digest, index, count int) (wire.NodeID, error) {
	var id wire.NodeID
	h, err := d.newHash()
	if err != nil {
		return id, err
	}
	if count > 1 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(index))
		h.Write(b[:])
	}
	h.Write(spki)
	copy(id[:], h.Sum(nil))
	return id, nil
}

// NodeIDURI returns the RELOAD URI (RFC 6940 §14.15) naming the peer with
// the given Node-ID: the destination list is a single Destination of type
// node(1), length 16 (RFC 6940 §6.3.2.2), hex encoded.
func NodeIDURI(id wire.NodeID, overlay string) string {
	return "reload://0110" + hex.EncodeToString(id[:]) + "@" + overlay + "/"
}

// ParseNodeIDURI parses a RELOAD URI carrying a single node_id destination.
// It also accepts the short form "reload:<hex node-id>@overlay" that some
// implementations write.
func ParseNodeIDURI(s string) (id wire.NodeID, overlay string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return id, "", fmt.Errorf("reload URI %q: %w", s, err)
	}
	if u.Scheme != "reload" {
		return id, "", fmt.Errorf("URI %q is not a reload URI", s)
	}
	var dest, ov string
	switch {
	case u.Opaque != "": // reload:HEX@overlay
		d, o, ok := strings.Cut(u.Opaque, "@")
		if !ok {
			return id, "", fmt.Errorf("reload URI %q has no overlay", s)
		}
		dest, ov = d, o
		if raw, err := hex.DecodeString(dest); err == nil && len(raw) == NodeIDLen {
			copy(id[:], raw)
			return id, ov, nil
		}
	default: // reload://DEST@overlay/
		if u.User == nil {
			return id, "", fmt.Errorf("reload URI %q has no destination", s)
		}
		dest, ov = u.User.Username(), u.Host
	}
	if ov == "" {
		return id, "", fmt.Errorf("reload URI %q has no overlay", s)
	}
	raw, err := hex.DecodeString(dest)
	if err != nil {
		return id, "", fmt.Errorf("reload URI %q: destination is not hex", s)
	}
	// RFC 6940 §6.3.2.2 Destination: type node(1), uint8 length, NodeId.
	if len(raw) != 2+NodeIDLen || raw[0] != 1 || int(raw[1]) != NodeIDLen {
		return id, "", fmt.Errorf("reload URI %q: destination is not a single %d-byte node_id", s, NodeIDLen)
	}
	copy(id[:], raw[2:])
	return id, ov, nil
}

// NodeIDsFromCert returns the Node-IDs in the certificate's subjectAltName
// RELOAD URIs (RFC 6940 §11.3), in certificate order.
func NodeIDsFromCert(cert *x509.Certificate) []wire.NodeID {
	var ids []wire.NodeID
	for _, u := range cert.URIs {
		id, _, err := ParseNodeIDURI(u.String())
		if err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// OverlayFromCert returns the overlay name of the certificate's first RELOAD
// URI, or "".
func OverlayFromCert(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if _, ov, err := ParseNodeIDURI(u.String()); err == nil {
			return ov
		}
	}
	return ""
}

// UserFromCert returns the user name (the single rfc822Name, RFC 6940 §11.3)
// of the certificate.
func UserFromCert(cert *x509.Certificate) (string, error) {
	switch len(cert.EmailAddresses) {
	case 0:
		return "", errors.New("certificate has no user name (rfc822Name)")
	case 1:
		return cert.EmailAddresses[0], nil
	default:
		return "", fmt.Errorf("certificate has %d user names, want exactly one", len(cert.EmailAddresses))
	}
}

// CheckSelfSignedNodeIDs checks that every Node-ID in a self-signed
// certificate is the digest of its public key (RFC 6940 §11.3.1: "nodes MUST
// check that the Node-ID and public keys match").
func CheckSelfSignedNodeIDs(cert *x509.Certificate, d Digest) error {
	ids := NodeIDsFromCert(cert)
	if len(ids) == 0 {
		return errors.New("certificate carries no Node-ID")
	}
	for i, got := range ids {
		want, err := SelfSignedNodeID(cert.RawSubjectPublicKeyInfo, d, i+1, len(ids))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("self-signed certificate claims Node-ID %x, but its key gives %x (%s)", got, want, d)
		}
	}
	return nil
}
