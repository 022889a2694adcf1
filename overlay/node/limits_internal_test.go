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
		if !q.push(flood, []byte{1}) {
			refused++
		}
	}
	if refused != sendQueuePerSource {
		t.Fatalf("flooder: %d refused, want %d", refused, sendQueuePerSource)
	}
	if !q.push(other, []byte{2}) {
		t.Fatal("other neighbour refused while the flooder's FIFO is full")
	}
	q.mu.Unlock()
	var got []byte
	for range 3 {
		b, ok := q.pop()
		if !ok {
			t.Fatal("queue empty")
		}
		q.sent()
		got = append(got, b[0])
	}
	if string(got) != "\x01\x02\x01" {
		t.Fatalf("service order %v, want flooder, other, flooder", got)
	}
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
