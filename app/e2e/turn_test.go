package e2e

// Issue 13 point 4: two phones, each behind its own NAT made by the test (network
// namespaces, veth pairs, iptables masquerade), and one public storing peer that serves TURN
// (RFC 6940 §9). Behind symmetric NATs (masquerade with random ports) the call goes through
// the public peer's relay; behind endpoint-independent NATs the same call goes direct.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/link/nattest"
)

// TestCallThroughTURNRelay: behind symmetric NATs neither host nor server-reflexive
// candidates connect the phones; the overlay's relay does, for the SIP AppAttach and for the
// media, and the call statistics say relayed. The allocations are freed when the call ends.
func TestCallThroughTURNRelay(t *testing.T) { natCall(t, true) }

// TestCallDirectBehindEIMNATs: the same call behind endpoint-independent NATs goes direct,
// although the relay is offered too.
func TestCallDirectBehindEIMNATs(t *testing.T) { natCall(t, false) }

func natCall(t *testing.T, symmetric bool) {
	if testing.Short() {
		t.Skip("short")
	}
	n := nattest.New(t, symmetric) // phone H1 -- NAT 1 -- public peer -- NAT 2 -- phone H2
	const overlay = "turn.e2e"
	sdir := t.TempDir()
	pub := startInNetns(t, n.Pub, "public", sdir, "--profile", filepath.Join(sdir, "profile"),
		"--listen", "0.0.0.0:7000", "--overlay", overlay, "--log-level", "debug")
	pub.Wait(t, "joined", 60*time.Second)
	waitLog(t, pub.logPath, "serving TURN to the overlay", 30*time.Second)

	alice := startNATPhone(t, n.H1, "alice", 1, overlay, n.PubAddr1+":7000")
	bob := startNATPhone(t, n.H2, "bob", 2, overlay, n.PubAddr2+":7000", "--auto-answer")
	for _, p := range []*natPhone{alice, bob} {
		waitLog(t, p.logPath, "using TURN relays from the overlay", 60*time.Second)
	}

	held := func() int {
		return countLog(pub.logPath, "TURN allocation\"") - countLog(pub.logPath, "TURN allocation freed")
	}
	// Both have registered, but through NATs the overlay's links to the storing peers may
	// still be forming: call once alice can find bob.
	findBy := time.Now().Add(60 * time.Second)
	for len(lookupAll(t, alice.Proc, []string{"bob"})) > 0 {
		if time.Now().After(findBy) {
			t.Fatal("alice never found bob's registration")
		}
	}
	before := held()
	start := time.Now()
	alice.Send(t, "call bob")
	bob.Wait(t, "incoming", 60*time.Second)
	alice.Wait(t, "answered", 60*time.Second)
	bob.Wait(t, "answered", 20*time.Second)
	t.Logf("call set up in %v (symmetric NATs: %v)", time.Since(start).Round(time.Millisecond), symmetric)
	waitReceived(t, alice.Proc, 200)
	waitReceived(t, bob.Proc, 200)
	during := held()
	t.Logf("allocations on the public peer's relay: %d before the call, %d during", before, during)
	if during <= before {
		t.Errorf("the call's media allocated no relay (%d allocations before, %d during)", before, during)
	}
	alice.Send(t, "hangup")
	ah := alice.Wait(t, "hangup", 20*time.Second)
	bh := bob.Wait(t, "hangup", 20*time.Second)
	for who, h := range map[string]map[string]any{"alice": ah, "bob": bh} {
		r := rtpOf(t, h)
		t.Logf("%s: %v", who, r)
		if relayed, _ := r["relayed"].(bool); relayed != symmetric {
			t.Errorf("%s: relayed %v, want %v", who, r["relayed"], symmetric)
		}
		if r["received"].(float64) < 150 {
			t.Errorf("%s: received %v RTP packets", who, r["received"])
		}
	}
	checkAudio(t, "alice -> bob", alice.sent, bob.outWAV)
	checkAudio(t, "bob -> alice", bob.sent, alice.outWAV)
	// The call's allocations are freed when it ends (the media's ICE agents close).
	deadline := time.Now().Add(30 * time.Second)
	for held() > before {
		if time.Now().After(deadline) {
			t.Fatalf("the public peer holds %d allocations after the call, %d before", held(), before)
		}
		time.Sleep(200 * time.Millisecond) // polling the log
	}
	t.Logf("allocations after the call: %d", held())
}

type natPhone struct {
	*nsProc
	sent   []int16
	outWAV string
}

func startNATPhone(t *testing.T, ns, user string, seed uint32, overlay, boot string, extra ...string) *natPhone {
	t.Helper()
	dir := t.TempDir()
	sig, in, out := audioFiles(t, dir, user, seed)
	args := append([]string{"--profile", filepath.Join(dir, "profile"), "--listen", "0.0.0.0:7000", "--overlay", overlay,
		"--bootstrap", boot, "--user", user, "--audio-in", in, "--audio-out", out, "--log-level", "debug"}, extra...)
	p := startInNetns(t, ns, user, dir, args...)
	p.Wait(t, "registered", 90*time.Second)
	return &natPhone{nsProc: p, sent: sig, outWAV: out}
}

// nsProc is a headless chordphone running in a network namespace (`ip netns exec`).
type nsProc struct {
	*Proc
	logPath string
}

// startInNetns is StartHeadless for a process in network namespace ns.
func startInNetns(t *testing.T, ns, name, dir string, args ...string) *nsProc {
	t.Helper()
	p := StartHeadlessIn(t, ns, binPath, name, dir, args...)
	return &nsProc{Proc: p, logPath: p.LogPath}
}

func countLog(path, s string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), s)
}

// waitLog waits until the log file holds s (the peer reports relays in its log only).
func waitLog(t *testing.T, path, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for countLog(path, s) == 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("%s: no %q within %v; log tail:\n%s", filepath.Base(path), s, timeout, tail(string(b), 3000))
		}
		time.Sleep(200 * time.Millisecond) // polling a file
	}
}
