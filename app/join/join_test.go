package join

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
)

// server is a real operator's server (the overlay-server command's directory and Server) on
// loopback, with the HTTPS certificate issued by the overlay's own CA for 127.0.0.1.
type server struct {
	srv  *enroll.Server
	url  string // configuration URL
	ca   string // CA fingerprint
	addr string
}

func startServer(t *testing.T, maxFailures int) *server {
	t.Helper()
	dir := t.TempDir()
	if _, err := enroll.InitDir(dir, "lab.test", ""); err != nil {
		t.Fatal(err)
	}
	srv, _, err := enroll.LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Users.Cost = bcrypt.MinCost
	if err := srv.Users.Add("alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	srv.MaxFailures = maxFailures
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.EnrollURL = "https://" + ln.Addr().String() + enroll.EnrollPath
	tlsID, err := srv.CA.IssueTLS([]string{"lab.test", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, tlsID.TLSCertificate()) }()
	t.Cleanup(func() { cancel(); <-done })
	return &server{srv: srv, url: "https://" + ln.Addr().String() + "/.well-known/reload-config",
		ca: enroll.CAFingerprint(srv.CA.Cert), addr: ln.Addr().String()}
}

func wantCode(t *testing.T, err error, code string) *Error {
	t.Helper()
	var je *Error
	if !errors.As(err, &je) || je.Code != code {
		t.Fatalf("got %v (code %q), want code %s", err, CodeOf(err), code)
	}
	for _, raw := range []string{"x509", "tls:", "dial tcp", "Get \"", "Settings"} {
		if strings.Contains(je.Message, raw) {
			t.Errorf("message for a person holds %q: %s", raw, je.Message)
		}
	}
	return je
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString(p + "\n" + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}

// TestEnrollWithPinnedCA: a pinned CA (an invitation's) gets the phone its certificate and is
// remembered for the overlay; the next fetch needs no pin.
func TestEnrollWithPinnedCA(t *testing.T) {
	s := startServer(t, 0)
	profile := t.TempDir()
	res, err := Enroll(context.Background(), profile, Request{
		Target: Target{Config: s.url, CAFingerprint: s.ca}, User: "alice", Password: "alice-password"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.User() != "alice@lab.test" || res.CAFingerprint != s.ca {
		t.Errorf("identity %s, CA %s", res.Identity.User(), res.CAFingerprint)
	}
	if got := TrustedCA(profile, "lab.test"); got != s.ca {
		t.Errorf("remembered CA %q", got)
	}
	if _, pin, err := Fetch(context.Background(), profile, Target{Overlay: "lab.test", Config: s.url}); err != nil || pin != s.ca {
		t.Errorf("fetch with the remembered CA: %v (pin %q)", err, pin)
	}
}

// TestUntrustedCAIsShownNotRaw: with no pin, the server's own CA is unknown to the system; the
// error carries the fingerprint for the person to confirm, and no x509 text.
func TestUntrustedCAIsShownNotRaw(t *testing.T) {
	s := startServer(t, 0)
	profile := t.TempDir()
	_, err := Enroll(context.Background(), profile, Request{Target: Target{Config: s.url}, User: "alice", Password: "alice-password"})
	je := wantCode(t, err, CodeCANotTrusted)
	if je.CAFingerprint != s.ca || !strings.Contains(je.Message, FingerprintText(s.ca)) {
		t.Errorf("fingerprint %q, message %s", je.CAFingerprint, je.Message)
	}
	if _, err := identity.Load(profile); !errors.Is(err, identity.ErrNoIdentity) {
		t.Errorf("profile has an identity: %v", err)
	}
}

func TestFingerprintMismatch(t *testing.T) {
	s := startServer(t, 0)
	other := strings.Repeat("0f", 32)
	profile := t.TempDir()
	_, err := Enroll(context.Background(), profile, Request{Target: Target{Config: s.url, CAFingerprint: other}, User: "alice", Password: "alice-password"})
	je := wantCode(t, err, CodeCAMismatch)
	if je.CAFingerprint != s.ca || !strings.Contains(je.Message, FingerprintText(other)) {
		t.Errorf("message %s", je.Message)
	}
	if TrustedCA(profile, "lab.test") != "" {
		t.Error("a mismatched CA was remembered")
	}
}

func TestWrongPassword(t *testing.T) {
	s := startServer(t, 0)
	profile := t.TempDir()
	before := snapshot(t, profile)
	_, err := Enroll(context.Background(), profile, Request{Target: Target{Config: s.url, CAFingerprint: s.ca}, User: "alice", Password: "guess"})
	wantCode(t, err, CodeWrongPassword)
	if snapshot(t, profile) != before {
		t.Error("profile changed")
	}
}

func TestUnknownUser(t *testing.T) {
	s := startServer(t, 0)
	_, err := Enroll(context.Background(), t.TempDir(), Request{Target: Target{Config: s.url, CAFingerprint: s.ca}, User: "mallory", Password: "x"})
	je := wantCode(t, err, CodeUnknownUser)
	if !strings.Contains(je.Message, "no user mallory") {
		t.Errorf("message %s", je.Message)
	}
}

func TestRateLimited(t *testing.T) {
	s := startServer(t, 2)
	req := Request{Target: Target{Config: s.url, CAFingerprint: s.ca}, User: "alice", Password: "guess"}
	for i := 0; i < 2; i++ {
		_, err := Enroll(context.Background(), t.TempDir(), req)
		wantCode(t, err, CodeWrongPassword)
	}
	req.Password = "alice-password" // even the right one, for a while
	_, err := Enroll(context.Background(), t.TempDir(), req)
	wantCode(t, err, CodeRateLimited)
}

func TestServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Enroll(context.Background(), t.TempDir(), Request{Target: Target{Config: "https://" + addr + "/.well-known/reload-config"}, User: "alice", Password: "x"})
	je := wantCode(t, err, CodeUnreachable)
	if !strings.Contains(je.Message, "refused") {
		t.Errorf("message %s", je.Message)
	}
}

// TestNameDoesNotResolve: an overlay name with no address (RFC 6761 reserves .invalid).
func TestNameDoesNotResolve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var dns *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(ctx, "no-such-overlay.invalid"); !errors.As(err, &dns) || !dns.IsNotFound {
		t.Skipf("this machine's resolver does not answer NXDOMAIN: %v", err)
	}
	_, err := Enroll(ctx, t.TempDir(), Request{Target: Target{Overlay: "no-such-overlay.invalid"}, User: "alice", Password: "x"})
	je := wantCode(t, err, CodeNotResolved)
	if !strings.Contains(je.Message, "no-such-overlay.invalid does not resolve") {
		t.Errorf("message %s", je.Message)
	}
}
