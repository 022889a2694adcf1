package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/discovery/lantest"
)

// TestLANPhonesCallWithNoSetup: two phones on one LAN (network namespaces on a bridge, made
// by the test), started with no overlay, bootstrap or listen flags: the first starts the
// local network's overlay, the second finds it by mDNS, and they call each other by name.
func TestLANPhonesCallWithNoSetup(t *testing.T) {
	lan := lantest.New(t, 2) // skips without root or ip
	start := func(i int, user string, seed uint32, extra ...string) *Proc {
		dir := t.TempDir()
		_, in, out := audioFiles(t, dir, user, seed)
		args := append([]string{"--profile", filepath.Join(dir, "profile"), "--user", user,
			"--audio-in", in, "--audio-out", out}, extra...)
		return StartHeadlessIn(t, lan.Namespaces[i], binPath, user, dir, args...)
	}
	alice := start(0, "alice", 1)
	if j := alice.Wait(t, "joined", 60*time.Second); j["first"] != true {
		t.Fatalf("alice did not start the LAN overlay: %v", j)
	}
	alice.Wait(t, "registered", 30*time.Second)
	bob := start(1, "bob", 2, "--auto-answer")
	if j := bob.Wait(t, "joined", 60*time.Second); j["first"] != false {
		t.Fatalf("bob did not find alice's overlay by mDNS: %v", j)
	}
	bob.Wait(t, "registered", 30*time.Second)

	alice.Send(t, "call bob")
	bob.Wait(t, "incoming", 30*time.Second)
	alice.Wait(t, "answered", 30*time.Second)
	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	bob.Wait(t, "hangup", 20*time.Second)
}
