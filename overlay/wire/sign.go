package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// ErrUnsigned is returned by Verify for a signature with identity type none
// or algorithm anonymous.
var ErrUnsigned = errors.New("wire: message is not signed")

func newHash(h HashAlgorithm) (hash.Hash, crypto.Hash, error) {
	switch h {
	case HashSHA1:
		return sha1.New(), crypto.SHA1, nil
	case HashSHA256:
		return sha256.New(), crypto.SHA256, nil
	case HashSHA384:
		return sha512.New384(), crypto.SHA384, nil
	case HashSHA512:
		return sha512.New(), crypto.SHA512, nil
	}
	return nil, 0, fmt.Errorf("wire: unsupported hash algorithm %d", h)
}

// CertHashIdentity returns a cert_hash SignerIdentity for cert: SHA-256 over
// the DER certificate (RFC 6940 §6.3.4).
func CertHashIdentity(cert *x509.Certificate) SignerIdentity {
	h := sha256.Sum256(cert.Raw)
	return SignerIdentity{Type: IdentityCertHash, HashAlg: HashSHA256, Hash: h[:]}
}

// CertHashNodeIDIdentity returns a cert_hash_node_id SignerIdentity:
// SHA-256(NodeId || certificate) (RFC 6940 §6.3.4).
func CertHashNodeIDIdentity(node NodeID, cert *x509.Certificate) SignerIdentity {
	h := sha256.New()
	h.Write(node[:])
	h.Write(cert.Raw)
	return SignerIdentity{Type: IdentityCertHashNodeID, HashAlg: HashSHA256, Hash: h.Sum(nil)}
}

// NoneIdentity is the "none" SignerIdentity (RFC 6940 §6.3.4).
var NoneIdentity = SignerIdentity{Type: IdentityNone}

// algorithmFor picks the SignatureAndHashAlgorithm for a public key:
// RSASSA-PKCS1-v1_5/SHA-256 for RSA (mandatory, RFC 6940 §6.3.4) and
// ECDSA/SHA-256 for P-256.
func algorithmFor(pub crypto.PublicKey) (SignatureAndHashAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return AlgRSASHA256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return SignatureAndHashAlgorithm{}, fmt.Errorf("wire: unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		return AlgECDSASHA256, nil
	}
	return SignatureAndHashAlgorithm{}, fmt.Errorf("wire: unsupported key type %T", pub)
}

func makeSignature(input []byte, signer crypto.Signer, identity SignerIdentity) (Signature, error) {
	alg, err := algorithmFor(signer.Public())
	if err != nil {
		return Signature{}, err
	}
	h, ch, err := newHash(alg.Hash)
	if err != nil {
		return Signature{}, err
	}
	h.Write(input)
	v, err := signer.Sign(rand.Reader, h.Sum(nil), ch)
	if err != nil {
		return Signature{}, fmt.Errorf("wire: sign: %w", err)
	}
	return Signature{Algorithm: alg, Identity: identity, Value: v}, nil
}

func checkSignature(input []byte, sig *Signature, cert *x509.Certificate) error {
	if sig.Identity.Type == IdentityNone || sig.Algorithm.Signature == SignatureAnonymous {
		return ErrUnsigned
	}
	if err := identityMatches(&sig.Identity, cert, nil); err != nil {
		return err
	}
	return verifyRaw(input, sig, cert)
}

// verifyRaw checks the signature value only (identity checked by the caller).
func verifyRaw(input []byte, sig *Signature, cert *x509.Certificate) error {
	if sig.Identity.Type == IdentityNone || sig.Algorithm.Signature == SignatureAnonymous {
		return ErrUnsigned
	}
	h, ch, err := newHash(sig.Algorithm.Hash)
	if err != nil {
		return err
	}
	h.Write(input)
	digest := h.Sum(nil)
	switch sig.Algorithm.Signature {
	case SignatureRSA:
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("wire: verify: RSA signature but %T key", cert.PublicKey)
		}
		if err := rsa.VerifyPKCS1v15(pub, ch, digest, sig.Value); err != nil {
			return fmt.Errorf("wire: verify: %w", err)
		}
	case SignatureECDSA:
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("wire: verify: ECDSA signature but %T key", cert.PublicKey)
		}
		if !ecdsa.VerifyASN1(pub, digest, sig.Value) {
			return errors.New("wire: verify: ECDSA signature invalid")
		}
	default:
		return fmt.Errorf("wire: verify: unsupported signature algorithm %d", sig.Algorithm.Signature)
	}
	return nil
}

// NodeIDsFromCert returns the Node-IDs named by cert's subjectAltName
// RELOAD URIs, reload://<hex Destination list>@<overlay>/ (RFC 6940 §11.3,
// §14.15), e.g. reload://0110<32 hex digits>@overlay/.
func NodeIDsFromCert(cert *x509.Certificate) []NodeID {
	var out []NodeID
	for _, u := range cert.URIs {
		if u.Scheme != "reload" || u.User == nil {
			continue
		}
		raw, err := hex.DecodeString(u.User.Username())
		if err != nil {
			continue
		}
		d := newDec(raw, "reload URI")
		for _, dst := range decodeDestinations(d) {
			if d.err == nil && dst.Type == DestinationNode {
				out = append(out, dst.Node)
			}
		}
	}
	return out
}

// identityMatches checks that id names cert. For cert_hash_node_id the
// candidate Node-IDs are extra plus those in cert.
func identityMatches(id *SignerIdentity, cert *x509.Certificate, extra []NodeID) error {
	switch id.Type {
	case IdentityCertHash:
		h, _, err := newHash(id.HashAlg)
		if err != nil {
			return err
		}
		h.Write(cert.Raw)
		if subtle.ConstantTimeCompare(h.Sum(nil), id.Hash) != 1 {
			return errors.New("wire: verify: signer identity does not match certificate")
		}
		return nil
	case IdentityCertHashNodeID:
		for _, n := range append(extra, NodeIDsFromCert(cert)...) {
			h, _, err := newHash(id.HashAlg)
			if err != nil {
				return err
			}
			h.Write(n[:])
			h.Write(cert.Raw)
			if subtle.ConstantTimeCompare(h.Sum(nil), id.Hash) == 1 {
				return nil
			}
		}
		return errors.New("wire: verify: signer identity matches no Node-ID of the certificate")
	}
	return fmt.Errorf("wire: verify: signer identity type %d", id.Type)
}

// MessageSignatureInput returns the bytes signed for a message:
// overlay || transaction_id || MessageContents || SignerIdentity (RFC 6940 §6.3.4).
func MessageSignatureInput(m *Message, id *SignerIdentity) ([]byte, error) {
	e := &enc{}
	e.u32(m.Header.OverlayHash)
	e.u64(m.Header.TransactionID)
	appendContents(e, m)
	appendSignerIdentity(e, id)
	return e.b, e.err
}

// Sign signs m with signer and sets m.Security.Signature (RFC 6940 §6.3.4).
// RSA keys sign with RSASSA-PKCS1-v1_5/SHA-256, P-256 keys with ECDSA/SHA-256.
// Certificates are not added; append them to m.Security.Certificates.
func Sign(m *Message, signer crypto.Signer, identity SignerIdentity) error {
	in, err := MessageSignatureInput(m, &identity)
	if err != nil {
		return err
	}
	sig, err := makeSignature(in, signer, identity)
	if err != nil {
		return err
	}
	m.Security.Signature = sig
	return nil
}

// Verify checks m's signature against cert: the signer identity must name
// cert and the signature must be valid over the RFC 6940 §6.3.4 input.
// It does not check the certificate chain or validity period.
func Verify(m *Message, cert *x509.Certificate) error {
	id := &m.Security.Signature.Identity
	in, err := MessageSignatureInput(m, id)
	if err != nil {
		return err
	}
	if id.Type == IdentityCertHashNodeID {
		// Try the originator's Node-ID from the via list as well.
		var extra []NodeID
		if len(m.Header.ViaList) > 0 && m.Header.ViaList[0].Type == DestinationNode {
			extra = append(extra, m.Header.ViaList[0].Node)
		}
		if err := identityMatches(id, cert, extra); err != nil {
			return err
		}
		return verifyRaw(in, &m.Security.Signature, cert)
	}
	return checkSignature(in, &m.Security.Signature, cert)
}

// FindCertificate returns the certificate in m's security block that the
// signer identity names, parsed.
func FindCertificate(m *Message) (*x509.Certificate, error) {
	return FindCertificateWith(m, x509.ParseCertificate)
}

// FindCertificateWith is FindCertificate with parse as the certificate parser
// (one that remembers certificates it parsed before, say).
func FindCertificateWith(m *Message, parse func(der []byte) (*x509.Certificate, error)) (*x509.Certificate, error) {
	id := &m.Security.Signature.Identity
	var extra []NodeID
	if len(m.Header.ViaList) > 0 && m.Header.ViaList[0].Type == DestinationNode {
		extra = append(extra, m.Header.ViaList[0].Node)
	}
	for _, gc := range m.Security.Certificates {
		if gc.Type != CertificateX509 {
			continue
		}
		cert, err := parse(gc.Certificate)
		if err != nil {
			continue
		}
		if identityMatches(id, cert, extra) == nil {
			return cert, nil
		}
	}
	return nil, errors.New("wire: no certificate in the security block matches the signer identity")
}

// StoredDataSignatureInput returns the bytes signed for a StoredData:
// resource_id || kind || storage_time || StoredDataValue || SignerIdentity
// (RFC 6940 §7.1). resource_id is the raw Resource-ID bytes, without a
// length prefix; kind is a uint32 and storage_time a uint64. For the array
// data model the index is set to zero before signing (RFC 6940 §7.4.2.2), so
// that a value stored by append (index 0xffffffff) verifies when fetched.
func StoredDataSignatureInput(sd *StoredData, resource ResourceID, kind KindID, id *SignerIdentity) ([]byte, error) {
	e := &enc{}
	e.raw(resource)
	e.u32(uint32(kind))
	e.u64(sd.StorageTime)
	v := sd.Value
	if v.Model == DataModelArray {
		v.Array.Index = 0 // RFC 6940 §7.4.2.2
	}
	appendStoredDataValue(e, &v)
	appendSignerIdentity(e, id)
	return e.b, e.err
}

// SignStoredData signs sd for storage under resource/kind (RFC 6940 §7.1)
// and sets sd.Signature.
func SignStoredData(sd *StoredData, resource ResourceID, kind KindID, signer crypto.Signer, identity SignerIdentity) error {
	in, err := StoredDataSignatureInput(sd, resource, kind, &identity)
	if err != nil {
		return err
	}
	sig, err := makeSignature(in, signer, identity)
	if err != nil {
		return err
	}
	sd.Signature = sig
	return nil
}

// VerifyStoredData checks sd's signature for resource/kind against cert
// (RFC 6940 §7.1). For cert_hash_node_id identities the Node-IDs of cert
// are tried.
func VerifyStoredData(sd *StoredData, resource ResourceID, kind KindID, cert *x509.Certificate) error {
	id := &sd.Signature.Identity
	in, err := StoredDataSignatureInput(sd, resource, kind, id)
	if err != nil {
		return err
	}
	if id.Type == IdentityCertHashNodeID {
		if err := identityMatches(id, cert, nil); err != nil {
			return err
		}
		return verifyRaw(in, &sd.Signature, cert)
	}
	return checkSignature(in, &sd.Signature, cert)
}

// Names reports whether id names cert (RFC 6940 §6.3.4); for cert_hash_node_id the
// candidate Node-IDs are extra plus those in cert.
func (id *SignerIdentity) Names(cert *x509.Certificate, extra ...NodeID) bool {
	return identityMatches(id, cert, extra) == nil
}
