package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// EnrollPath is where Server takes enrollment requests.
const EnrollPath = "/enroll"

// DefaultKinds are the kind-blocks an operator's configuration requires:
// SIP-REGISTRATION (RFC 7904 §3) and the certificate kinds (RFC 6940 §8).
func DefaultKinds() []config.Kind {
	return []config.Kind{
		{Name: "SIP-REGISTRATION", DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 16, MaxSize: 2000},
		{Name: "CERTIFICATE_BY_NODE", DataModel: "ARRAY", AccessControl: "NODE-MATCH", MaxCount: 4, MaxSize: 4000},
		{Name: "CERTIFICATE_BY_USER", DataModel: "ARRAY", AccessControl: "USER-MATCH", MaxCount: 4, MaxSize: 4000},
	}
}

// Server is an overlay operator's HTTPS service: the signed configuration
// document at /.well-known/reload-config (RFC 6940 §11.2) and the
// enrollment service at /enroll (§11.3). It is an http.Handler.
type Server struct {
	// Base holds the overlay settings (name, bootstrap nodes, chord
	// intervals, ...). Document adds the CA as root-cert, the signer as
	// configuration- and kind-signer, and the enrollment URL.
	Base *config.Config
	// EnrollURL is the https URL of this server's enrollment service as
	// peers reach it; default https://OVERLAY/enroll.
	EnrollURL string
	CA        *CA
	Signer    *identity.Identity // configuration signer, issued by CA
	Users     *Users
	// Open lets anybody create an account by enrolling with a new name
	// and a password; an existing name with another password is then
	// "username_not_available".
	Open bool
	// MaxNodeIDs is the most Node-IDs one certificate may carry (default 4).
	MaxNodeIDs int
	// Validity of issued certificates (default one year).
	Validity time.Duration
	// Reserved account names nobody may enroll as.
	Reserved []string
	Logger   *slog.Logger
	// MaxFailures is how many failed logins one address may make in
	// FailureWindow before it gets 429 Too Many Requests (default 10 in
	// 10 minutes; negative: no limit).
	MaxFailures   int
	FailureWindow time.Duration

	mu      sync.Mutex
	doc     []byte
	limitMu sync.Mutex
	limiter *failLimiter
}

func (s *Server) limit() *failLimiter {
	s.limitMu.Lock()
	defer s.limitMu.Unlock()
	if s.limiter == nil {
		l := &failLimiter{max: s.MaxFailures, window: s.FailureWindow}
		if l.max == 0 {
			l.max = 10
		}
		if l.window == 0 {
			l.window = 10 * time.Minute
		}
		s.limiter = l
	}
	return s.limiter
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// SetBase replaces the overlay settings (a new configuration sequence, kind limits) while
// the server runs; the next Document is made from them.
func (s *Server) SetBase(base *config.Config) {
	s.mu.Lock()
	s.Base, s.doc = base, nil
	s.mu.Unlock()
}

func (s *Server) base() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Base
}

// Config returns the configuration the server publishes (unsigned fields).
func (s *Server) Config() *config.Config { return s.configOf(s.base()) }

func (s *Server) configOf(base *config.Config) *config.Config {
	c := *base
	c.RootCerts = []*x509.Certificate{s.CA.Cert}
	url := s.EnrollURL
	if url == "" {
		url = "https://" + c.InstanceName + EnrollPath
	}
	c.EnrollmentServers = []string{url}
	c.SelfSignedPermitted = false
	sid := s.Signer.NodeID().String()
	c.ConfigurationSigners = []string{sid}
	c.KindSigners = []string{sid}
	if c.Kinds == nil {
		c.Kinds = DefaultKinds()
	} else {
		c.Kinds = slices.Clone(c.Kinds)
	}
	c.Raw, c.Signature = nil, nil
	return &c
}

// Document returns the signed configuration document, made once and then
// cached until Invalidate.
func (s *Server) Document() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc != nil {
		return s.doc, nil
	}
	doc, err := config.Encode(s.Signer, s.configOf(s.Base))
	if err != nil {
		return nil, err
	}
	s.doc = doc
	return doc, nil
}

// Invalidate drops the cached document after Base changed.
func (s *Server) Invalidate() {
	s.mu.Lock()
	s.doc = nil
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case config.WellKnownPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		doc, err := s.Document()
		if err != nil {
			s.log().Error("configuration document", "err", err)
			http.Error(w, "configuration unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", config.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(doc)
		}
	case EnrollPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.enroll(w, r)
	default:
		http.NotFound(w, r)
	}
}

func refuse(w http.ResponseWriter, token string) {
	// RFC 6940 §11.3: 403 with a text/plain token.
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, token)
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	base := s.base()
	overlay := base.InstanceName
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseMultipartForm(64 << 10); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		refuse(w, TokenBadCSR)
		return
	}
	username := r.FormValue("username")
	password := r.FormValue("password")
	log := s.log().With("overlay", overlay, "account", username, "remote", r.RemoteAddr)
	ip := clientIP(r)
	if s.MaxFailures >= 0 && s.limit().blocked(ip) {
		log.Warn("enrollment refused: too many failed logins from this address")
		w.Header().Set("Retry-After", "600")
		http.Error(w, "too many failed attempts", http.StatusTooManyRequests)
		return
	}

	csrDER, err := formCSR(r)
	if err != nil {
		log.Info("enrollment refused", "err", err)
		refuse(w, TokenBadCSR)
		return
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		log.Info("enrollment refused: bad CSR", "err", err)
		refuse(w, TokenBadCSR)
		return
	}

	// The overlay's key type (its identity-key): RSA-2048 keys sign with
	// RSASSA-PKCS1-v1_5/SHA-256, which every RELOAD peer verifies (RFC 6940 §6.3.4).
	if want := base.IdentityKey; want != "" {
		if kt, ok := identity.KeyTypeOf(csr.PublicKey); !ok || kt.String() != want {
			log.Info("enrollment refused: key type", "want", want)
			refuse(w, TokenBadCSR)
			return
		}
	}

	// Authenticate (RFC 6940 §11.3), creating the account in open mode.
	switch err := s.Users.Authenticate(username, password); {
	case err == nil:
	case errors.Is(err, ErrNoSuchUser) && s.Open && ValidAccountName(username) == nil && !s.reserved(username):
		if err := s.Users.Add(username, password); err != nil {
			log.Info("enrollment refused: cannot create account", "err", err)
			if errors.Is(err, ErrUserExists) {
				refuse(w, TokenUsernameNotAvailable)
			} else {
				refuse(w, TokenFailedAuthentication)
			}
			return
		}
		log.Info("account created")
	case errors.Is(err, ErrBadPassword) && s.Open:
		log.Info("enrollment refused: name taken")
		s.limit().fail(ip)
		refuse(w, TokenUsernameNotAvailable)
		return
	default:
		log.Info("enrollment refused: authentication failed")
		s.limit().fail(ip)
		if errors.Is(err, ErrNoSuchUser) && s.Open {
			refuse(w, TokenUsernameNotAvailable) // reserved or not a valid account name
			return
		}
		if errors.Is(err, ErrNoSuchUser) {
			// Still the RFC's failed_authentication for other clients; Chordphone
			// tells the person that the name, not the password, is wrong. This
			// says which names exist, at the rate the failure limit allows.
			w.Header().Set(ReasonHeader, ReasonUnknownUser)
		}
		refuse(w, TokenFailedAuthentication)
		return
	}

	// The user name in the CSR must be the account's (RFC 6940 §11.3:
	// "if ... the requested user name in the CSR is acceptable").
	want := username + "@" + overlay
	switch len(csr.EmailAddresses) {
	case 0:
	case 1:
		if !strings.EqualFold(csr.EmailAddresses[0], want) || s.reserved(username) {
			log.Info("enrollment refused: user name not available", "asked", csr.EmailAddresses[0])
			refuse(w, TokenUsernameNotAvailable)
			return
		}
	default:
		refuse(w, TokenBadCSR)
		return
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs) > 0 {
		refuse(w, TokenBadCSR) // only the server chooses Node-IDs
		return
	}
	n := 1
	if v := r.FormValue("nodeids"); v != "" {
		n, err = strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > s.maxNodeIDs() {
			log.Info("enrollment refused: Node-IDs", "asked", v)
			refuse(w, TokenNodeIDsNotAvailable)
			return
		}
	}
	ids, err := s.Users.NodeIDs(username, n)
	if err != nil {
		log.Error("enrollment: Node-IDs", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	validity := s.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	cert, err := s.CA.Issue(csr.PublicKey, ids, want, overlay, validity)
	if err != nil {
		log.Info("enrollment refused: cannot issue", "err", err)
		refuse(w, TokenBadCSR)
		return
	}
	log.Info("certificate issued", "user", want, "node_id", ids[0].String(), "node_ids", n)
	w.Header().Set("Content-Type", ContentTypeCert)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cert.Raw)
}

func (s *Server) maxNodeIDs() int {
	if s.MaxNodeIDs > 0 {
		return s.MaxNodeIDs
	}
	return 4
}

func (s *Server) reserved(name string) bool {
	for _, r := range s.Reserved {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// formCSR returns the csr form parameter: a file part (the RFC's
// application/pkcs10) or a field, as DER, PEM or base64 DER.
func formCSR(r *http.Request) ([]byte, error) {
	var raw []byte
	if r.MultipartForm != nil && len(r.MultipartForm.File["csr"]) > 0 {
		f, err := r.MultipartForm.File["csr"][0].Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		raw, err = io.ReadAll(io.LimitReader(f, 32<<10))
		if err != nil {
			return nil, err
		}
	} else if v := r.FormValue("csr"); v != "" {
		raw = []byte(v)
	} else {
		return nil, errors.New("no csr parameter")
	}
	if b, _ := pem.Decode(raw); b != nil {
		return b.Bytes, nil
	}
	if len(raw) > 0 && raw[0] == 0x30 { // DER SEQUENCE
		return raw, nil
	}
	der, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		return nil, errors.New("csr is neither DER, PEM nor base64")
	}
	return der, nil
}

// Serve runs the HTTPS service on ln with the TLS certificate tlsCert until
// ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCert tls.Certificate) error {
	hs := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("overlay server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-errc
		return nil
	}
}
