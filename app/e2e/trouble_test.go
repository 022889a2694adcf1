package e2e

import (
	"fmt"
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
