package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// callAnswered has caller call callee (which answers automatically), waits until both
// report the answer, and hangs up.
func callAnswered(t *testing.T, caller, callee *phoneProc, name string) {
	t.Helper()
	caller.Send(t, "call "+name)
	callee.Wait(t, "incoming", 20*time.Second)
	caller.Wait(t, "answered", 20*time.Second)
	callee.Wait(t, "answered", 20*time.Second)
	caller.Send(t, "hangup")
	caller.Wait(t, "hangup", 20*time.Second)
	callee.Wait(t, "hangup", 20*time.Second)
}

// TestClientPhoneCalls (issue 10 point 4, "store records for others" off): a headless
// phone started with --client is a RELOAD client (RFC 6940 §4.2). It registers through
// the peer responsible for its Node-ID, calls a phone by name and is called by name, and
// its status says client, with no neighbours and nothing stored for others.
func TestClientPhoneCalls(t *testing.T) {
	o := StartOverlay(t, "clients.test", 3)
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	carol := startPhone(t, o, "carol", 3, "--client", "--auto-answer")

	var joined map[string]any
	for _, e := range carol.Events() {
		if e["event"] == "joined" {
			joined = e
		}
	}
	if joined == nil || joined["role"] != "client" {
		t.Fatalf("carol's joined event %v, want role client", joined)
	}
	callAnswered(t, carol, bob, "bob")
	callAnswered(t, bob, carol, "carol")

	carol.Send(t, "status")
	st := carol.Wait(t, "status", 10*time.Second)
	if st["role"] != "client" || st["state"] != "registered" {
		t.Fatalf("carol's status %v, want a registered client", st)
	}
	if n := len(strs(st["predecessors"])) + len(strs(st["successors"])) + len(strs(st["fingers"])); n != 0 {
		t.Errorf("a client with %d table entries: %v", n, st)
	}
	if r, _ := st["stored_records"].(float64); r != 0 {
		t.Errorf("a client storing %v records for others", r)
	}
	bob.Send(t, "status")
	if st := bob.Wait(t, "status", 10*time.Second); st["role"] != "peer" {
		t.Errorf("bob's role %v, want peer", st["role"])
	}
	// The overlay's peers hold carol's registration; no peer counts her as a neighbour.
	carolID := joined["node_id"].(string)
	for _, p := range o.Peers {
		p.Send(t, "status")
		st := p.Wait(t, "status", 10*time.Second)
		for _, list := range []string{"predecessors", "successors", "fingers"} {
			for _, id := range strs(st[list]) {
				if id == carolID {
					t.Errorf("%s has the client among its %s", p.Name, list)
				}
			}
		}
	}
}

// clientPeer polls a phone's status for its client_peer until cond holds.
func clientPeer(t *testing.T, p *Proc, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p.Send(t, "status")
		st := p.Wait(t, "status", 10*time.Second)
		if cp, _ := st["client_peer"].(string); cond(cp) {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: client_peer in %v", p.Name, st)
		}
		time.Sleep(200 * time.Millisecond) // status polling interval; the move has no event
	}
}

// TestClientFollowsItsPeer (RFC 6940 §4.2.1): when the storing peer a client phone is
// attached to is killed, the client attaches to the peer that takes over its Node-ID and
// can still call and be called by name.
func TestClientFollowsItsPeer(t *testing.T) {
	o := StartOverlay(t, "follow.test", 4)
	all := strings.Join(o.Addrs, ",")
	carol := startPhone(t, o, "carol", 3, "--client", "--auto-answer", "--bootstrap", all)
	dave := startPhone(t, o, "dave", 4, "--client", "--auto-answer", "--bootstrap", all)

	first := clientPeer(t, carol.Proc, func(s string) bool { return s != "" })
	killed := -1
	for i, id := range o.IDs {
		if id == first {
			killed = i
		}
	}
	if killed < 0 {
		t.Fatalf("carol's peer %s is none of the storing peers %v", first, o.IDs)
	}
	if err := o.Peers[killed].Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-o.Peers[killed].Exited()
	start := time.Now()
	next := clientPeer(t, carol.Proc, func(s string) bool { return s != "" && s != first })
	t.Logf("carol moved from %s to %s in %v", first[:8], next[:8], time.Since(start).Round(time.Millisecond))
	callAnswered(t, dave, carol, "carol")
	callAnswered(t, carol, dave, "dave")
}
