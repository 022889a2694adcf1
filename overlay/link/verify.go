package link

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// SelfSignedVerifier accepts self-signed certificates whose Node-IDs are the digest of their
// public key (RFC 6940 §11.3.1) and returns those Node-IDs.
func SelfSignedVerifier(d identity.Digest) func(*x509.Certificate, []*x509.Certificate) ([]wire.NodeID, error) {
	return func(c *x509.Certificate, _ []*x509.Certificate) ([]wire.NodeID, error) {
		if !identity.IsSelfSigned(c) {
			return nil, errors.New("certificate is not self-signed")
		}
		if err := checkValidity(c); err != nil {
			return nil, err
		}
		if err := identity.CheckSelfSignedNodeIDs(c, d); err != nil {
			return nil, err
		}
		return identity.NodeIDsFromCert(c), nil
	}
}

// RootVerifier accepts certificates issued under one of roots (an overlay's root-cert,
// RFC 6940 §11.1), directly or through the intermediate CAs presented with them, and
// returns the Node-IDs they carry.
func RootVerifier(roots *x509.CertPool) func(*x509.Certificate, []*x509.Certificate) ([]wire.NodeID, error) {
	return func(c *x509.Certificate, intermediates []*x509.Certificate) ([]wire.NodeID, error) {
		inter := x509.NewCertPool()
		for _, i := range intermediates {
			inter.AddCert(i)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, err
		}
		ids := identity.NodeIDsFromCert(c)
		if len(ids) == 0 {
			return nil, errors.New("certificate carries no Node-ID")
		}
		return ids, nil
	}
}

func checkValidity(c *x509.Certificate) error {
	now := time.Now()
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("certificate not valid now (valid %s to %s)", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// ErrWrongNodeID is wrapped by the error of a link whose peer's certificate does not carry
// the Node-ID the peer was expected to have (RFC 6940 §6.5.1.13).
var ErrWrongNodeID = errors.New("peer certificate does not carry the expected Node-ID")

// peerCheck verifies a peer's certificate during a handshake and remembers what it proved.
type peerCheck struct {
	verify func(*x509.Certificate, []*x509.Certificate) ([]wire.NodeID, error)
	expect wire.NodeID // zero: any
	cert   *x509.Certificate
	ids    []wire.NodeID
	under  *notifyConn // the packet conn under the DTLS session (nil on TLS)
}

func (p *peerCheck) check(raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("peer presented no certificate")
	}
	chain := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		chain = append(chain, c)
	}
	// The rest of the chain goes with the leaf, so that a certificate issued by an
	// intermediate CA under the overlay's root verifies on links as it does in messages'
	// security blocks (RFC 6940 §6.3.4, §11.3).
	c := chain[0]
	ids, err := p.verify(c, chain[1:])
	if err != nil {
		return fmt.Errorf("peer certificate refused: %w", err)
	}
	if len(ids) == 0 {
		return errors.New("peer certificate proves no Node-ID")
	}
	if !p.expect.IsZero() {
		found := false
		for _, id := range ids {
			if id == p.expect {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%w: want %s, certificate has %v", ErrWrongNodeID, p.expect, ids)
		}
	}
	p.cert, p.ids = c, ids
	return nil
}

// remoteID is the Node-ID a verified peer is known by: the expected one, else the first.
func (p *peerCheck) remoteID() wire.NodeID {
	if !p.expect.IsZero() {
		return p.expect
	}
	return p.ids[0]
}
