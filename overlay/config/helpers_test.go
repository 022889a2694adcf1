package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key, cert}
}

// issue makes a peer identity with a random Node-ID signed by the CA.
func (ca *testCA) issue(t testing.TB, user, overlay string) *identity.Identity {
	t.Helper()
	key, _ := identity.GenerateKey(identity.KeyECDSAP256)
	var id wire.NodeID
	_, _ = rand.Read(id[:])
	tmpl, err := identity.CertTemplate([]wire.NodeID{id}, user+"@"+overlay, overlay, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &identity.Identity{Key: key, Chain: []*x509.Certificate{cert}}
}

// issueTLS makes an HTTPS server certificate for dnsName.
func (ca *testCA) issueTLS(t testing.TB, dnsName string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

func nodeHex(id *identity.Identity) string { return id.NodeID().String() }

func selfSigned(t testing.TB) (*identity.Identity, error) {
	k, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	return identity.NewSelfSigned(k, "me", "lan", identity.DigestSHA256)
}
