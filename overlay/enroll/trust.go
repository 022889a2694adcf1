package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// FingerprintMismatchError: a server presented another CA than the one
// pinned (by an invitation, or the person's earlier confirmation).
type FingerprintMismatchError struct {
	Want, Got string // lower-case hex; Got is "" when the server sent no CA
}

func (e *FingerprintMismatchError) Error() string {
	got := "none"
	if e.Got != "" {
		got = identity.FormatFingerprint(e.Got)
	}
	return fmt.Sprintf("the server presents CA %s, not the pinned %s", got, identity.FormatFingerprint(e.Want))
}

// PinnedTLSConfig trusts exactly the CA whose SHA-256 fingerprint is fp: the
// server's chain must include that CA and its certificate must chain to it
// for the name dialled. A server whose certificate is from a public CA (the
// operator's --tls-cert) is accepted when the system roots verify it; the
// pin is then checked against the configuration's root-cert (PinnedRootCert).
func PinnedTLSConfig(fp string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection does the verification
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, fp)
		},
	}
}

func verifyPinned(cs tls.ConnectionState, fp string) error {
	chain := cs.PeerCertificates
	if len(chain) == 0 {
		return errors.New("the server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool(), CurrentTime: time.Now()}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	i := slices.IndexFunc(chain, func(c *x509.Certificate) bool { return CAFingerprint(c) == fp })
	if i < 0 {
		if _, err := chain[0].Verify(opts); err == nil {
			return nil // a public CA; the configuration's root-cert must still match
		}
		got := ""
		if ca := PresentedCA(chain); ca != nil {
			got = CAFingerprint(ca)
		}
		return &FingerprintMismatchError{Want: fp, Got: got}
	}
	opts.Roots = x509.NewCertPool()
	opts.Roots.AddCert(chain[i])
	if _, err := chain[0].Verify(opts); err != nil {
		return fmt.Errorf("the server's certificate is not valid for %s under the pinned CA: %w", cs.ServerName, err)
	}
	return nil
}

// PresentedCA is the CA certificate at the top of a server's chain (the
// overlay's own CA when the operator runs without --tls-cert), or nil.
func PresentedCA(chain []*x509.Certificate) *x509.Certificate {
	for i := len(chain) - 1; i >= 1; i-- {
		if chain[i].IsCA {
			return chain[i]
		}
	}
	return nil
}

// PinnedClient is an HTTPS client for the configuration and enrollment
// servers that trusts exactly the CA fp (PinnedTLSConfig).
func PinnedClient(fp string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = PinnedTLSConfig(fp)
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// PinnedRootCert checks that the overlay's root-certs (RFC 6940 §11.1)
// include the pinned CA.
func PinnedRootCert(roots []*x509.Certificate, fp string) error {
	for _, c := range roots {
		if CAFingerprint(c) == fp {
			return nil
		}
	}
	got := ""
	if len(roots) > 0 {
		got = CAFingerprint(roots[0])
	}
	return &FingerprintMismatchError{Want: fp, Got: got}
}

// ProbeCA connects to a configuration server without trusting it and
// returns the CA it presents, for a person to compare with what the
// operator gave them (trust on first use, confirmed by the person).
func ProbeCA(ctx context.Context, addr, serverName string) (*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config:    &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, // only to read the chain
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ca := PresentedCA(conn.(*tls.Conn).ConnectionState().PeerCertificates)
	if ca == nil {
		return nil, errors.New("the server presents no CA certificate")
	}
	return ca, nil
}
