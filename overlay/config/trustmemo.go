package config

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// maxTrusted bounds a TrustMemo; when full, an arbitrary half is forgotten.
const maxTrusted = 4096

// TrustMemo remembers the certificate chains a configuration accepted, so that a
// signer seen again is not checked again (every signed message carries its signer's
// certificate, RFC 6940 §6.3.4, and each check of a self-signed certificate costs a
// signature verification of its own, §11.3.1). A remembered acceptance holds for the
// same configuration (a new document starts afresh) while every certificate of the
// chain, and every root-cert, is within its validity period; refusals are not
// remembered. The zero value is ready; it is safe for concurrent use.
type TrustMemo struct {
	mu   sync.Mutex
	cfg  *Config
	seen map[[32]byte]trusted
}

type trusted struct {
	peer      Peer
	notBefore time.Time
	notAfter  time.Time
}

// VerifyPeer is c.VerifyPeer(chain, now), answered from memory when c accepted the
// same chain before. c must not be changed once used here (documents are replaced,
// never edited).
func (m *TrustMemo) VerifyPeer(c *Config, chain []*x509.Certificate, now time.Time) (*Peer, error) {
	if now.IsZero() {
		now = time.Now()
	}
	key := chainKey(chain)
	m.mu.Lock()
	t, ok := m.seen[key]
	ok = ok && m.cfg == c && !now.Before(t.notBefore) && !now.After(t.notAfter)
	m.mu.Unlock()
	if ok {
		p := t.peer
		p.Cert = chain[0]
		return &p, nil
	}
	p, err := c.VerifyPeer(chain, now)
	if err != nil {
		return nil, err
	}
	t = trusted{peer: *p, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, x := range append(chain[1:len(chain):len(chain)], c.RootCerts...) {
		t.notBefore, t.notAfter = later(t.notBefore, x.NotBefore), earlier(t.notAfter, x.NotAfter)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg != c || len(m.seen) >= maxTrusted {
		forgetHalf(m.seen, m.cfg != c)
		m.cfg = c
	}
	if m.seen == nil {
		m.seen = map[[32]byte]trusted{}
	}
	m.seen[key] = t
	return p, nil
}

// chainKey is SHA-256 over the DER of every certificate of chain, each prefixed
// with its length.
func chainKey(chain []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range chain {
		n := len(c.Raw)
		h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		h.Write(c.Raw)
	}
	return [32]byte(h.Sum(nil))
}

func forgetHalf(seen map[[32]byte]trusted, all bool) {
	n := 0
	for k := range seen {
		if n++; !all && n > maxTrusted/2 {
			return
		}
		delete(seen, k)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
