package mailbox

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// wrapInfo binds derived keys and OAEP labels to this format.
const wrapInfo = "chordphone mailbox v1"

// ErrNotForUs: no wrapped key of the envelope is for the given certificate, or it does not
// unwrap, or the content does not open: the envelope cannot be read with this key.
var ErrNotForUs = errors.New("mailbox: cannot decrypt: not sealed to this key, or altered")

// Message is a message (or one part of it) as the sender writes and the recipient reads it.
type Message struct {
	From, To    string
	ID          [16]byte
	Created     time.Time
	Part, Parts int
	Type        uint8 // ContentText, ContentVoice
	Payload     []byte
}

// keyID names a certificate's key: the first 8 bytes of SHA-256 of its SubjectPublicKeyInfo.
func keyID(c *x509.Certificate) [8]byte {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return [8]byte(h[:8])
}

// Seal encrypts m to each of the recipient's certificates (one content key, wrapped for
// each: ECDH P-256 or RSA-OAEP) and returns the envelope's bytes. The sender signs them
// as a RELOAD value (storage.NewValue).
func Seal(m *Message, to []*x509.Certificate) ([]byte, error) {
	if len(to) == 0 || len(to) > MaxWraps {
		return nil, fmt.Errorf("mailbox: %d recipient certificates (1-%d)", len(to), MaxWraps)
	}
	ck := make([]byte, 32)
	if _, err := rand.Read(ck); err != nil {
		return nil, err
	}
	e := &Envelope{From: m.From, To: m.To, ID: m.ID, Created: m.Created, Part: m.Part, Parts: m.Parts}
	for _, c := range to {
		w, err := wrap(ck, c)
		if err != nil {
			return nil, err
		}
		e.Wraps = append(e.Wraps, w)
	}
	aad, err := e.marshalHeader()
	if err != nil {
		return nil, err
	}
	if _, err := rand.Read(e.Nonce[:]); err != nil {
		return nil, err
	}
	g, err := gcm(ck)
	if err != nil {
		return nil, err
	}
	e.Sealed = g.Seal(nil, e.Nonce[:], append([]byte{m.Type}, m.Payload...), aad)
	return e.Marshal()
}

// Overhead is how many bytes an envelope adds to a payload, for recipients with the
// given certificates and the given names (so a sender can cut a message into parts that
// fit MaxSize).
func Overhead(from, to string, certs []*x509.Certificate) int {
	n := len(magic) + 1 + len(from) + 1 + len(to) + 16 + 8 + 3
	for _, c := range certs {
		n += 8 + 1 + 2
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			n += k.Size()
		} else {
			n += 65 + 32 + gcmTag
		}
	}
	return n + 12 + 2 + 1 + gcmTag
}

// Open decrypts an envelope with the recipient's key and certificate. A malformed
// envelope wraps ErrMalformed; one it cannot decrypt (not for this key, or altered
// anywhere: names, id, time, parts and content are all authenticated) is ErrNotForUs.
func Open(b []byte, key crypto.Signer, cert *x509.Certificate) (*Message, error) {
	e, err := Parse(b)
	if err != nil {
		return nil, err
	}
	id := keyID(cert)
	for _, w := range e.Wraps {
		if w.KeyID != id {
			continue
		}
		ck, err := unwrap(w, key)
		if err != nil {
			continue
		}
		g, err := gcm(ck)
		if err != nil {
			return nil, err
		}
		pt, err := g.Open(nil, e.Nonce[:], e.Sealed, e.header)
		if err != nil || len(pt) == 0 {
			return nil, ErrNotForUs
		}
		return &Message{From: e.From, To: e.To, ID: e.ID, Created: e.Created, Part: e.Part, Parts: e.Parts,
			Type: pt[0], Payload: pt[1:]}, nil
	}
	return nil, ErrNotForUs
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrap wraps the content key ck for certificate c.
func wrap(ck []byte, c *x509.Certificate) (Wrap, error) {
	w := Wrap{KeyID: keyID(c)}
	switch pub := c.PublicKey.(type) {
	case *rsa.PublicKey:
		data, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, ck, []byte(wrapInfo))
		if err != nil {
			return w, fmt.Errorf("mailbox: RSA-OAEP: %w", err)
		}
		w.Alg, w.Data = WrapRSA, data
	case *ecdsa.PublicKey:
		rp, err := pub.ECDH()
		if err != nil || rp.Curve() != ecdh.P256() {
			return w, fmt.Errorf("mailbox: recipient key is not P-256: %v", err)
		}
		eph, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return w, err
		}
		kek, err := deriveKEK(eph, rp, eph.PublicKey(), rp)
		if err != nil {
			return w, err
		}
		g, err := gcm(kek)
		if err != nil {
			return w, err
		}
		// The key-encryption key is used once, so a zero nonce is safe.
		w.Alg = WrapECDH
		w.Data = g.Seal(eph.PublicKey().Bytes(), make([]byte, 12), ck, nil)
	default:
		return w, fmt.Errorf("mailbox: recipient key type %T cannot be encrypted to", c.PublicKey)
	}
	return w, nil
}

// deriveKEK is HKDF-SHA256 over the ECDH secret of priv and peer, salted with the ephemeral
// and the recipient's public keys.
func deriveKEK(priv *ecdh.PrivateKey, peer, eph, recipient *ecdh.PublicKey) ([]byte, error) {
	secret, err := priv.ECDH(peer)
	if err != nil {
		return nil, err
	}
	salt := append(append([]byte(nil), eph.Bytes()...), recipient.Bytes()...)
	return hkdf.Key(sha256.New, secret, salt, wrapInfo, 32)
}

// unwrap recovers the content key from w with the recipient's key.
func unwrap(w Wrap, key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if w.Alg != WrapRSA {
			return nil, ErrNotForUs
		}
		return rsa.DecryptOAEP(sha256.New(), nil, k, w.Data, []byte(wrapInfo))
	case *ecdsa.PrivateKey:
		if w.Alg != WrapECDH || len(w.Data) != 65+32+gcmTag {
			return nil, ErrNotForUs
		}
		priv, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		eph, err := ecdh.P256().NewPublicKey(w.Data[:65])
		if err != nil {
			return nil, ErrNotForUs
		}
		kek, err := deriveKEK(priv, eph, eph, priv.PublicKey())
		if err != nil {
			return nil, err
		}
		g, err := gcm(kek)
		if err != nil {
			return nil, err
		}
		return g.Open(nil, make([]byte, 12), w.Data[65:], nil)
	}
	return nil, fmt.Errorf("mailbox: own key type %T cannot decrypt", key)
}
