package config

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Peer is a certificate the overlay accepts.
type Peer struct {
	Cert       *x509.Certificate
	NodeIDs    []wire.NodeID
	User       string // user@overlay
	SelfSigned bool
}

// Has reports whether the certificate carries Node-ID id.
func (p *Peer) Has(id wire.NodeID) bool { return slices.Contains(p.NodeIDs, id) }

// trustCert accepts a certificate that chains to a root-cert of c, or, when
// c permits self-signed certificates, a self-signed one whose Node-IDs are
// the digest of its key (RFC 6940 §11.3, §11.3.1).
func (c *Config) trustCert(cert *x509.Certificate, intermediates []*x509.Certificate, now time.Time) error {
	return c.trustCertSS(cert, intermediates, now, identity.IsSelfSigned(cert))
}

func (c *Config) trustCertSS(cert *x509.Certificate, intermediates []*x509.Certificate, now time.Time, selfSigned bool) error {
	var rootErr error
	if len(c.RootCerts) > 0 {
		roots := x509.NewCertPool()
		for _, r := range c.RootCerts {
			roots.AddCert(r)
		}
		inter := x509.NewCertPool()
		for _, i := range intermediates {
			inter.AddCert(i)
		}
		// RFC 6940 §11.3: chain back to a root-cert, with PKIX
		// BasicConstraints checks (done by x509.Verify).
		_, rootErr = cert.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if rootErr == nil {
			return nil
		}
	}
	if c.SelfSignedPermitted && selfSigned {
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return fmt.Errorf("self-signed certificate valid only from %s to %s", cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
		}
		// RFC 6940 §11.3.1: "nodes MUST check that the Node-ID and public keys match".
		return identity.CheckSelfSignedNodeIDs(cert, c.SelfSignedDigest)
	}
	switch {
	case rootErr != nil:
		var ua x509.UnknownAuthorityError
		if errors.As(rootErr, &ua) {
			return fmt.Errorf("certificate is not issued by the certificate authority of overlay %s", c.InstanceName)
		}
		return fmt.Errorf("certificate does not chain to the overlay's root certificate: %w", rootErr)
	case selfSigned:
		return fmt.Errorf("overlay %s does not permit self-signed certificates", c.InstanceName)
	default:
		return fmt.Errorf("overlay %s has no root certificate to check this certificate against", c.InstanceName)
	}
}

// VerifyPeer decides whether a peer presenting chain (leaf first) may take
// part in the overlay: the leaf names at least one Node-ID of this overlay
// and exactly one user name, no Node-ID is a bad-node, and the certificate
// is issued under a root-cert or is a valid self-signed certificate where
// self-signed ones are permitted.
func (c *Config) VerifyPeer(chain []*x509.Certificate, now time.Time) (*Peer, error) {
	if len(chain) == 0 {
		return nil, errors.New("peer presented no certificate")
	}
	if now.IsZero() {
		now = time.Now()
	}
	leaf := chain[0]
	p := &Peer{Cert: leaf, SelfSigned: identity.IsSelfSigned(leaf)}
	for _, u := range leaf.URIs {
		id, ov, err := identity.ParseNodeIDURI(u.String())
		if err != nil {
			continue
		}
		if !strings.EqualFold(ov, c.InstanceName) {
			return nil, fmt.Errorf("peer certificate is for overlay %s, not %s", ov, c.InstanceName)
		}
		p.NodeIDs = append(p.NodeIDs, id)
	}
	if len(p.NodeIDs) == 0 {
		return nil, errors.New("peer certificate carries no RELOAD Node-ID")
	}
	user, err := identity.UserFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	p.User = user
	for _, id := range p.NodeIDs {
		if slices.Contains(c.BadNodes, hex.EncodeToString(id[:])) { // RFC 6940 §11.1 bad-node
			return nil, fmt.Errorf("peer Node-ID %s is revoked (bad-node) in overlay %s", id, c.InstanceName)
		}
	}
	if err := c.trustCertSS(leaf, chain[1:], now, p.SelfSigned); err != nil {
		return nil, fmt.Errorf("peer %s (%s): %w", user, p.NodeIDs[0], err)
	}
	return p, nil
}

// VerifyPeerCert is VerifyPeer for a leaf and optional intermediates, at the
// current time.
func VerifyPeerCert(cfg *Config, cert *x509.Certificate, intermediates ...*x509.Certificate) (*Peer, error) {
	return cfg.VerifyPeer(append([]*x509.Certificate{cert}, intermediates...), time.Now())
}

// VerifyPeerCertificate has the signature of tls.Config and dtls.Config
// VerifyPeerCertificate. Links set InsecureSkipVerify (peers have no DNS
// names) and rely on this check instead.
func (c *Config) VerifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	var chain []*x509.Certificate
	for _, r := range rawCerts {
		cert, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		chain = append(chain, cert)
	}
	_, err := c.VerifyPeer(chain, time.Now())
	return err
}
