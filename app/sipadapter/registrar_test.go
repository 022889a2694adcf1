package sipadapter

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// testAdapter starts an adapter on loopback with the accounts alice/secret and bob/hunter2.
func testAdapter(t *testing.T, cfg Config) *Adapter {
	t.Helper()
	if cfg.Profile == "" {
		cfg.Profile = t.TempDir()
	}
	cfg.Listen, cfg.TLSListen = "127.0.0.1:0", "127.0.0.1:0"
	acc := OpenAccounts(cfg.Profile)
	for name, pw := range map[string]string{"alice": "secret", "bob": "hunter2"} {
		if err := acc.Add(name, pw, DigestBoth); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // owner: the test; ends at cleanup
		defer close(done)
		_ = a.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// testUA is a plain SIP user agent (sipgo) over one transport.
type testUA struct {
	cli       *sipgo.Client
	transport string
	server    string
}

func newTestUA(t *testing.T, a *Adapter, transport string) *testUA {
	t.Helper()
	// The adapter's certificate is self-signed: the test checks its fingerprint instead.
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("127.0.0.1:%d", a.Addr().Port)
	if transport == "tls" {
		server = a.TLSAddr().String()
	}
	return &testUA{cli: cli, transport: transport, server: server}
}

func (u *testUA) register(user, contact string, expires int) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1", Port: u.portNum()})
	req.SetTransport(strings.ToUpper(u.transport))
	req.AppendHeader(sip.NewHeader("To", fmt.Sprintf("<sip:%s@chordphone>", user)))
	req.AppendHeader(sip.NewHeader("From", fmt.Sprintf("<sip:%s@chordphone>;tag=%d", user, time.Now().UnixNano())))
	if contact != "" {
		req.AppendHeader(sip.NewHeader("Contact", contact))
	}
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	}
	return req
}

func (u *testUA) portNum() int {
	var p int
	fmt.Sscanf(u.server[strings.LastIndex(u.server, ":")+1:], "%d", &p)
	return p
}

func (u *testUA) do(t *testing.T, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := u.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s %s: %v", u.transport, req.Method, err)
	}
	return res
}

// withAuth answers res's challenge for algorithm with user/password on a copy of req.
func withAuth(t *testing.T, req *sip.Request, res *sip.Response, algorithm, user, password string) *sip.Request {
	t.Helper()
	var chal *digest.Challenge
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		if c.Algorithm == algorithm {
			chal = c
		}
	}
	if chal == nil {
		t.Fatalf("no %s challenge in %v", algorithm, res)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: req.Recipient.String(),
		Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	next := req.Clone()
	next.RemoveHeader("Via")
	next.CSeq().SeqNo++
	next.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	return next
}

// TestRegisterDigest: a UA registers over UDP and TCP with SHA-256 and MD5 digests (RFC
// 8760); wrong passwords, unknown users and another user's name get 403 and change
// nothing; Expires: 0 removes the binding.
func TestRegisterDigest(t *testing.T) {
	var mu sync.Mutex
	changes := []string{}
	a := testAdapter(t, Config{})
	a.reg.changed = func(u string, on bool) {
		mu.Lock()
		changes = append(changes, fmt.Sprintf("%s=%v", u, on))
		mu.Unlock()
	}
	for _, tc := range []struct{ transport, alg string }{{"udp", "SHA-256"}, {"tcp", "MD5"}, {"udp", "MD5"}, {"tcp", "SHA-256"}, {"tls", "SHA-256"}} {
		t.Run(tc.transport+"-"+tc.alg, func(t *testing.T) {
			u := newTestUA(t, a, tc.transport)
			contact := "<sip:alice@127.0.0.1:5999>"
			req := u.register("alice", contact, 120)
			res := u.do(t, req)
			if res.StatusCode != 401 || len(res.GetHeaders("WWW-Authenticate")) != 2 {
				t.Fatalf("first REGISTER: %d, want 401 with SHA-256 and MD5 challenges:\n%v", res.StatusCode, res)
			}
			if res := u.do(t, withAuth(t, req, res, tc.alg, "alice", "wrong")); res.StatusCode != 403 {
				t.Fatalf("wrong password: %d, want 403", res.StatusCode)
			}
			if res := u.do(t, withAuth(t, req, res, tc.alg, "mallory", "secret")); res.StatusCode != 403 {
				t.Fatalf("unknown user: %d, want 403", res.StatusCode)
			}
			if res := u.do(t, withAuth(t, req, res, tc.alg, "bob", "hunter2")); res.StatusCode != 403 {
				t.Fatalf("bob registering alice: %d, want 403", res.StatusCode)
			}
			if n := len(a.reg.bindings("alice")); n != 0 {
				t.Fatalf("refused REGISTERs left %d bindings", n)
			}
			ok := u.do(t, withAuth(t, req, res, tc.alg, "alice", "secret"))
			if ok.StatusCode != 200 || !strings.Contains(ok.GetHeader("Contact").Value(), "expires=120") {
				t.Fatalf("REGISTER with the right password: %v", ok)
			}
			if b := a.reg.bindings("alice"); len(b) != 1 || b[0].raw != "sip:alice@127.0.0.1:5999" || b[0].transport != strings.ToUpper(tc.transport) {
				t.Fatalf("bindings %v", b)
			}
			un := u.register("alice", contact, 0)
			res = u.do(t, un)
			if res := u.do(t, withAuth(t, un, res, tc.alg, "alice", "secret")); res.StatusCode != 200 {
				t.Fatalf("un-REGISTER: %v", res)
			}
			if n := len(a.reg.bindings("alice")); n != 0 {
				t.Fatalf("un-REGISTER left %d bindings", n)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if want := strings.Repeat("alice=true alice=false ", 5); strings.Join(changes, " ")+" " != want {
		t.Errorf("registration changes %v, want %s", changes, want)
	}
}

// TestRegisterBadRequests: malformed credentials and requests get 400, a too-short
// expiry 423 with Min-Expires, a wildcard without Expires: 0 400; nothing is registered.
func TestRegisterBadRequests(t *testing.T) {
	a := testAdapter(t, Config{})
	u := newTestUA(t, a, "udp")
	req := u.register("alice", "<sip:alice@127.0.0.1:5999>", 120)
	chal := u.do(t, req)

	bad := req.Clone()
	bad.RemoveHeader("Via")
	bad.AppendHeader(sip.NewHeader("Authorization", `Digest username="alice", realm="chordphone"`))
	if res := u.do(t, bad); res.StatusCode != 400 {
		t.Errorf("credentials without a response: %d, want 400", res.StatusCode)
	}
	bad = req.Clone()
	bad.RemoveHeader("Via")
	bad.AppendHeader(sip.NewHeader("Authorization", `Basic YWxpY2U6c2VjcmV0`))
	if res := u.do(t, bad); res.StatusCode != 400 {
		t.Errorf("Basic credentials: %d, want 400", res.StatusCode)
	}
	short := u.register("alice", "<sip:alice@127.0.0.1:5999>", 5)
	res := u.do(t, withAuth(t, short, u.do(t, short), "SHA-256", "alice", "secret"))
	if res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
		t.Errorf("Expires: 5: %v, want 423 with Min-Expires", res)
	}
	wild := u.register("alice", "*", 120)
	if res := u.do(t, withAuth(t, wild, u.do(t, wild), "SHA-256", "alice", "secret")); res.StatusCode != 400 {
		t.Errorf("wildcard with Expires: 120: %d, want 400", res.StatusCode)
	}
	noUser := u.register("", "<sip:x@127.0.0.1:5999>", 120)
	if res := u.do(t, noUser); res.StatusCode != 400 {
		t.Errorf("To without a user: %d, want 400", res.StatusCode)
	}
	forged := req.Clone()
	forged.RemoveHeader("Via")
	forged.AppendHeader(sip.NewHeader("Authorization", `Digest username="alice", realm="chordphone", nonce="forged", uri="sip:127.0.0.1", response="00", qop=auth, nc=00000001, cnonce="x"`))
	if res := u.do(t, forged); res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Errorf("a nonce not ours: %v, want 401 stale", res)
	}
	if n := len(a.reg.bindings("alice")); n != 0 {
		t.Errorf("bad requests left %d bindings", n)
	}
	_ = chal
}

// TestFloodLimited: a source that sends more than its share gets 503 with Retry-After,
// and another source is still served.
func TestFloodLimited(t *testing.T) {
	a := testAdapter(t, Config{RatePerSecond: 5})
	u := newTestUA(t, a, "udp")
	busy := 0
	for i := 0; i < 40 && busy == 0; i++ {
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "127.0.0.1", Port: u.portNum()})
		res := u.do(t, req)
		if res.StatusCode == 503 {
			busy++
			if res.GetHeader("Retry-After") == nil {
				t.Errorf("503 without Retry-After")
			}
		}
	}
	if busy == 0 {
		t.Fatal("40 OPTIONS from one source: no 503")
	}
	if !a.limit.allow("192.0.2.1") {
		t.Error("another source is limited too")
	}
}

// TestRegistrationExpires: a binding is gone once its time is up, and the user's line is
// told.
func TestRegistrationExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	var gone []string
	r := newRegistrar(func(u string, on bool) {
		if !on {
			gone = append(gone, u)
		}
	})
	r.now = func() time.Time { return now }
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "h"})
	req.AppendHeader(sip.NewHeader("Call-ID", "c1"))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.REGISTER})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "alice", Host: "192.0.2.1", Port: 5060}})
	req.AppendHeader(sip.NewHeader("Expires", "60"))
	if _, err := r.register("alice", req); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	r.expire()
	if len(gone) != 0 || len(r.bindings("alice")) != 1 {
		t.Fatalf("expired early: %v", gone)
	}
	now = now.Add(2 * time.Second)
	r.expire()
	if len(gone) != 1 || len(r.bindings("alice")) != 0 || r.total != 0 {
		t.Fatalf("not expired after 61 s: gone %v, total %d", gone, r.total)
	}
}

// TestAccountsStoredHashed: the password is in no file of the profile; list and remove.
func TestAccountsStoredHashed(t *testing.T) {
	dir := t.TempDir()
	acc := OpenAccounts(dir)
	if err := acc.Add("carol", "correct horse", DigestBoth); err != nil {
		t.Fatal(err)
	}
	if err := acc.Add("carol", "x", DigestBoth); err == nil {
		t.Error("adding carol twice succeeded")
	}
	if err := acc.Add("bad name", "x", DigestBoth); err == nil {
		t.Error("a name with a space was taken")
	}
	b, err := os.ReadFile(filepath.Join(dir, accountsFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "correct horse") {
		t.Error("the password is stored in clear")
	}
	if st, _ := os.Stat(filepath.Join(dir, accountsFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("accounts file mode %v, want 0600", st.Mode().Perm())
	}
	if names, _ := acc.List(); strings.Join(names, ",") != "carol" {
		t.Errorf("list %v", names)
	}
	if err := acc.Remove("carol"); err != nil {
		t.Fatal(err)
	}
	if err := acc.Remove("carol"); err == nil {
		t.Error("removing carol twice succeeded")
	}
}

// TestTLSCertificateKept: the self-signed certificate made for TLS is kept in the profile
// (0600) and used again by the next start, so a phone that pinned it keeps trusting it.
func TestTLSCertificateKept(t *testing.T) {
	dir := t.TempDir()
	first, err := loadTLS(dir, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadTLS(dir, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(first) != fingerprint(again) || fingerprint(first) == "" {
		t.Errorf("certificate changed: %s, then %s", fingerprint(first), fingerprint(again))
	}
	if st, err := os.Stat(filepath.Join(dir, tlsFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("certificate file: %v, %v", st, err)
	}
	if TLSAddress("0.0.0.0:5060") != "0.0.0.0:5061" || TLSAddress("127.0.0.1:0") != "" {
		t.Errorf("TLSAddress %q %q", TLSAddress("0.0.0.0:5060"), TLSAddress("127.0.0.1:0"))
	}
}
