package enrollcmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func runOp(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuf
	o := &Operator{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, BcryptCost: bcrypt.MinCost}
	code := o.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestOperatorCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "op")
	if code, _, stderr := runOp(t, "", "user", "list", "--dir", dir); code != 1 || !strings.Contains(stderr, "not an overlay-server directory") {
		t.Errorf("uninitialised: %d %s", code, stderr)
	}
	if code, _, stderr := runOp(t, "", "init", "--dir", dir); code != 2 || !strings.Contains(stderr, "--name is required") {
		t.Errorf("init without name: %d %s", code, stderr)
	}
	if code, out, stderr := runOp(t, "", "init", "--dir", dir, "--name", "overlay.test", "--bootstrap", "127.0.0.1:6084"); code != 0 || !strings.Contains(out, "created overlay overlay.test") {
		t.Fatalf("init: %d %s %s", code, out, stderr)
	}
	for _, f := range []string{enroll.FileCA, enroll.FileSigner, enroll.FileBootstrap, enroll.FileSettings} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	if code, _, stderr := runOp(t, "", "init", "--dir", dir, "--name", "overlay.test"); code != 1 || !strings.Contains(stderr, "already holds") {
		t.Errorf("second init: %d %s", code, stderr)
	}
	if code, out, stderr := runOp(t, "s3cret-pass\n", "user", "add", "alice", "--dir", dir); code != 0 || !strings.Contains(out, "user alice: added") {
		t.Fatalf("user add: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := runOp(t, "s3cret-pass\n", "user", "add", "--dir", dir, "alice"); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("user add twice: %d %s", code, stderr)
	}
	if code, _, stderr := runOp(t, "short\n", "user", "add", "--dir", dir, "bob"); code != 1 || !strings.Contains(stderr, "at least 8") {
		t.Errorf("short password: %d %s", code, stderr)
	}
	if code, _, stderr := runOp(t, "whatever-pass\n", "user", "add", "--dir", dir, "bootstrap"); code != 1 || !strings.Contains(stderr, "reserved") {
		t.Errorf("reserved: %d %s", code, stderr)
	}
	if code, _, stderr := runOp(t, "", "user", "add", "--dir", dir, "dave"); code != 1 || !strings.Contains(stderr, "no password") {
		t.Errorf("no password: %d %s", code, stderr)
	}
	_, _, _ = runOp(t, "carol-pass-1\n", "user", "add", "carol", "--dir", dir)
	if code, out, _ := runOp(t, "", "user", "list", "--dir", dir); code != 0 || out != "alice\ncarol\n" {
		t.Errorf("list: %q", out)
	}
	users, _ := os.ReadFile(filepath.Join(dir, enroll.FileUsers))
	if bytes.Contains(users, []byte("s3cret-pass")) || !bytes.Contains(users, []byte("$2a$")) {
		t.Errorf("passwords not hashed: %s", users)
	}
	if code, out, _ := runOp(t, "", "user", "remove", "carol", "--dir", dir); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: %s", out)
	}
	if code, _, stderr := runOp(t, "", "user", "remove", "carol", "--dir", dir); code != 1 || !strings.Contains(stderr, "no such user") {
		t.Errorf("remove twice: %s", stderr)
	}
	code, doc, _ := runOp(t, "", "config", "--dir", dir)
	if code != 0 {
		t.Fatal("config")
	}
	cfg, err := config.ParseOverlay([]byte(doc), "overlay.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Verify(config.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(cfg.BootstrapNodes) != 1 || cfg.BootstrapNodes[0].String() != "127.0.0.1:6084" || cfg.Sequence != 2 {
		t.Errorf("bootstrap %v sequence %d", cfg.BootstrapNodes, cfg.Sequence)
	}
	code, caPEM, _ := runOp(t, "", "ca", "--dir", dir)
	if b, _ := pem.Decode([]byte(caPEM)); code != 0 || b == nil || !bytes.Equal(b.Bytes, cfg.RootCerts[0].Raw) {
		t.Error("ca output is not the root-cert")
	}
	if code, _, stderr := runOp(t, "", "frobnicate"); code != 2 || !strings.Contains(stderr, "usage:") {
		t.Errorf("unknown command: %d", code)
	}
	if code, _, _ := runOp(t, "", "serve", "--dir", dir, "--bogus"); code != 2 {
		t.Errorf("unknown flag: %d", code)
	}
}

// TestOperatorServe runs "overlay-server --dir DIR --name NAME --listen ADDR"
// with a bootstrap peer hook, then a phone fetches the configuration and
// enrolls through it.
func TestOperatorServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "op")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	type peerStart struct {
		cfg    *config.Config
		id     *identity.Identity
		listen string
	}
	peer := make(chan peerStart, 1)
	var out, errb syncBuf
	o := &Operator{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, BcryptCost: bcrypt.MinCost,
		Ready: func(a net.Addr) { ready <- a },
		StartPeer: func(ctx context.Context, cfg *config.Config, id *identity.Identity, listen string, _ <-chan *config.Config) error {
			peer <- peerStart{cfg, id, listen}
			<-ctx.Done()
			return nil
		},
	}
	done := make(chan int, 1)
	go func() {
		done <- o.Run(ctx, []string{"--dir", dir, "--name", "overlay.test", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:16084", "--open"})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s %s", code, out.String(), errb.String())
	}
	ps := <-peer
	if ps.listen != "127.0.0.1:16084" || len(ps.cfg.BootstrapNodes) != 1 || ps.cfg.BootstrapNodes[0].String() != "127.0.0.1:16084" {
		t.Errorf("peer start %v %v", ps.listen, ps.cfg.BootstrapNodes)
	}
	if _, err := ps.cfg.VerifyPeer(ps.id.Chain, timeNow()); err != nil {
		t.Errorf("bootstrap identity not valid in its overlay: %v", err)
	}
	caID, err := enroll.LoadPEMIdentity(dir, enroll.FileCA)
	if err != nil {
		t.Fatal(err)
	}
	client := clientTo(caID.Cert(), addr.String())
	cfg, err := (&config.Fetcher{Client: client, NoSRV: true}).Fetch(ctx, "overlay.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "issued by the overlay's own CA") {
		t.Errorf("no warning about the self-issued HTTPS certificate: %s", errb.String())
	}
	id, err := enroll.Enroll(ctx, t.TempDir(), enroll.Request{Config: cfg, Username: "erin", Password: "erin-password", HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(id.Cert().Raw); err != nil || id.User() != "erin@overlay.test" {
		t.Errorf("enrolled %q", id.User())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

func timeNow() time.Time { return time.Now() }

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
