package node

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Security signs messages this node originates or answers and verifies messages destined
// to it (RFC 6940 §6.3.4, §7.1). Implementations must be safe for concurrent use.
type Security interface {
	// Sign fills m.Security (certificates and signature).
	Sign(m *wire.Message) error
	// Verify checks m's signature and returns the Node-IDs of the signer's certificate.
	// A nil slice with a nil error means "not checked" (NoSecurity).
	Verify(m *wire.Message) ([]wire.NodeID, error)
}

// NoSecurity neither signs nor checks signatures. It is for the in-process simulation,
// where every node is trusted; never use it on a network.
type NoSecurity struct{}

// Sign sets an anonymous signature.
func (NoSecurity) Sign(m *wire.Message) error {
	m.Security = wire.SecurityBlock{Signature: wire.Signature{Algorithm: wire.AlgNone, Identity: wire.NoneIdentity}}
	return nil
}

// Verify accepts every message.
func (NoSecurity) Verify(*wire.Message) ([]wire.NodeID, error) { return nil, nil }

// CertSecurity signs with the node's key and certificate and verifies with the certificate carried in the security block (RFC 6940 §6.3.4).
type CertSecurity struct {
	NodeID wire.NodeID
	Key    crypto.Signer
	// Chain is the node's certificate first, then any intermediates; all are sent.
	Chain []*x509.Certificate
	// Trust, if set, decides whether a signer certificate is acceptable in this overlay
	// (root-cert chain or self-signed policy, RFC 6940 §11.3) and returns its Node-IDs.
	// Default: accept and use the Node-IDs in the certificate.
	Trust func(cert *x509.Certificate, intermediates []*x509.Certificate) ([]wire.NodeID, error)
	// FetchCertificates, if set, gets the certificates a node stored for itself in the
	// Certificate Store usage (CERTIFICATE_BY_NODE, RFC 6940 §8), for messages whose
	// security block lacks the signer's certificate (§6.3.4 allows leaving it out).
	FetchCertificates func(ctx context.Context, node wire.NodeID) ([]*x509.Certificate, error)

	known  certCache // signer certificates seen in verified messages or fetched
	parsed certCache // certificates of security blocks, parsed once (not yet trusted)
}

// Sign signs m (RFC 6940 §6.3.4) and attaches the certificates.
func (c *CertSecurity) Sign(m *wire.Message) error {
	if len(c.Chain) == 0 || c.Key == nil {
		return errors.New("node: CertSecurity without key or certificate")
	}
	m.Security.Certificates = m.Security.Certificates[:0]
	for _, cert := range c.Chain {
		m.Security.Certificates = append(m.Security.Certificates, wire.GenericCertificate{Type: wire.CertificateX509, Certificate: cert.Raw})
	}
	return wire.Sign(m, c.Key, SignerIdentity(c.NodeID, c.Chain[0]))
}

// SignerIdentity names cert in a signature by node (RFC 6940 §6.3.4): "cert_hash_node_id"
// only when the certificate carries several Node-IDs, so that the identity says which one
// signs; a certificate with a single Node-ID is named by "cert_hash", as other
// implementations expect.
func SignerIdentity(node wire.NodeID, cert *x509.Certificate) wire.SignerIdentity {
	if len(wire.NodeIDsFromCert(cert)) > 1 {
		return wire.CertHashNodeIDIdentity(node, cert)
	}
	return wire.CertHashIdentity(cert)
}

// Verify checks m's signature against the certificate its signer identity names.
func (c *CertSecurity) Verify(m *wire.Message) ([]wire.NodeID, error) {
	cert, err := wire.FindCertificateWith(m, c.parse)
	if err != nil {
		if cert = c.known.find(&m.Security.Signature.Identity, originOf(m)); cert == nil {
			// RFC 6940 §6.3.4: the certificates bucket only SHOULD hold the signer's.
			return nil, &CertificateMissingError{Node: originOf(m), Err: err}
		}
	}
	if err := wire.Verify(m, cert); err != nil {
		return nil, err
	}
	if c.Trust != nil {
		var inter []*x509.Certificate
		for _, gc := range m.Security.Certificates {
			if x, err := c.parse(gc.Certificate); err == nil && !x.Equal(cert) {
				inter = append(inter, x)
			}
		}
		ids, err := c.Trust(cert, inter)
		if err != nil {
			return nil, fmt.Errorf("node: signer certificate not trusted: %w", err)
		}
		c.known.add(cert)
		return ids, nil
	}
	ids := wire.NodeIDsFromCert(cert)
	if len(ids) == 0 {
		return nil, errors.New("node: signer certificate carries no Node-ID")
	}
	c.known.add(cert)
	return ids, nil
}

// parse parses a certificate of a security block; a certificate seen before (a signer
// sends its own with every message, RFC 6940 §6.3.4) is not parsed again.
func (c *CertSecurity) parse(der []byte) (*x509.Certificate, error) {
	h := sha256.Sum256(der)
	if x := c.parsed.get(h); x != nil {
		return x, nil
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.parsed.add(x)
	return x, nil
}

// CertificateMissingError is Verify's error for a message whose signer certificate is
// neither in its security block nor known: Node is the originator, whose certificate
// FetchCertificate can get from the overlay.
type CertificateMissingError struct {
	Node wire.NodeID
	Err  error
}

func (e *CertificateMissingError) Error() string {
	return fmt.Sprintf("node: signer certificate neither in the message nor known: %v", e.Err)
}

func (e *CertificateMissingError) Unwrap() error { return e.Err }

// CertificateFetcher is a Security that can learn a signer's certificate from the overlay
// (RFC 6940 §8, §11.3.1); the node calls it for a request that failed with
// CertificateMissingError, then verifies the request again.
type CertificateFetcher interface {
	FetchCertificate(ctx context.Context, node wire.NodeID) error
}

// FetchCertificate fetches node's stored certificates (FetchCertificates) and remembers
// them for Verify, which still checks them against Trust and the signature.
func (c *CertSecurity) FetchCertificate(ctx context.Context, node wire.NodeID) error {
	if c.FetchCertificates == nil {
		return errors.New("node: no certificate store to fetch from")
	}
	certs, err := c.FetchCertificates(ctx, node)
	if err != nil {
		return err
	}
	for _, cert := range certs {
		c.known.add(cert)
	}
	return nil
}

// originOf is the originator of m: the first via-list entry, or (a message from a
// neighbour) the zero Node-ID.
func originOf(m *wire.Message) wire.NodeID {
	if vl := m.Header.ViaList; len(vl) > 0 && vl[0].Type == wire.DestinationNode {
		return vl[0].Node
	}
	return wire.NodeID{}
}

// maxKnownCerts bounds the certificate cache; when full, an arbitrary half is forgotten.
const maxKnownCerts = 2048

// certCache remembers signer certificates by SHA-256 of their DER.
type certCache struct {
	mu    sync.Mutex
	certs map[[32]byte]*x509.Certificate
}

func (k *certCache) add(cert *x509.Certificate) {
	h := sha256.Sum256(cert.Raw)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.certs == nil {
		k.certs = map[[32]byte]*x509.Certificate{}
	}
	if _, ok := k.certs[h]; ok {
		return
	}
	if len(k.certs) >= maxKnownCerts {
		n := 0
		for x := range k.certs {
			if n++; n > maxKnownCerts/2 {
				break
			}
			delete(k.certs, x)
		}
	}
	k.certs[h] = cert
}

// get returns the certificate whose DER has SHA-256 h, or nil.
func (k *certCache) get(h [32]byte) *x509.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.certs[h]
}

// find returns a known certificate that id names (origin is a candidate Node-ID for
// cert_hash_node_id), or nil.
func (k *certCache) find(id *wire.SignerIdentity, origin wire.NodeID) *x509.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id.Type == wire.IdentityCertHash && id.HashAlg == wire.HashSHA256 && len(id.Hash) == 32 {
		return k.certs[[32]byte(id.Hash)]
	}
	for _, c := range k.certs {
		if id.Names(c, origin) {
			return c
		}
	}
	return nil
}
