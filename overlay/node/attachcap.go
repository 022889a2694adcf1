package node

import (
	"github.com/chordphone/chordphone/overlay/wire"
)

// Bounds on the attachments this node answers and that have not connected yet: each
// holds an ICE agent (goroutines, a UDP socket) until ICE and DTLS succeed or
// AttachTimeout passes, so a flood of (App)AttachReqs must not open sockets without
// bound (RFC 6940 §13.8: denial of service).
const (
	MaxPendingAttachments          = 32
	MaxPendingAttachmentsPerOrigin = 4
)

// attachLimits counts pending answered attachments, in total and per originator.
// Guarded by Node.mu.
type attachLimits struct {
	total    int
	byOrigin map[wire.NodeID]int
}

// reserveAttach takes a pending-attachment slot for origin, or returns an
// Error_In_Progress error (RFC 6940 §14.9) when this node or origin has too many.
func (n *Node) reserveAttach(origin wire.NodeID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := &n.attaching
	if a.total >= MaxPendingAttachments {
		return Errorf(wire.ErrInProgress, "too many attachments in progress (%d)", a.total)
	}
	if a.byOrigin[origin] >= MaxPendingAttachmentsPerOrigin {
		return Errorf(wire.ErrInProgress, "too many attachments in progress from %s", origin)
	}
	if a.byOrigin == nil {
		a.byOrigin = map[wire.NodeID]int{}
	}
	a.total++
	a.byOrigin[origin]++
	return nil
}

// releaseAttach frees a slot taken by reserveAttach.
func (n *Node) releaseAttach(origin wire.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := &n.attaching
	a.total--
	if a.byOrigin[origin]--; a.byOrigin[origin] <= 0 {
		delete(a.byOrigin, origin)
	}
}
