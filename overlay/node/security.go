package node

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

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
	cert, err := wire.FindCertificate(m)
	if err != nil {
		return nil, err
	}
	if err := wire.Verify(m, cert); err != nil {
		return nil, err
	}
	if c.Trust != nil {
		var inter []*x509.Certificate
		for _, gc := range m.Security.Certificates {
			if x, err := x509.ParseCertificate(gc.Certificate); err == nil && !x.Equal(cert) {
				inter = append(inter, x)
			}
		}
		ids, err := c.Trust(cert, inter)
		if err != nil {
			return nil, fmt.Errorf("node: signer certificate not trusted: %w", err)
		}
		return ids, nil
	}
	ids := wire.NodeIDsFromCert(cert)
	if len(ids) == 0 {
		return nil, errors.New("node: signer certificate carries no Node-ID")
	}
	return ids, nil
}
