package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSlowLookupDoesNotBlock: a lookup waits on the overlay (up to 5 s when the peer
// responsible for the name does not answer); the commands after it are answered meanwhile.
// The two storing peers are stopped (SIGSTOP), so a lookup of a name in their part of the
// ring waits; of ten names, some are.
func TestSlowLookupDoesNotBlock(t *testing.T) {
	o := StartOverlay(t, "slowlookup.test", 2)
	c := o.Join(t, "carol", "--user", "carol")
	c.Wait(t, "registered", 60*time.Second)
	for _, p := range o.Peers {
		if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Cmd.Process.Signal(syscall.SIGCONT) })
	}
	const n = 10
	for i := range n {
		c.Send(t, fmt.Sprintf("lookup nobody%d", i))
	}
	sent := time.Now()
	c.Send(t, "status")
	answered, afterStatus := 0, 0
	var statusAfter time.Duration
	for answered < n {
		e := c.Next(t, 30*time.Second)
		switch {
		case e["event"] == "status":
			statusAfter = time.Since(sent)
		case e["event"] == "lookup" || e["event"] == "error" && e["peer"] != nil:
			if e["event"] == "error" && e["code"] == nil {
				t.Errorf("lookup error without a code: %v", e)
			}
			answered++
			if statusAfter > 0 {
				afterStatus++
			}
		}
	}
	t.Logf("status answered %v after it was sent; %d of %d lookups answered after it", statusAfter, afterStatus, n)
	if statusAfter == 0 || afterStatus == 0 {
		t.Fatalf("status waited for the lookups sent before it (status after %v, %d lookups after it)", statusAfter, afterStatus)
	}
}

// TestIdentityUnreadableHeadless: an unreadable identity.pem gives an identity_unreadable
// error and is left as it is; the peer waits (commands answered) until `new-identity`, which
// sets it aside and joins with a new key. bob, who pinned alice's old key at their first call,
// is told at the next call that her key changed (pinned_key_changed), as for any changed key.
func TestIdentityUnreadableHeadless(t *testing.T) {
	o := StartOverlay(t, "identity.test", 1)
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	_, in, out := audioFiles(t, dir, "alice", 1)
	args := []string{"--profile", profile, "--user", "alice", "--overlay", o.Name, "--bootstrap", o.Addrs[0],
		"--listen", "127.0.0.1:0", "--audio-in", in, "--audio-out", out}
	call := func(alice *Proc) {
		t.Helper()
		alice.Send(t, "call bob")
		bob.Wait(t, "answered", 30*time.Second)
		alice.Send(t, "hangup")
		alice.Wait(t, "hangup", 30*time.Second)
		bob.Wait(t, "hangup", 30*time.Second)
	}
	alice := StartHeadless(t, binPath, "alice", dir, args...)
	alice.Wait(t, "registered", 60*time.Second)
	call(alice) // bob pins alice's key
	alice.Send(t, "quit")
	<-alice.Exited()

	garbage := garbleIdentity(t, profile)
	alice = StartHeadless(t, binPath, "alice2", dir, args...)
	e := alice.Wait(t, "error", 60*time.Second)
	if e["code"] != "identity_unreadable" {
		t.Fatalf("first error: %v", e)
	}
	t.Logf("%s: %s", e["code"], e["message"])
	alice.Send(t, "status")
	if st := alice.Wait(t, "status", 30*time.Second); st["state"] != "not joined" {
		t.Errorf("status while waiting for the choice: %v", st)
	}
	if b, err := os.ReadFile(filepath.Join(profile, "identity.pem")); err != nil || string(b) != garbage {
		t.Fatalf("identity.pem was changed before the choice: %v", err)
	}
	alice.Send(t, "new-identity")
	alice.Wait(t, "registered", 60*time.Second)
	if b, err := os.ReadFile(setAside(t, profile, "identity.pem.unreadable-")); err != nil || string(b) != garbage {
		t.Errorf("the unreadable identity was not kept: %v", err)
	}
	alice.Send(t, "new-identity") // the new one can be read: nothing to do
	if e := alice.Wait(t, "error", 30*time.Second); e["code"] != "identity_readable" {
		t.Errorf("new-identity with a readable identity: %v", e)
	}

	alice.Send(t, "call bob")
	for {
		e := bob.Wait(t, "error", 30*time.Second)
		if e["code"] == "pinned_key_changed" {
			t.Logf("bob is told: %s", e["message"])
			break
		}
	}
}

// TestNewIdentityFlag: --new-identity is the choice made in advance: an unreadable identity is
// set aside (kept) and the phone joins with a new one, without waiting.
func TestNewIdentityFlag(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	garbage := garbleIdentity(t, profile)
	p := StartHeadless(t, binPath, "alice", dir, "--profile", profile, "--user", "alice", "--overlay", "trouble.test",
		"--listen", "127.0.0.1:0", "--new-identity")
	p.Wait(t, "registered", 60*time.Second)
	for _, e := range p.Events() {
		if e["event"] == "error" {
			t.Errorf("error event: %v", e)
		}
	}
	if b, err := os.ReadFile(setAside(t, profile, "identity.pem.unreadable-")); err != nil || string(b) != garbage {
		t.Errorf("the unreadable identity was not kept: %v", err)
	}
}
