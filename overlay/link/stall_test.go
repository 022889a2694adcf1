package link

import (
	"errors"
	"testing"
	"time"

	"github.com/chordphone/chordphone/internal/tcpgate"
)

// TestTLSStallLeavesRoutingThenFails: RFC 6940 §6.6.5: on a TLS link the RTO measured with
// the framing header's acks is "a timeout to indicate when the link SHOULD be removed from
// the Routing Table", and the connection is "retained ... to determine if the failure was
// transient before concluding the link has failed permanently". A data frame held on the
// way makes the link say it stalled (OnStall true) no sooner than the RTO (at least 1 s) and
// within a few; released, it is acknowledged and the link is usable again (OnStall false);
// held for longer than TLSRetain, the link is declared dead.
func TestTLSStallLeavesRoutingThenFails(t *testing.T) {
	const retain = 4 * time.Second
	slow := func(s *Settings) { s.DeadAfter = time.Minute; s.TLSRetain = retain } // only §6.6.5 here
	a := newPeer(t, "alice", slow)
	b := newPeer(t, "bob", slow)
	gate := tcpgate.New(t, addrOf(b))
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), "tls://"+gate.Addr())
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	stalls := make(chan bool, 16)
	la.(*Link).OnStall(func(on bool) { stalls <- on })
	exchange(t, a, b, la, lb, 20, 100, 10*time.Second) // RTT samples: the RTO is the measured one

	expect := func(want bool, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		select {
		case on := <-stalls:
			if on != want {
				t.Fatalf("OnStall(%v), want %v", on, want)
			}
		case <-time.After(within):
			t.Fatalf("no OnStall(%v) within %v", want, within)
		}
		return time.Since(t0)
	}
	// A busy machine may have delayed an ack of the exchange: start from a link in routing.
	for stalled := false; len(stalls) > 0 || stalled; {
		select {
		case stalled = <-stalls:
		case <-time.After(10 * time.Second):
			t.Fatal("the link stays stalled")
		}
	}
	gate.Pause()
	if err := la.Send(ctxT(t, 5*time.Second), testMessage(t, 1000, 10)); err != nil {
		t.Fatal(err)
	}
	took := expect(true, 3*time.Second)
	if took < 900*time.Millisecond {
		t.Fatalf("stalled after %v, before the RFC 6298 minimum RTO of 1 s", took)
	}
	t.Logf("TLS link out of routing %v after an unacknowledged frame (RTO %v)", took, la.(*Link).Stats().RTO)
	gate.Resume()
	expect(false, 10*time.Second)
	if err := la.(*Link).Err(); err != nil {
		t.Fatalf("link ended after a transient stall: %v", err)
	}

	gate.Pause()
	if err := la.Send(ctxT(t, 5*time.Second), testMessage(t, 1001, 10)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	expect(true, 3*time.Second)
	select {
	case <-la.Done():
	case <-time.After(retain + 5*time.Second):
		t.Fatalf("link still up %v after its frame went unacknowledged (TLSRetain %v)", time.Since(t0), retain)
	}
	if err := la.(*Link).Err(); !errors.Is(err, ErrLinkDead) {
		t.Fatalf("link ended with %v, want ErrLinkDead", err)
	}
	if d := time.Since(t0); d < retain-time.Second {
		t.Fatalf("link declared dead after %v, before TLSRetain %v", d, retain)
	}
}
