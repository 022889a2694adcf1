package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

const overlayName = "overlay.test"

type testOverlay struct {
	dir    string
	srv    *Server
	addr   string
	client *http.Client
}

// startOverlay runs an operator's server on loopback with its own CA, as
// "chordphone overlay-server" does.
func startOverlay(t *testing.T, open bool) *testOverlay {
	t.Helper()
	return startOverlayKeys(t, open, identity.KeyNameECDSAP256) // fast keys; RSA: TestOverlayIssuesItsKeyType
}

func startOverlayKeys(t *testing.T, open bool, keyName string) *testOverlay {
	t.Helper()
	dir := t.TempDir()
	if _, err := InitDir(dir, overlayName, keyName); err != nil {
		t.Fatal(err)
	}
	srv, _, err := LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Users.Cost = bcrypt.MinCost
	srv.Open = open
	tlsID, err := srv.CA.IssueTLS([]string{overlayName}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, tlsID.TLSCertificate()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testOverlay{dir: dir, srv: srv, addr: ln.Addr().String(), client: clientTo(srv.CA.Cert, ln.Addr().String())}
}

// clientTo trusts ca and sends every connection to addr, as DNS for the
// overlay name would.
func clientTo(ca *x509.Certificate, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func (o *testOverlay) fetch(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := (&config.Fetcher{Client: o.client, NoSRV: true}).Fetch(context.Background(), overlayName, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// snapshot lists a directory's files with their content and mode.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		fi, _ := d.Info()
		out = append(out, p+" "+fi.Mode().String()+" "+string(b))
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestEnrollAndRefusals(t *testing.T) {
	o := startOverlay(t, false)
	if err := o.srv.Users.Add("alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	if err := o.srv.Users.Add("bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	cfg := o.fetch(t)
	if !cfg.NeedsEnrollment() || len(cfg.RootCerts) != 1 || cfg.EnrollmentServers[0] != "https://overlay.test/enroll" {
		t.Fatalf("config %+v", cfg)
	}
	if k, ok := cfg.Kind("SIP-REGISTRATION"); !ok || k.DataModel != "DICTIONARY" {
		t.Errorf("SIP-REGISTRATION kind %+v", k)
	}
	ctx := context.Background()
	alice := filepath.Join(t.TempDir(), "alice")
	id, err := Enroll(ctx, alice, Request{Config: cfg, Username: "alice", Password: "alice-password", HTTPClient: o.client})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := identity.Load(alice)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.NodeID() != id.NodeID() || loaded.User() != "alice@overlay.test" || loaded.SelfSigned() {
		t.Errorf("profile %v %q", loaded.NodeID(), loaded.User())
	}
	p, err := config.VerifyPeerCert(cfg, loaded.Cert())
	if err != nil || p.User != "alice@overlay.test" {
		t.Fatalf("enrolled cert not accepted: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(alice, identity.FileName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Coming back gives the same Node-ID and keeps the key (RFC 6940 §11.3).
	again, err := Enroll(ctx, alice, Request{Config: cfg, Username: "alice", Password: "alice-password", HTTPClient: o.client})
	if err != nil {
		t.Fatal(err)
	}
	if again.NodeID() != id.NodeID() || identity.KeyFingerprint(again.Cert()) != identity.KeyFingerprint(id.Cert()) {
		t.Error("re-enrollment changed Node-ID or key")
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	for _, tc := range []struct {
		name    string
		dir     string
		req     Request
		want    error
		message string
	}{
		{"wrong password", alice, Request{Username: "alice", Password: "guess-guess"}, ErrFailedAuthentication, "The user name or password is not right for overlay overlay.test"},
		{"wrong password, new profile", fresh, Request{Username: "alice", Password: "guess-guess"}, ErrFailedAuthentication, "password is not right"},
		{"unknown account", fresh, Request{Username: "mallory", Password: "whatever1"}, ErrUnknownUser, "Overlay overlay.test has no user mallory."},
		{"taken name", fresh, Request{Username: "bob", Password: "bob-password", User: "alice"}, ErrUsernameNotAvailable, "The name alice@overlay.test is not available on overlay overlay.test"},
		{"too many Node-IDs", fresh, Request{Username: "bob", Password: "bob-password", NodeIDs: 50}, ErrNodeIDsNotAvailable, "will not give 50 Node-IDs"},
	} {
		before := snapshot(t, tc.dir)
		tc.req.Config, tc.req.HTTPClient = cfg, o.client
		_, err := Enroll(ctx, tc.dir, tc.req)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: got %v, want %v (%q)", tc.name, err, tc.want, tc.message)
		}
		if after := snapshot(t, tc.dir); after != before {
			t.Errorf("%s: profile changed", tc.name)
		}
	}
	// Several Node-IDs.
	bob, err := Enroll(ctx, filepath.Join(t.TempDir(), "bob"), Request{Config: cfg, Username: "bob", Password: "bob-password", NodeIDs: 2, HTTPClient: o.client})
	if err != nil || len(bob.NodeIDs()) != 2 {
		t.Fatalf("two Node-IDs: %v", err)
	}
}

func TestOpenRegistration(t *testing.T) {
	o := startOverlay(t, true)
	cfg := o.fetch(t)
	ctx := context.Background()
	if _, err := Enroll(ctx, t.TempDir(), Request{Config: cfg, Username: "carol", Password: "carol-password", HTTPClient: o.client}); err != nil {
		t.Fatal(err)
	}
	if !o.srv.Users.Exists("carol") {
		t.Error("account not created")
	}
	dir := t.TempDir()
	_, err := Enroll(ctx, dir, Request{Config: cfg, Username: "carol", Password: "another-one", HTTPClient: o.client})
	if !errors.Is(err, ErrUsernameNotAvailable) || !strings.Contains(err.Error(), "someone else has it") {
		t.Errorf("taken name in open mode: %v", err)
	}
	_, err = Enroll(ctx, dir, Request{Config: cfg, Username: "bootstrap", Password: "reserved-name", HTTPClient: o.client})
	if !errors.Is(err, ErrFailedAuthentication) && !errors.Is(err, ErrUsernameNotAvailable) {
		t.Errorf("reserved name: %v", err)
	}
	if snapshot(t, dir) != "" {
		t.Error("refused enrollment wrote the profile")
	}
}

// TestTamperedConfiguration: a configuration altered on the way (here to
// send enrollments to someone else) is refused, and nothing is enrolled.
func TestTamperedConfiguration(t *testing.T) {
	o := startOverlay(t, false)
	doc, err := o.srv.Document()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(doc, []byte("https://overlay.test/enroll"), []byte("https://evil.test/enroll"), 1)
	tlsID, _ := o.srv.CA.IssueTLS([]string{overlayName}, time.Hour)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", config.ContentType)
		_, _ = w.Write(bad)
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{tlsID.TLSCertificate()}}
	hs.StartTLS()
	defer hs.Close()
	f := &config.Fetcher{Client: clientTo(o.srv.CA.Cert, hs.Listener.Addr().String()), NoSRV: true}
	_, err = f.Fetch(context.Background(), overlayName, "")
	if !errors.Is(err, config.ErrBadSignature) || !strings.Contains(err.Error(), "altered after signing") {
		t.Errorf("tampered configuration: %v", err)
	}
}

// TestRogueEnrollmentServer: a certificate from another CA is refused by
// the client and by VerifyPeerCert; the profile stays as it was.
func TestRogueEnrollmentServer(t *testing.T) {
	o := startOverlay(t, false)
	rogue := startOverlay(t, false)
	if err := rogue.srv.Users.Add("alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	cfg := o.fetch(t)
	cfg2 := *cfg
	cfg2.EnrollmentServers = []string{"https://overlay.test/enroll"}
	dir := t.TempDir()
	_, err := Enroll(context.Background(), dir, Request{Config: &cfg2, Username: "alice", Password: "alice-password",
		HTTPClient: clientTo(rogue.srv.CA.Cert, rogue.addr)})
	if err == nil || !strings.Contains(err.Error(), "not issued by the certificate authority of overlay overlay.test") {
		t.Errorf("rogue certificate: %v", err)
	}
	if snapshot(t, dir) != "" {
		t.Error("profile written")
	}
	// A peer enrolled in the rogue overlay cannot join ours.
	rcfg := rogue.fetch(t)
	rid, err := Enroll(context.Background(), t.TempDir(), Request{Config: rcfg, Username: "alice", Password: "alice-password", HTTPClient: rogue.client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.VerifyPeerCert(cfg, rid.Cert()); err == nil {
		t.Error("certificate of another CA accepted")
	}
	if _, err := config.VerifyPeerCert(rcfg, rid.Cert()); err != nil {
		t.Errorf("own overlay refuses its member: %v", err)
	}
}

func TestServerRejectsMalformed(t *testing.T) {
	o := startOverlay(t, false)
	_ = o.srv.Users.Add("alice", "alice-password")
	post := func(body string, ct string) (int, string) {
		resp, err := o.client.Post("https://overlay.test/enroll", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("username=alice&password=alice-password&csr=garbage", "application/x-www-form-urlencoded"); code != 403 || body != TokenBadCSR {
		t.Errorf("garbage CSR: %d %q", code, body)
	}
	if code, body := post("username=alice&password=alice-password", "application/x-www-form-urlencoded"); code != 403 || body != TokenBadCSR {
		t.Errorf("no CSR: %d %q", code, body)
	}
	if code, _ := post("--x\r\n", "multipart/form-data; boundary=x"); code != 403 {
		t.Errorf("broken multipart: %d", code)
	}
	resp, err := o.client.Get("https://overlay.test/enroll")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET enroll: %d", resp.StatusCode)
	}
}

func TestFailedLoginLimit(t *testing.T) {
	o := startOverlay(t, false)
	o.srv.MaxFailures = 3
	_ = o.srv.Users.Add("alice", "alice-password")
	cfg := o.fetch(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := Enroll(ctx, t.TempDir(), Request{Config: cfg, Username: "alice", Password: "guess-" + string(rune('a'+i)), HTTPClient: o.client}); !errors.Is(err, ErrFailedAuthentication) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, err := Enroll(ctx, t.TempDir(), Request{Config: cfg, Username: "alice", Password: "alice-password", HTTPClient: o.client})
	if !errors.Is(err, ErrTooManyAttempts) || !strings.Contains(err.Error(), "Wait ten minutes") {
		t.Errorf("after 3 failures: %v", err)
	}
}

// TestOverlayIssuesItsKeyType: a new overlay's document asks for RSA-2048 identities
// (identity-key; RSASSA-PKCS1-v1_5/SHA-256 is the algorithm every RELOAD implementation
// supports, RFC 6940 §6.3.4), its CA and signer use it, a phone enrolling makes that kind of
// key even when it would default to ECDSA, and a CSR with another kind of key is refused.
func TestOverlayIssuesItsKeyType(t *testing.T) {
	o := startOverlayKeys(t, true, "")
	cfg := o.fetch(t)
	if cfg.IdentityKey != identity.KeyNameRSA2048 {
		t.Fatalf("document identity-key %q, want %s", cfg.IdentityKey, identity.KeyNameRSA2048)
	}
	if kt, _ := identity.KeyTypeOf(o.srv.CA.Cert.PublicKey); kt != identity.KeyRSA2048 {
		t.Fatalf("CA key %v", kt)
	}
	id, err := Enroll(context.Background(), t.TempDir(), Request{Config: cfg, Username: "carol", Password: "carol-password",
		KeyType: identity.KeyECDSAP256, HTTPClient: o.client})
	if err != nil {
		t.Fatal(err)
	}
	if kt, _ := identity.KeyTypeOf(id.Cert().PublicKey); kt != identity.KeyRSA2048 {
		t.Fatalf("enrolled key %v, want rsa-2048", kt)
	}
	// A phone that ignores identity-key: refused.
	key, _ := identity.GenerateKey(identity.KeyECDSAP256)
	csr, err := identity.NewCSR(key, "dave@"+overlayName)
	if err != nil {
		t.Fatal(err)
	}
	_, err = post(context.Background(), Request{Config: cfg, Username: "dave", Password: "dave-password", HTTPClient: o.client},
		cfg.EnrollmentServers[0], csr, 1)
	var ee *Error
	if !errors.As(err, &ee) || ee.Token != TokenBadCSR {
		t.Fatalf("ECDSA CSR in an RSA overlay: %v, want %s", err, TokenBadCSR)
	}
}
