package enroll

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// CA is an overlay's certificate authority: its certificate is the
// overlay's root-cert (RFC 6940 §11.1).
type CA struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// NewCA makes a CA for overlay with a key of type kt, valid for ten years.
func NewCA(overlay string, kt identity.KeyType) (*CA, error) {
	key, serial, err := keyAndSerial(kt)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Chordphone overlay CA " + overlay},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Key: key, Cert: cert}, nil
}

// keyAndSerial makes the key and the random 127-bit serial number of a new certificate
// (RFC 5280 §4.1.2.2: positive, at most 20 octets).
func keyAndSerial(kt identity.KeyType) (crypto.Signer, *big.Int, error) {
	key, err := identity.GenerateKey(kt)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	return key, serial, nil
}

// Issue signs a RELOAD certificate for pub with the given Node-IDs and user
// name (RFC 6940 §11.3: SAN with only those identities, empty subject).
func (ca *CA) Issue(pub crypto.PublicKey, ids []wire.NodeID, user, overlay string, validFor time.Duration) (*x509.Certificate, error) {
	if len(ids) == 0 {
		return nil, errors.New("no Node-ID to certify")
	}
	tmpl, err := identity.CertTemplate(ids, user, overlay, validFor)
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// IssueIdentity makes a new key and certificate with one random Node-ID,
// for the server's own peers (configuration signer, bootstrap peer). The key
// is of the CA's type, so that the overlay's signatures all use one algorithm.
func (ca *CA) IssueIdentity(user, overlay string, validFor time.Duration) (*identity.Identity, error) {
	kt, _ := identity.KeyTypeOf(ca.Key.Public())
	key, err := identity.GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	var id wire.NodeID
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	name, err := identity.UserName(user, overlay)
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(key.Public(), []wire.NodeID{id}, name, overlay, validFor)
	if err != nil {
		return nil, err
	}
	return &identity.Identity{Key: key, Chain: []*x509.Certificate{cert}}, nil
}

// IssueTLS makes an HTTPS server certificate for dnsNames and IP
// addresses, for an operator without a certificate from a public CA.
func (ca *CA) IssueTLS(hosts []string, validFor time.Duration) (*identity.Identity, error) {
	key, serial, err := keyAndSerial(identity.KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := parseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue TLS certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &identity.Identity{Key: key, Chain: []*x509.Certificate{cert, ca.Cert}}, nil
}

func parseIP(s string) net.IP { return net.ParseIP(s) }
