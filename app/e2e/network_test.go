package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/discovery/lantest"
)

// Issue 16: networks that appear, change and vanish, and a phone that sleeps. The phones
// run in network namespaces on one LAN (package lantest) with no flags but the user, so
// they find each other by mDNS as desktop phones do.

// callableWithin is the bound the tests assert on how soon a phone is callable again; the
// issue asks for 10 s, and the figures measured (logged) are well under it, but the suite
// runs on a loaded 2-core machine.
const callableWithin = 30 * time.Second

// startLANPhone starts a phone in host i of lan with no overlay, bootstrap or listen flags.
func startLANPhone(t *testing.T, lan *lantest.LAN, i int, user string, extra ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	_, in, out := audioFiles(t, dir, user, uint32(i+1))
	args := append([]string{"--profile", filepath.Join(dir, "profile"), "--user", user,
		"--audio-in", in, "--audio-out", out}, extra...)
	return StartHeadlessIn(t, lan.Namespaces[i], binPath, user, dir, args...)
}

// joinedAndRegistered waits for p's joined (with first as given) and registered events.
func joinedAndRegistered(t *testing.T, p *Proc, first bool) {
	t.Helper()
	if j := p.Wait(t, "joined", 60*time.Second); j["first"] != first {
		t.Fatalf("%s joined with first=%v, want %v: %v", p.Name, j["first"], first, j)
	}
	p.Wait(t, "registered", 30*time.Second)
}

// callUntilAnswered has caller call user (the callee p answers automatically) until a call
// is answered, and returns how long after since that was. A failed attempt (hangup: not
// registered, unreachable) is tried again at once.
func callUntilAnswered(t *testing.T, caller, callee *Proc, user string, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	deadline := since.Add(within)
	for attempt := 1; ; attempt++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s not callable within %v (%d attempts)", user, within, attempt-1)
		}
		caller.Send(t, "call "+user)
		for {
			e := caller.Next(t, time.Until(deadline)+30*time.Second)
			switch e["event"] {
			case "answered":
				took := time.Since(since)
				callee.Wait(t, "incoming", 10*time.Second)
				caller.Send(t, "hangup")
				caller.Wait(t, "hangup", 20*time.Second)
				callee.Wait(t, "hangup", 20*time.Second)
				t.Logf("%s answered a call %.1f s after the change (attempt %d)", user, took.Seconds(), attempt)
				return took
			case "hangup":
				t.Logf("call %d to %s failed after %.1f s: %v", attempt, user, time.Since(since).Seconds(), e["reason"])
			default:
				continue
			}
			break
		}
	}
}

// TestPhoneStartedOffline (issue 16.1a): bob's phone starts while its network is down
// (only loopback), so it starts a ring of its own; alice's phone is on the LAN. Once bob's
// interface comes up, bob's phone announces and browses on it, the rings merge, and alice
// calls bob by name.
func TestPhoneStartedOffline(t *testing.T) {
	lan := lantest.New(t, 2) // skips without root or ip
	lan.LinkDown(t, 1)
	alice := startLANPhone(t, lan, 0, "alice", "--auto-answer")
	joinedAndRegistered(t, alice, true)
	bob := startLANPhone(t, lan, 1, "bob", "--auto-answer")
	joinedAndRegistered(t, bob, true) // alone: no network to find alice on
	lan.LinkUp(t, 1)
	t0 := time.Now()
	d := callUntilAnswered(t, alice, bob, "bob", t0, callableWithin)
	t.Logf("FIGURE network came up -> callable by name: %.1f s", d.Seconds())
	dumpLogs(t, alice, bob)
	// And the other way round, at once.
	callUntilAnswered(t, bob, alice, "alice", time.Now(), 10*time.Second)
}

// TestAddressChange (issue 16.1b): bob's address changes (the old one removed, a new one
// added, as when a DHCP lease changes) while both phones run; bob is callable again at
// the new address without a restart.
func TestAddressChange(t *testing.T) {
	lan := lantest.New(t, 2)
	alice := startLANPhone(t, lan, 0, "alice")
	joinedAndRegistered(t, alice, true)
	bob := startLANPhone(t, lan, 1, "bob", "--auto-answer")
	joinedAndRegistered(t, bob, false)
	callUntilAnswered(t, alice, bob, "bob", time.Now(), 30*time.Second)
	addr := lan.Renumber(t, 1)
	t0 := time.Now()
	t.Logf("bob's address is now %v", addr)
	d := callUntilAnswered(t, alice, bob, "bob", t0, callableWithin)
	t.Logf("FIGURE address changed -> callable by name: %.1f s", d.Seconds())
	dumpLogs(t, alice, bob)
}

// StallEnv sets how long TestSuspendResume stops bob's phone (a Go duration; default 40 s,
// the lid close; "10m" measures the long one by hand).
const StallEnv = "CHORDPHONE_E2E_STALL"

// TestSuspendResume (issue 16.3): bob's phone is stopped (SIGSTOP, as a closed lid does)
// for longer than any link timeout, then continued. It notices the stall, checks its links,
// goes back into the ring through its former neighbours without a new Join, stores its
// registration again, and alice calls it.
func TestSuspendResume(t *testing.T) {
	stall := 40 * time.Second
	if d, err := time.ParseDuration(os.Getenv(StallEnv)); err == nil {
		stall = d
	}
	lan := lantest.New(t, 3)
	alice := startLANPhone(t, lan, 0, "alice")
	joinedAndRegistered(t, alice, true)
	carol := startLANPhone(t, lan, 2, "carol")
	joinedAndRegistered(t, carol, false)
	bob := startLANPhone(t, lan, 1, "bob", "--auto-answer")
	joinedAndRegistered(t, bob, false)
	callUntilAnswered(t, alice, bob, "bob", time.Now(), 30*time.Second)

	if err := bob.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("bob stopped for %v", stall)
	time.Sleep(stall) // the suspend itself: the one thing this test must wait out
	if err := bob.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		<-bob.Exited()
		t.Fatalf("continuing bob: %v (bob ended: %v)", err, bob.ExitErr)
	}
	t0 := time.Now()
	d := callUntilAnswered(t, alice, bob, "bob", t0, callableWithin)
	t.Logf("FIGURE resumed after %v -> callable by name: %.1f s", stall, d.Seconds())
	dumpLogs(t, alice, bob, carol)
	n := 0 // joined events: one at start; another would be a full rejoin
	for _, e := range bob.Events() {
		if e["event"] == "joined" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("bob joined %d times; resuming should not rejoin", n)
	}
}

// dumpLogs logs the phones' stderr when CHORDPHONE_E2E_LOGS is set (failed tests log their
// tails anyway): what each did after the change, for the figures in the README.
func dumpLogs(t *testing.T, ps ...*Proc) {
	t.Helper()
	if os.Getenv("CHORDPHONE_E2E_LOGS") == "" {
		return
	}
	for _, p := range ps {
		b, _ := os.ReadFile(p.LogPath)
		t.Logf("%s stderr:\n%s", p.Name, b)
	}
}

// TestNamedOverlayStartedOffline (issue 16.1c): bob's phone, enrolled in lab.test (an
// operator's overlay: `overlay-server` in another host of the LAN), ran once and kept the
// verified configuration document in its profile. Started again while its network is down,
// it cannot fetch the document: it says so (config_cached), uses the kept copy, and joins
// and registers once the interface comes up and the bootstrap peer can be reached.
func TestNamedOverlayStartedOffline(t *testing.T) {
	lan := lantest.New(t, 2)
	srvAddr := lan.Addrs[0].String()
	nsHosts(t, lan.Namespaces[1], "127.0.0.1 localhost\n"+srvAddr+" lab.test\n")
	dir := t.TempDir()
	op := filepath.Join(dir, "op")
	command(t, "", dir, "", false, "overlay-server", "init", "--dir", op, "--name", "lab.test")
	command(t, "", dir, "bob-password\n", false, "overlay-server", "user", "add", "bob", "--dir", op)
	link, _ := command(t, "", dir, "", false, "overlay-server", "invite", "--dir", op, "--user", "bob")
	startOverlayServer(t, lan.Namespaces[0], dir, "--dir", op, "--listen", srvAddr+":443", "--peer-listen", srvAddr+":6084")

	bdir := t.TempDir()
	profile := filepath.Join(bdir, "profile")
	command(t, lan.Namespaces[1], bdir, "bob-password\n", false, "enroll", "--profile", profile, "--invite", strings.TrimSpace(link))
	start := func() *Proc {
		_, in, out := audioFiles(t, bdir, "bob", 2)
		return StartHeadlessIn(t, lan.Namespaces[1], binPath, "bob", bdir, "--profile", profile,
			"--audio-in", in, "--audio-out", out)
	}
	bob := start()
	bob.Wait(t, "registered", 90*time.Second) // the document is fetched, verified and kept
	bob.Send(t, "quit")
	select {
	case <-bob.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("bob did not quit")
	}

	lan.LinkDown(t, 1)
	bob = start()
	if w := bob.Wait(t, "warning", 60*time.Second); w["code"] != "config_cached" {
		t.Fatalf("no config_cached warning: %v", w)
	}
	lan.LinkUp(t, 1)
	t0 := time.Now()
	bob.Wait(t, "joined", callableWithin)
	joined := time.Since(t0)
	bob.Wait(t, "registered", 30*time.Second)
	t.Logf("FIGURE named overlay, started offline with the kept configuration: joined %.1f s, registered %.1f s after the network came up",
		joined.Seconds(), time.Since(t0).Seconds())
	dumpLogs(t, bob)
}

// TestIPv6OnlyLANPhones: on a LAN with no IPv4 at all, phones started with no flags find
// each other by mDNS over IPv6 (ff02::fb, AAAA records), form one ring and call by name.
func TestIPv6OnlyLANPhones(t *testing.T) {
	lan := lantest.New(t, 2)
	lan.IPv6Only(t)
	alice := startLANPhone(t, lan, 0, "alice")
	joinedAndRegistered(t, alice, true)
	bob := startLANPhone(t, lan, 1, "bob", "--auto-answer")
	joinedAndRegistered(t, bob, false) // found alice over IPv6
	callUntilAnswered(t, alice, bob, "bob", time.Now(), callableWithin)
}

// nsHosts gives namespace ns its own hosts file (`ip netns exec` mounts /etc/netns/NS/hosts),
// removed when the test ends.
func nsHosts(t *testing.T, ns, hosts string) {
	t.Helper()
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
}
