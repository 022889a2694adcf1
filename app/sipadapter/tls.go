package sipadapter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// tlsFile holds the adapter's TLS certificate and key (PEM) in the profile. The adapter makes
// a self-signed one when there is none; a certificate from a CA may be put in its place.
const tlsFile = "adapter-tls.pem"

// TLSAddress is where the adapter serves TLS for listen: the next port (5061 beside 5060,
// RFC 3261 §26.2.2 sips), "" for port 0 (tests choose their own).
func TLSAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil || n == 0 || n == 65535 {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// loadTLS returns the profile's TLS certificate, making a self-signed one (ECDSA P-256, ten
// years) for host when there is none.
func loadTLS(profile, host string) (tls.Certificate, error) {
	path := filepath.Join(profile, tlsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if b, err = makeTLS(host); err == nil {
			if err = os.MkdirAll(profile, 0o700); err == nil {
				err = os.WriteFile(path, b, 0o600)
			}
		}
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("the SIP adapter's TLS certificate %s: %w", path, err)
	}
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("the SIP adapter's TLS certificate %s: %w", path, err)
	}
	return cert, nil
}

func makeTLS(host string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	name, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Chordphone SIP adapter " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...), nil
}

// fingerprint is the SHA-256 fingerprint of a certificate, as phones show it.
func fingerprint(cert tls.Certificate) string {
	if len(cert.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}
