package storage

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TrustFunc decides whether a certificate (leaf first, then any
// intermediates) may sign data in this overlay at time now: it chains to
// the overlay's root or is an acceptable self-signed certificate, and now
// is inside its validity period (RFC 6940 §7.1, §11.3). config.Config's
// VerifyPeer, adapted, is the usual one.
type TrustFunc func(chain []*x509.Certificate, now time.Time) error

// ValidityOnly is the TrustFunc that checks only the validity period. It
// suits tests and overlays where every self-signed certificate is welcome.
func ValidityOnly(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	c := chain[0]
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("certificate valid only from %s to %s", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// certEntry is one certificate kept for the stored values it signed
// (RFC 6940 §9 note: certificates of stored data must be retained).
// Entries are shared by all the values one certificate signed. To stay
// small a retained entry keeps the DER, the public key and the fields the
// policies use, not the parsed certificate.
type certEntry struct {
	raw       []byte
	sha256    [32]byte
	pub       crypto.PublicKey
	notBefore int64 // Unix milliseconds
	notAfter  int64
	user      string
	nodeIDs   []wire.NodeID
	refs      int // stored records that point here
	trusted   time.Time
	// parsed is the certificate while a request that carried it is being
	// processed; nil once retained.
	parsed *x509.Certificate
}

func newCertEntry(c *x509.Certificate) *certEntry {
	s := kinds.SignerFromCert(c)
	return &certEntry{
		raw: c.Raw, sha256: sha256.Sum256(c.Raw), pub: c.PublicKey,
		notBefore: c.NotBefore.UnixMilli(), notAfter: c.NotAfter.UnixMilli(),
		user: s.User, nodeIDs: s.NodeIDs, parsed: c,
	}
}

// certificate returns the parsed certificate (parsing the DER again for a
// retained entry).
func (e *certEntry) certificate() (*x509.Certificate, error) {
	if e.parsed != nil {
		return e.parsed, nil
	}
	return x509.ParseCertificate(e.raw)
}

// valid reports whether t (Unix ms) is inside the validity period.
func (e *certEntry) valid(t int64) bool { return t >= e.notBefore && t <= e.notAfter }

func hashFor(h wire.HashAlgorithm) (hash.Hash, crypto.Hash, error) {
	switch h {
	case wire.HashSHA1:
		return sha1.New(), crypto.SHA1, nil
	case wire.HashSHA256:
		return sha256.New(), crypto.SHA256, nil
	case wire.HashSHA384:
		return sha512.New384(), crypto.SHA384, nil
	case wire.HashSHA512:
		return sha512.New(), crypto.SHA512, nil
	}
	return nil, 0, fmt.Errorf("unsupported hash algorithm %d", h)
}

// matchIdentity reports whether id names cert, and for cert_hash_node_id
// which Node-ID of cert (RFC 6940 §6.3.4).
func matchIdentity(id *wire.SignerIdentity, e *certEntry) (wire.NodeID, bool) {
	switch id.Type {
	case wire.IdentityCertHash:
		if id.HashAlg == wire.HashSHA256 {
			return wire.NodeID{}, subtle.ConstantTimeCompare(id.Hash, e.sha256[:]) == 1
		}
		h, _, err := hashFor(id.HashAlg)
		if err != nil {
			return wire.NodeID{}, false
		}
		h.Write(e.raw)
		return wire.NodeID{}, subtle.ConstantTimeCompare(h.Sum(nil), id.Hash) == 1
	case wire.IdentityCertHashNodeID:
		for _, n := range e.nodeIDs {
			h, _, err := hashFor(id.HashAlg)
			if err != nil {
				return wire.NodeID{}, false
			}
			h.Write(n[:])
			h.Write(e.raw)
			if subtle.ConstantTimeCompare(h.Sum(nil), id.Hash) == 1 {
				return n, true
			}
		}
	}
	return wire.NodeID{}, false
}

// signatureInput is the RFC 6940 §7.1 input. For arrays the index is set to
// zero before signing (RFC 6940 §7.4.2.2), so that appends (index
// 0xffffffff) and fetched entries verify alike.
func signatureInput(sd *wire.StoredData, resource wire.ResourceID, kind wire.KindID) ([]byte, error) {
	c := *sd
	if c.Value.Model == wire.DataModelArray {
		c.Value.Array.Index = 0
	}
	return wire.StoredDataSignatureInput(&c, resource, kind, &sd.Signature.Identity)
}

// checkSignature verifies sd's signature value with the signer's key.
func checkSignature(sd *wire.StoredData, resource wire.ResourceID, kind wire.KindID, key crypto.PublicKey) error {
	sig := &sd.Signature
	if sig.Identity.Type == wire.IdentityNone || sig.Algorithm.Signature == wire.SignatureAnonymous {
		return errors.New("value is not signed")
	}
	in, err := signatureInput(sd, resource, kind)
	if err != nil {
		return err
	}
	h, ch, err := hashFor(sig.Algorithm.Hash)
	if err != nil {
		return err
	}
	h.Write(in)
	digest := h.Sum(nil)
	switch sig.Algorithm.Signature {
	case wire.SignatureRSA:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RSA signature but %T key", key)
		}
		if err := rsa.VerifyPKCS1v15(pub, ch, digest, sig.Value); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
	case wire.SignatureECDSA:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("ECDSA signature but %T key", key)
		}
		if !ecdsa.VerifyASN1(pub, digest, sig.Value) {
			return errors.New("ECDSA signature invalid")
		}
	default:
		return fmt.Errorf("unsupported signature algorithm %d", sig.Algorithm.Signature)
	}
	return nil
}

// SignStoredData signs sd for resource/kind with key, naming cert by a
// cert_hash identity (RFC 6940 §7.1; array index zeroed, §7.4.2.2).
func SignStoredData(sd *wire.StoredData, resource wire.ResourceID, kind wire.KindID, key crypto.Signer, cert *x509.Certificate) error {
	id := wire.CertHashIdentity(cert)
	sd.Signature.Identity = id
	in, err := signatureInput(sd, resource, kind)
	if err != nil {
		return err
	}
	sig, err := signRaw(in, key, id)
	if err != nil {
		return fmt.Errorf("storage: sign: %w", err)
	}
	sd.Signature = sig
	return nil
}

// signRaw signs in: RSASSA-PKCS1-v1_5/SHA-256 for RSA keys (mandatory,
// RFC 6940 §6.3.4), ECDSA/SHA-256 for P-256 keys.
func signRaw(in []byte, key crypto.Signer, id wire.SignerIdentity) (wire.Signature, error) {
	var alg wire.SignatureAndHashAlgorithm
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		alg = wire.AlgRSASHA256
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name != "P-256" {
			return wire.Signature{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		alg = wire.AlgECDSASHA256
	default:
		return wire.Signature{}, fmt.Errorf("unsupported key type %T", k)
	}
	d := sha256.Sum256(in)
	v, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return wire.Signature{}, err
	}
	return wire.Signature{Algorithm: alg, Identity: id, Value: v}, nil
}
