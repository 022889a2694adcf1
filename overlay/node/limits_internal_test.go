package node

import (
	"testing"

	"github.com/chordphone/chordphone/overlay/wire"
)

// A flooding neighbour fills only its own FIFO: the others' messages are served round
// robin, and the flooder's excess is refused.
func TestSendQueueRoundRobin(t *testing.T) {
	q := newSendQueue()
	flood, other := wire.NodeID{1}, wire.NodeID{2}
	q.mu.Lock()
	refused := 0
	for i := 0; i < 2*sendQueuePerSource; i++ {
		if ok, _ := q.push(flood, flood, []byte{1}); !ok {
			refused++
		}
	}
	if refused != sendQueuePerSource {
		t.Fatalf("flooder: %d refused, want %d", refused, sendQueuePerSource)
	}
	if ok, _ := q.push(other, other, []byte{2}); !ok {
		t.Fatal("other neighbour refused while the flooder's FIFO is full")
	}
	q.mu.Unlock()
	if got := popN(t, q, 3); got != "\x01\x02\x01" {
		t.Fatalf("service order %q, want flooder, other, flooder", got)
	}
}

// A neighbour that names many originators (a via list is not signed, so it can name
// any) fills the whole queue; another neighbour's message still gets in, evicting the
// flooder's, and goes out after at most one of the flooder's messages.
func TestSendQueueClaimedOriginators(t *testing.T) {
	q := newSendQueue()
	eve, bob := wire.NodeID{1}, wire.NodeID{2}
	q.mu.Lock()
	evicted := 0
	for i := 0; i < 2*sendQueueLen; i++ {
		ok, ev := q.push(eve, wire.NodeID{3, byte(i), byte(i >> 8)}, []byte{1})
		if !ok {
			t.Fatalf("flooder's message %d refused: each names a new originator", i)
		}
		if ev {
			evicted++
		}
	}
	if evicted != sendQueueLen || q.n != sendQueueLen {
		t.Fatalf("%d evicted, %d waiting; want %d and %d", evicted, q.n, sendQueueLen, sendQueueLen)
	}
	if ok, ev := q.push(bob, bob, []byte{2}); !ok || !ev {
		t.Fatalf("other neighbour's message: pushed %v, evicted %v; want both", ok, ev)
	}
	if ok, _ := q.push(eve, eve, []byte{1}); !ok {
		t.Fatal("flooder's own message refused")
	}
	q.mu.Unlock()
	if got := popN(t, q, 3); got != "\x01\x02\x01" {
		t.Fatalf("service order %q, want flooder, other, flooder", got)
	}
	// What was evicted to make room came from the flooder, never from the other.
	q.mu.Lock()
	if q.n != sendQueueLen-3 || q.shares[bob] != nil {
		t.Fatalf("%d waiting (want %d), other's queue %v", q.n, sendQueueLen-3, q.shares[bob])
	}
	q.mu.Unlock()
}

// Answers to two requesters that go out over the same next hop take turns in shares of
// their own: the one after the next hop (RFC 6940 §6.2.2); a request's share is its
// previous hop.
func TestShareOf(t *testing.T) {
	next, eve, bob, self := wire.NodeID{1}, wire.NodeID{2}, wire.NodeID{3}, wire.NodeID{4}
	ans := func(ids ...wire.NodeID) []wire.Destination {
		var dl []wire.Destination
		for _, id := range ids {
			dl = append(dl, wire.NodeDestination(id))
		}
		return dl
	}
	if a, b := shareOf(self, ans(next, eve, wire.NodeID{9}), false), shareOf(self, ans(next, bob), false); a != eve || b != bob {
		t.Errorf("answers: shares %v and %v, want eve and bob", a, b)
	}
	if s := shareOf(self, ans(bob), false); s != self {
		t.Errorf("answer to a neighbour: share %v, want this node", s)
	}
	if s := shareOf(eve, ans(next, bob), true); s != eve {
		t.Errorf("request: share %v, want its previous hop", s)
	}
}

// popN pops k messages and returns their first bytes.
func popN(t *testing.T, q *sendQueue, k int) string {
	t.Helper()
	var got []byte
	for range k {
		b, ok := q.pop()
		if !ok {
			t.Fatal("queue empty")
		}
		q.sent()
		got = append(got, b[0])
	}
	return string(got)
}

// Pending attachments are capped per originator and per node; released slots are
// reusable (RFC 6940 §13.8).
func TestAttachLimits(t *testing.T) {
	n := &Node{}
	a, b := wire.NodeID{1}, wire.NodeID{2}
	for i := 0; i < MaxPendingAttachmentsPerOrigin; i++ {
		if err := n.reserveAttach(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.reserveAttach(a); !IsCode(err, wire.ErrInProgress) {
		t.Fatalf("over the per-origin cap: %v, want Error_In_Progress", err)
	}
	n.releaseAttach(a)
	if err := n.reserveAttach(a); err != nil {
		t.Fatalf("after release: %v", err)
	}
	total := MaxPendingAttachmentsPerOrigin
	for i := 0; total < MaxPendingAttachments; i++ {
		if err := n.reserveAttach(wire.NodeID{3, byte(i / MaxPendingAttachmentsPerOrigin)}); err != nil {
			t.Fatal(err)
		}
		total++
	}
	if err := n.reserveAttach(b); !IsCode(err, wire.ErrInProgress) {
		t.Fatalf("over the node cap: %v, want Error_In_Progress", err)
	}
}
