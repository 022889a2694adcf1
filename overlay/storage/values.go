package storage

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Credentials sign the values a node stores: its key and certificate chain
// (leaf first), as overlay/identity.Identity holds them.
type Credentials struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// Cert returns the leaf certificate.
func (c *Credentials) Cert() *x509.Certificate { return c.Chain[0] }

// NewValue returns a signed StoredData for resource/kind (RFC 6940 §7, §7.1)
// with storage time t and lifetime life.
func NewValue(resource wire.ResourceID, kind wire.KindID, v wire.StoredDataValue, t time.Time, life time.Duration, cred *Credentials) (wire.StoredData, error) {
	sd := wire.StoredData{StorageTime: uint64(t.UnixMilli()), Lifetime: uint32(life / time.Second), Value: v}
	if err := SignStoredData(&sd, resource, kind, cred.Key, cred.Cert()); err != nil {
		return sd, err
	}
	return sd, nil
}

// Verifier checks values received from a storing peer (RFC 6940 §7.4.2.2:
// "nodes MUST verify the signatures on all the received values").
type Verifier struct {
	Kinds *kinds.Registry
	Trust TrustFunc // nil: ValidityOnly
	Now   func() time.Time
}

// Verify checks one received value: the certificate its identity names is
// among certs and trusted now, the signature is valid, and the signer was
// allowed to write it (the Kind's policy, §7.3). It returns the signer.
func (v *Verifier) Verify(resource wire.ResourceID, kind wire.KindID, sd *wire.StoredData, certs []*x509.Certificate) (*kinds.Signer, error) {
	k, ok := v.Kinds.Kind(kind)
	if !ok {
		return nil, fmt.Errorf("storage: unknown kind %d", kind)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	trust := v.Trust
	if trust == nil {
		trust = ValidityOnly
	}
	if sd.Signature.Identity.Type == wire.IdentityNone {
		return nil, errors.New("storage: value is not signed")
	}
	var ce *certEntry
	var node wire.NodeID
	for _, c := range certs {
		e := &certEntry{raw: c.Raw, sha256: sha256.Sum256(c.Raw), parsed: c}
		if sd.Signature.Identity.Type == wire.IdentityCertHashNodeID {
			e = newCertEntry(c)
		}
		if n, ok := matchIdentity(&sd.Signature.Identity, e); ok {
			ce, node = e, n
			break
		}
	}
	if ce == nil {
		return nil, errors.New("storage: no certificate for the value's signer")
	}
	chain := []*x509.Certificate{ce.parsed}
	for _, c := range certs {
		if c != ce.parsed {
			chain = append(chain, c)
		}
	}
	if err := trust(chain, now); err != nil {
		return nil, fmt.Errorf("storage: signer certificate: %w", err)
	}
	if err := checkSignature(sd, resource, kind, ce.parsed.PublicKey); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s := kinds.SignerFromCert(ce.parsed)
	s.NodeID = node
	if err := k.Authorize(resource, &sd.Value, s); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return s, nil
}

// FilterValid returns the values of a FetchKindResponse that verify; the
// unsigned nonexistent values a storing peer synthesizes (§7.4.2.2) are
// dropped too. bad counts the values dropped for failing verification.
func (v *Verifier) FilterValid(resource wire.ResourceID, kr *wire.FetchKindResponse, certs []*x509.Certificate) (good []wire.StoredData, bad int) {
	for i := range kr.Values {
		sd := &kr.Values[i]
		if sd.Signature.Identity.Type == wire.IdentityNone && !sd.Value.Data().Exists {
			continue
		}
		if _, err := v.Verify(resource, kr.Kind, sd, certs); err != nil {
			bad++
			continue
		}
		good = append(good, *sd)
	}
	return good, bad
}
