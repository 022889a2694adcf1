package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// FileName is the name of the identity file inside a profile directory.
const FileName = "identity.pem"

// OverlayDir is the suggested directory of the identity for overlay inside
// a profile directory: PROFILE/overlays/OVERLAY. One profile can then keep
// its LAN identity and an enrolled one side by side.
func OverlayDir(profile, overlay string) string {
	return filepath.Join(profile, "overlays", strings.ToLower(overlay))
}

// KeyType selects the algorithm of a new key pair.
type KeyType int

// Key types. ECDSA P-256 is the default; RSA (2048 bits) is supported for
// overlays that want the RFC 6940 §6.3.4 mandatory RSASSA-PKCS1-v1_5.
const (
	KeyECDSAP256 KeyType = iota
	KeyRSA2048
)

// Names of the key types, as the configuration document's identity-key
// element and the operator's --identity-key flag spell them.
const (
	KeyNameECDSAP256 = "ecdsa-p256"
	KeyNameRSA2048   = "rsa-2048"
)

// String returns the key type's name.
func (kt KeyType) String() string {
	switch kt {
	case KeyECDSAP256:
		return KeyNameECDSAP256
	case KeyRSA2048:
		return KeyNameRSA2048
	}
	return fmt.Sprintf("key-type-%d", int(kt))
}

// ParseKeyType returns the key type named s ("rsa-2048" or "ecdsa-p256").
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case KeyNameECDSAP256:
		return KeyECDSAP256, nil
	case KeyNameRSA2048:
		return KeyRSA2048, nil
	}
	return 0, fmt.Errorf("unknown identity key type %q (want %s or %s)", s, KeyNameRSA2048, KeyNameECDSAP256)
}

// KeyTypeOf returns the key type of a public key, and false for keys
// Chordphone cannot make (RFC 6940 §6.3.4 needs RSA; P-256 is optional).
func KeyTypeOf(pub crypto.PublicKey) (KeyType, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return KeyRSA2048, k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return KeyECDSAP256, k.Curve == elliptic.P256()
	}
	return 0, false
}

// ErrNoIdentity is returned by Load when the directory has no identity yet.
var ErrNoIdentity = errors.New("no identity in profile")

// GenerateKey creates a new private key.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unknown key type %d", kt)
	}
}

// Identity is a key pair and the certificate chain (leaf first) that binds
// it to Node-IDs and a user name.
type Identity struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// Cert returns the leaf certificate.
func (id *Identity) Cert() *x509.Certificate { return id.Chain[0] }

// NodeIDs returns the Node-IDs of the certificate.
func (id *Identity) NodeIDs() []wire.NodeID { return NodeIDsFromCert(id.Cert()) }

// NodeID returns the first Node-ID of the certificate.
func (id *Identity) NodeID() wire.NodeID {
	ids := id.NodeIDs()
	if len(ids) == 0 {
		return wire.NodeID{}
	}
	return ids[0]
}

// User returns the user name (user@overlay) of the certificate.
func (id *Identity) User() string {
	u, _ := UserFromCert(id.Cert())
	return u
}

// Overlay returns the overlay name the certificate was made for.
func (id *Identity) Overlay() string { return OverlayFromCert(id.Cert()) }

// Matches reports whether the identity is for user on overlay; user may be
// bare ("alice") or full ("alice@overlay"). An empty user matches any.
func (id *Identity) Matches(user, overlay string) bool {
	if !strings.EqualFold(id.Overlay(), overlay) {
		return false
	}
	if user == "" {
		return true
	}
	full, err := UserName(user, overlay)
	return err == nil && strings.EqualFold(id.User(), full)
}

// WithUser returns a self-signed identity with the same key for another
// user name or overlay (the Node-ID, a digest of the key, stays the same).
// Enrolled identities cannot be renamed this way: enroll again.
func (id *Identity) WithUser(user, overlay string, d Digest) (*Identity, error) {
	if !id.SelfSigned() {
		return nil, errors.New("an enrolled identity cannot be renamed; enroll again")
	}
	return NewSelfSigned(id.Key, user, overlay, d)
}

// SelfSigned reports whether the leaf certificate is self-signed.
func (id *Identity) SelfSigned() bool { return IsSelfSigned(id.Cert()) }

// TLSCertificate returns the identity for use on TLS/DTLS links.
func (id *Identity) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{PrivateKey: id.Key, Leaf: id.Cert()}
	for _, c := range id.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// IsSelfSigned reports whether cert is signed by its own key.
func IsSelfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject) &&
		cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
var overlayRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// ValidOverlayName checks an overlay name (a DNS name, RFC 6940 §11.2).
func ValidOverlayName(overlay string) error {
	if len(overlay) > 253 || !overlayRE.MatchString(overlay) {
		return fmt.Errorf("overlay name %q is not a valid DNS name", overlay)
	}
	return nil
}

// UserName returns the full user name for user on overlay: "user@overlay".
// A user already containing "@" is checked and returned as is. Only letters,
// digits and . _ + - are allowed before the "@" (RFC 6940 §11.3: "allow only
// legal characters in the name").
func UserName(user, overlay string) (string, error) {
	local, domain, ok := strings.Cut(user, "@")
	if !ok {
		domain = overlay
	}
	if !userRE.MatchString(local) {
		return "", fmt.Errorf("user name %q: use 1-64 letters, digits or . _ + - (starting with a letter or digit)", local)
	}
	if err := ValidOverlayName(domain); err != nil {
		return "", fmt.Errorf("user name %q: %w", user, err)
	}
	return local + "@" + domain, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// CertTemplate returns the template of a RELOAD peer certificate for the
// given Node-IDs and user name (RFC 6940 §11.3): empty subject, SAN with one
// RELOAD URI per Node-ID and one rfc822Name.
func CertTemplate(ids []wire.NodeID, user, overlay string, validFor time.Duration) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	t := &x509.Certificate{
		SerialNumber:   serial,
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(validFor),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		EmailAddresses: []string{user},
	}
	for _, id := range ids {
		u, err := url.Parse(NodeIDURI(id, overlay))
		if err != nil {
			return nil, err
		}
		t.URIs = append(t.URIs, u)
	}
	return t, nil
}

// SelfSignedValidity is how long a self-signed certificate is valid.
const SelfSignedValidity = 5 * 365 * 24 * time.Hour

// NewSelfSigned makes a self-signed identity for key: its Node-ID is the
// digest d of the public key (RFC 6940 §11.3.1).
func NewSelfSigned(key crypto.Signer, user, overlay string, d Digest) (*Identity, error) {
	name, err := UserName(user, overlay)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	nid, err := SelfSignedNodeID(spki, d, 1, 1)
	if err != nil {
		return nil, err
	}
	tmpl, err := CertTemplate([]wire.NodeID{nid}, name, overlay, SelfSignedValidity)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create self-signed certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse self-signed certificate: %w", err)
	}
	return &Identity{Key: key, Chain: []*x509.Certificate{cert}}, nil
}

// Create makes a new ECDSA P-256 key and a self-signed certificate (SHA-256
// Node-ID) for user on overlay and saves them in dir. It refuses to replace
// an existing identity.
func Create(dir, user, overlay string) (*Identity, error) {
	if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
		return nil, fmt.Errorf("profile %s already has an identity", dir)
	}
	key, err := GenerateKey(KeyECDSAP256)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	id, err := NewSelfSigned(key, user, overlay, DigestSHA256)
	if err != nil {
		return nil, err
	}
	if err := id.Save(dir); err != nil {
		return nil, err
	}
	return id, nil
}

// Encode returns the PEM file content: private key then chain.
func (id *Identity) Encode() ([]byte, error) {
	if len(id.Chain) == 0 {
		return nil, errors.New("identity has no certificate")
	}
	if err := keyMatches(id.Key, id.Cert()); err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	for _, c := range id.Chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes(), nil
}

// Save writes the identity to dir/identity.pem (mode 0600), atomically.
func (id *Identity) Save(dir string) error {
	data, err := id.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create profile directory: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, FileName), data, 0o600)
}

// Load reads the identity of the profile in dir. It returns an error
// wrapping ErrNoIdentity when there is none.
func Load(dir string) (*Identity, error) {
	p := filepath.Join(dir, FileName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNoIdentity)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	id, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return id, nil
}

// Decode parses the PEM form written by Encode.
func Decode(data []byte) (*Identity, error) {
	id := &Identity{}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("private key: %w", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("private key of type %T cannot sign", k)
			}
			id.Key = s
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate: %w", err)
			}
			id.Chain = append(id.Chain, c)
		}
	}
	if id.Key == nil {
		return nil, errors.New("no private key")
	}
	if len(id.Chain) == 0 {
		return nil, errors.New("no certificate")
	}
	if err := keyMatches(id.Key, id.Cert()); err != nil {
		return nil, err
	}
	return id, nil
}

func keyMatches(key crypto.Signer, cert *x509.Certificate) error {
	type eq interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(eq)
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// Fingerprint returns the SHA-256 of the certificate (DER), in hex.
func Fingerprint(cert *x509.Certificate) string {
	s := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(s[:])
}

// KeyFingerprint returns the SHA-256 of the certificate's public key
// (subjectPublicKeyInfo), in hex. It stays the same when a certificate is
// renewed with the same key.
func KeyFingerprint(cert *x509.Certificate) string {
	s := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

// FormatFingerprint groups a hex fingerprint for reading aloud:
// "ab12 cd34 ...".
func FormatFingerprint(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fp[i:min(i+4, len(fp))])
	}
	return b.String()
}

// NewCSR returns a DER PKCS#10 request for key asking for user name user
// (RFC 6940 §11.3: "the requested user name in the CSR"), carried as the
// request's rfc822Name.
func NewCSR(key crypto.Signer, user string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{EmailAddresses: []string{user}}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// WriteFileAtomic writes data to path so that readers see either the old or
// the new content: temporary file in the same directory, fsync, rename,
// fsync of the directory.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
