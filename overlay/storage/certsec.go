package storage

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Certifying wraps a node.Security so that messages carrying stored data
// (StoreReq, FetchAns) also carry the certificates that signed each value:
// "the certificates bucket SHOULD contain all the certificates necessary
// to verify every signature in both the message and the internal message
// objects" (RFC 6940 §6.3.4). The certificates are appended after the
// inner Security has signed the message; the message signature does not
// cover them. Use it as node.Settings.Security and hand it to NewService,
// which tells it where certificates are found.
type Certifying struct {
	node.Security

	mu     sync.RWMutex
	kinds  wire.KindModels
	lookup func(id *wire.SignerIdentity) []byte
}

// NewCertifying wraps inner (nil: node.NoSecurity, for the simulation).
func NewCertifying(inner node.Security) *Certifying {
	if inner == nil {
		inner = node.NoSecurity{}
	}
	return &Certifying{Security: inner}
}

func (c *Certifying) bind(km wire.KindModels, lookup func(*wire.SignerIdentity) []byte) {
	c.mu.Lock()
	c.kinds, c.lookup = km, lookup
	c.mu.Unlock()
}

// Sign signs m with the inner Security, then adds the certificates of the
// stored values m carries.
func (c *Certifying) Sign(m *wire.Message) error {
	if err := c.Security.Sign(m); err != nil {
		return err
	}
	if m.Code != wire.CodeStoreReq && m.Code != wire.CodeFetchAns {
		return nil
	}
	c.mu.RLock()
	km, lookup := c.kinds, c.lookup
	c.mu.RUnlock()
	if lookup == nil {
		return nil
	}
	var ids []*wire.SignerIdentity
	switch m.Code {
	case wire.CodeStoreReq:
		var r wire.StoreReq
		if r.UnmarshalKinds(m.Body, km) != nil {
			return nil
		}
		for i := range r.KindData {
			for j := range r.KindData[i].Values {
				ids = append(ids, &r.KindData[i].Values[j].Signature.Identity)
			}
		}
	case wire.CodeFetchAns:
		var a wire.FetchAns
		if a.UnmarshalKinds(m.Body, km) != nil {
			return nil
		}
		for i := range a.KindResponses {
			for j := range a.KindResponses[i].Values {
				ids = append(ids, &a.KindResponses[i].Values[j].Signature.Identity)
			}
		}
	}
	have := map[[32]byte]bool{}
	for _, gc := range m.Security.Certificates {
		have[sha256.Sum256(gc.Certificate)] = true
	}
	for _, id := range ids {
		if id.Type == wire.IdentityNone {
			continue
		}
		der := lookup(id)
		if der == nil {
			continue
		}
		h := sha256.Sum256(der)
		if have[h] {
			continue
		}
		have[h] = true
		m.Security.Certificates = append(m.Security.Certificates, wire.GenericCertificate{Type: wire.CertificateX509, Certificate: der})
	}
	return nil
}

// CertificateFor returns the DER of a retained certificate that id names,
// or nil.
func (e *Engine) CertificateFor(id *wire.SignerIdentity) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id.Type == wire.IdentityCertHash && id.HashAlg == wire.HashSHA256 && len(id.Hash) == 32 {
		if ce := e.certs[[32]byte(id.Hash)]; ce != nil {
			return ce.raw
		}
		return nil
	}
	for _, ce := range e.certs {
		if _, ok := matchIdentity(id, ce); ok {
			return ce.raw
		}
	}
	return nil
}

// parseCertificates parses a security block's certificates; at most max
// are taken. With skipRetained, certificates this engine already retains
// are left out (the engine resolves them itself).
func (e *Engine) parseCertificates(gcs []wire.GenericCertificate, max int, skipRetained bool) []*x509.Certificate {
	var out []*x509.Certificate
	for i, gc := range gcs {
		if i >= max {
			break
		}
		if gc.Type != wire.CertificateX509 {
			continue
		}
		if skipRetained {
			h := sha256.Sum256(gc.Certificate)
			e.mu.Lock()
			ce := e.certs[h]
			e.mu.Unlock()
			if ce != nil {
				continue
			}
		}
		if c, err := x509.ParseCertificate(gc.Certificate); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// FetchCertificate passes node.CertificateFetcher through to the inner Security, so that a
// signer's certificate missing from a message is fetched (RFC 6940 §8, §11.3.1).
func (c *Certifying) FetchCertificate(ctx context.Context, id wire.NodeID) error {
	f, ok := c.Security.(node.CertificateFetcher)
	if !ok {
		return errors.New("storage: the node's security cannot fetch certificates")
	}
	return f.FetchCertificate(ctx, id)
}
