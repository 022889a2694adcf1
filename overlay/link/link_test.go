package link

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// exchange sends n messages each way between peers pa and pb over their two ends a (at pa)
// and b (at pb) of one link and checks that every message arrives exactly once and in order.
func exchange(t *testing.T, pa, pb *peer, a, b node.Link, n, padding int, wait time.Duration) {
	t.Helper()
	ctx := ctxT(t, wait)
	errs := make(chan error, 2)
	send := func(l node.Link, base uint64) {
		for i := 0; i < n; i++ {
			if err := l.Send(ctx, testMessage(t, base+uint64(i), padding)); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}
	go send(a, 0)
	go send(b, 1<<40)
	check := func(r *recorder, base uint64, from wire.NodeID) {
		for i := 0; i < n; i++ {
			m := r.next(t, wait)
			if got := txID(m.msg); got != base+uint64(i) {
				t.Fatalf("message %d: got transaction %d, want %d (lost, duplicated or out of order)", i, int64(got-base), i)
			}
			if m.from.RemoteNodeID() != from {
				t.Fatalf("message from %s, want %s", m.from.RemoteNodeID(), from)
			}
			if !bytes.Equal(m.msg, testMessage(t, base+uint64(i), padding)) {
				t.Fatalf("message %d altered", i)
			}
		}
	}
	check(pb.rx, 0, pa.id.NodeID())
	check(pa.rx, 1<<40, pb.id.NodeID())
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-pa.rx.ch:
		t.Fatalf("extra message %d at a", txID(m.msg))
	case m := <-pb.rx.ch:
		t.Fatalf("extra message %d at b", txID(m.msg))
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBootstrapDTLS(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if la.RemoteNodeID() != b.id.NodeID() {
		t.Fatalf("remote %s, want %s", la.RemoteNodeID(), b.id.NodeID())
	}
	lb := b.accepted(t)
	if lb.RemoteNodeID() != a.id.NodeID() {
		t.Fatalf("accepted remote %s, want %s", lb.RemoteNodeID(), a.id.NodeID())
	}
	if p := la.(*Link).Protocol(); p != wire.LinkDTLSUDPSRNoICE {
		t.Fatalf("protocol %d", p)
	}
	if !la.(*Link).inOrder || !lb.(*Link).inOrder {
		t.Fatal("Chordphone peers did not agree on in-order delivery")
	}
	exchange(t, a, b, la, lb, 200, 100, 10*time.Second)
	// Close by one side is seen by the other.
	_ = la.Close()
	select {
	case <-lb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not notice close")
	}
	// It was told (close_notify), not left to find the link silent.
	if err := lb.(*Link).Err(); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("peer saw the close as %v, want %v", err, ErrLinkClosed)
	}
	if err := la.Send(ctxT(t, time.Second), testMessage(t, 1, 0)); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("send on closed link: %v", err)
	}
	// RFC 6940 §6.5.1.4: a peer whose connection is lost is no longer a STUN server.
	for deadline := time.Now().Add(5 * time.Second); len(a.t.stunServers()) != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("STUN servers after the link closed: %v", a.t.stunServers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBootstrapTLS(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), "tls://"+addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	if p := lb.(*Link).Protocol(); p != wire.LinkTLSTCPFHNoICE {
		t.Fatalf("protocol %d", p)
	}
	if la.RemoteNodeID() != b.id.NodeID() || lb.RemoteNodeID() != a.id.NodeID() {
		t.Fatal("wrong remote Node-IDs")
	}
	exchange(t, a, b, la, lb, 200, 3000, 10*time.Second)
}

func TestFragmentationOverDTLS(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	// 20 kB messages: about 20 fragments each (RFC 6940 §6.7).
	exchange(t, a, b, la, lb, 10, 20000, 20*time.Second)
	if s := la.(*Link).Stats(); s.MessagesSent < 10*15 {
		t.Fatalf("only %d frames sent: not fragmented", s.MessagesSent)
	}
}

func TestWrongNodeIDRefused(t *testing.T) {
	b := newPeer(t, "bob", nil)
	c := newPeer(t, "carol", nil)
	// A certificate claiming bob's Node-ID with another key is refused by the verifier.
	m := newPeer(t, "mallory", func(s *Settings) { s.Certificate = forgedIdentity(t, b.id.NodeID()) })
	if _, err := m.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(c)); err == nil {
		t.Fatal("link with a forged certificate came up (DTLS)")
	}
	if _, err := m.t.Bootstrap(ctxT(t, 10*time.Second), "tls://"+addrOf(c)); err == nil {
		t.Fatal("link with a forged certificate came up (TLS)")
	}
	select {
	case l := <-c.acc:
		t.Fatalf("carol accepted a link from %s", l.RemoteNodeID())
	default:
	}
	// Expecting bob at carol's address: carol proves only her own Node-ID.
	_, err := b.t.Dial(ctxT(t, 10*time.Second), addrOf(c), b.id.NodeID())
	if !errors.Is(err, ErrWrongNodeID) {
		t.Fatalf("dial expecting another Node-ID: %v", err)
	}
}

func TestDeadLinkDetected(t *testing.T) {
	// DeadAfter is 40 keepalives: a healthy link must not be declared dead because the
	// test process was not scheduled for a second or two on a loaded machine.
	fast := func(s *Settings) { s.Keepalive = 100 * time.Millisecond; s.DeadAfter = 4 * time.Second }
	a := newPeer(t, "alice", fast)
	b := newPeer(t, "bob", fast)
	relay := newRelay(t, addrOf(b), 0, 0)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	exchange(t, a, b, la, lb, 5, 10, 10*time.Second)
	// Idle links stay up through keepalives.
	time.Sleep(5 * time.Second) // the point is that nothing happens for longer than DeadAfter
	if la.(*Link).Err() != nil || lb.(*Link).Err() != nil {
		t.Fatalf("idle link died: %v / %v", la.(*Link).Err(), lb.(*Link).Err())
	}
	relay.blackhole()
	start := time.Now()
	for _, l := range []node.Link{la, lb} {
		select {
		case <-l.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("dead link not detected")
		}
		if err := l.(*Link).Err(); !errors.Is(err, ErrLinkDead) {
			t.Fatalf("reason %v", err)
		}
	}
	t.Logf("dead link detected after %v", time.Since(start))
	if err := la.Send(ctxT(t, time.Second), testMessage(t, 1, 0)); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("send on dead link: %v", err)
	}
}

func TestLossyReordering(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	relay := newRelay(t, addrOf(b), 0.10, 20*time.Millisecond)
	la, err := a.t.Bootstrap(ctxT(t, 30*time.Second), relay.addr())
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	exchange(t, a, b, la, lb, 300, 200, 60*time.Second)
	sa, sb := la.(*Link).Stats(), lb.(*Link).Stats()
	t.Logf("relay: %s", relay.stats())
	t.Logf("alice: %+v", sa)
	t.Logf("bob:   %+v", sb)
	if sa.Retransmissions == 0 || sb.Retransmissions == 0 {
		t.Fatal("no retransmissions through a lossy relay")
	}
}

func TestBootstrapBothWays(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	// bob now bootstraps to alice as well: his listen port already has an association
	// with alice's, so the second link uses a socket of its own.
	lb2, err := b.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(a))
	if err != nil {
		t.Fatal(err)
	}
	la2 := a.accepted(t)
	exchange(t, a, b, la, lb, 20, 100, 10*time.Second)
	exchange(t, a, b, la2, lb2, 20, 100, 10*time.Second)
}

// TestPeerRestartSamePort: a peer that restarts on the same port and bootstraps again gets a
// new link at once; the old association at the other end is replaced, not waited out.
func TestPeerRestartSamePort(t *testing.T) {
	slow := func(s *Settings) { s.DeadAfter = time.Minute; s.HandshakeTimeout = 20 * time.Second }
	b := newPeer(t, "bob", slow)
	a := newPeer(t, "alice", slow)
	la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	lb := b.accepted(t)
	exchange(t, a, b, la, lb, 5, 10, 10*time.Second)
	port := a.t.Addr().Port()
	// alice dies without a close_notify: her socket just goes away.
	a.t.mux.close()
	_ = a.t.Close()
	a2 := newPeer(t, "alice", func(s *Settings) { slow(s); s.ListenAddr = fmt.Sprintf("127.0.0.1:%d", port) })
	la2, err := a2.t.Bootstrap(ctxT(t, 15*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	lb2 := b.accepted(t)
	select {
	case <-lb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("old association not replaced")
	}
	exchange(t, a2, b, la2, lb2, 20, 10, 10*time.Second)
}
