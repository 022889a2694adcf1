package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Content types of RFC 6940 §11.3.
const (
	ContentTypeCSR  = "application/pkcs10"
	ContentTypeCert = "application/pkix-cert"
)

// Request is what a phone asks an enrollment server for.
type Request struct {
	// Config is the overlay's verified configuration: it names the
	// enrollment servers and the root-certs the answer must chain to.
	Config *config.Config
	// Username and Password authenticate the account.
	Username, Password string
	// User is the user name asked for in the certificate; default
	// Username@overlay.
	User string
	// NodeIDs is how many Node-IDs to ask for; default 1.
	NodeIDs int
	// KeyType of a new key (default ECDSA P-256) when the overlay's
	// configuration names none (identity-key); the overlay's choice wins.
	KeyType identity.KeyType
	// HTTPClient makes the requests; nil uses one with a 30 s timeout and
	// the system roots.
	HTTPClient *http.Client
}

// Enroll gets a certificate for the profile in dir (RFC 6940 §11.3) and
// stores key and certificate there. The profile is written only when the
// new certificate has been checked: on any error dir is left as it was.
// A key already in dir for the same overlay is reused.
func Enroll(ctx context.Context, dir string, req Request) (*identity.Identity, error) {
	cfg := req.Config
	if cfg == nil {
		return nil, errors.New("enroll: no overlay configuration")
	}
	if len(cfg.EnrollmentServers) == 0 {
		return nil, fmt.Errorf("overlay %s has no enrollment server", cfg.InstanceName)
	}
	if len(cfg.RootCerts) == 0 {
		return nil, fmt.Errorf("overlay %s has no root certificate to check an enrolled certificate against", cfg.InstanceName)
	}
	user := req.User
	if user == "" {
		user = req.Username
	}
	user, err := identity.UserName(user, cfg.InstanceName)
	if err != nil {
		return nil, err
	}
	n := req.NodeIDs
	if n == 0 {
		n = 1
	}
	kt, err := keyTypeFor(cfg, req.KeyType)
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	if old, err := identity.Load(dir); err == nil && strings.EqualFold(old.Overlay(), cfg.InstanceName) && keyIs(old.Key, kt) {
		key = old.Key
	} else if key, err = identity.GenerateKey(kt); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := identity.NewCSR(key, user)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, srv := range cfg.EnrollmentServers {
		chain, err := post(ctx, req, srv, csr, n)
		if err != nil {
			var ee *Error
			if errors.As(err, &ee) {
				ee.Overlay, ee.User, ee.NodeIDs = cfg.InstanceName, user, n
				return nil, ee // a refusal: other servers would say the same
			}
			lastErr = err
			continue
		}
		id := &identity.Identity{Key: key, Chain: chain}
		if err := check(cfg, id, user, n); err != nil {
			return nil, fmt.Errorf("certificate from %s: %w", srv, err)
		}
		if err := id.Save(dir); err != nil {
			return nil, err
		}
		return id, nil
	}
	return nil, fmt.Errorf("enroll in overlay %s: %w", cfg.InstanceName, lastErr)
}

// check verifies an issued certificate (RFC 6940 §11.3: "The client MUST
// check that the returned certificate chains back to one of the
// certificates received in the root-cert list").
func check(cfg *config.Config, id *identity.Identity, user string, n int) error {
	type eq interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := id.Key.Public().(eq); !ok || !pub.Equal(id.Cert().PublicKey) {
		return errors.New("it is not for our key")
	}
	p, err := cfg.VerifyPeer(id.Chain, time.Now())
	if err != nil {
		return err
	}
	if p.SelfSigned {
		return errors.New("it is self-signed")
	}
	if p.User != user {
		return fmt.Errorf("it names user %s, not %s", p.User, user)
	}
	if len(p.NodeIDs) != n {
		return fmt.Errorf("it has %d Node-IDs, not %d", len(p.NodeIDs), n)
	}
	return nil
}

func post(ctx context.Context, req Request, url string, csr []byte, n int) ([]*x509.Certificate, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	// RFC 6940 §11.3: multipart/form-data with username, password,
	// nodeids and csr (application/pkcs10).
	_ = mw.WriteField("username", req.Username)
	_ = mw.WriteField("password", req.Password)
	if n > 1 {
		_ = mw.WriteField("nodeids", strconv.Itoa(n))
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="csr"; filename="csr.der"`)
	h.Set("Content-Type", ContentTypeCSR)
	pw, err := mw.CreatePart(h)
	if err != nil {
		return nil, err
	}
	_, _ = pw.Write(csr)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return nil, fmt.Errorf("enrollment server %s: %w", url, err)
	}
	hr.Header.Set("Content-Type", mw.FormDataContentType())
	hr.Header.Set("Accept", ContentTypeCert)
	cl := req.HTTPClient
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := cl.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("enrollment server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("enrollment server %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		token := strings.TrimSpace(string(data))
		if len(token) > 100 {
			token = token[:100]
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			return nil, &Error{Token: token, Status: resp.StatusCode, kind: ErrTooManyAttempts}
		}
		if resp.StatusCode == http.StatusForbidden || tokenError(token) != ErrUnknown {
			kind := tokenError(token)
			if kind == ErrFailedAuthentication && resp.Header.Get(ReasonHeader) == ReasonUnknownUser {
				kind = ErrUnknownUser
			}
			return nil, &Error{Token: token, Status: resp.StatusCode, kind: kind}
		}
		return nil, fmt.Errorf("enrollment server %s answered %s", url, resp.Status)
	}
	chain, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("enrollment server %s: %w", url, err)
	}
	return chain, nil
}

// parseCerts reads DER (one certificate or several concatenated, RFC 2585)
// or PEM.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		var out []*x509.Certificate
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		if len(out) == 0 {
			return nil, errors.New("no certificate in answer")
		}
		return out, nil
	}
	out, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("answer is not a certificate: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in answer")
	}
	return out, nil
}

// keyTypeFor is the key type a phone makes for overlay cfg: the one its
// identity-key element asks for, else def.
func keyTypeFor(cfg *config.Config, def identity.KeyType) (identity.KeyType, error) {
	if cfg.IdentityKey == "" {
		return def, nil
	}
	return identity.ParseKeyType(cfg.IdentityKey)
}

func keyIs(key crypto.Signer, kt identity.KeyType) bool {
	t, ok := identity.KeyTypeOf(key.Public())
	return ok && t == kt
}
