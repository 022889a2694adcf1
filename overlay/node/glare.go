package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// outAttach is an Attach this node sent to a Node-ID (RFC 6940 §6.5.1.2 glare).
// Guarded by Node.mu.
type outAttach struct {
	answered bool               // the AttachReqAns came: ICE and DTLS run
	yield    context.CancelFunc // gives the request up for the peer's own Attach
	yielded  bool
}

// errYielded: this node gave its Attach up for the peer's (the smaller Node-ID yields).
var errYielded = errors.New("node: attach given up for the peer's own (glare)")

// startOutAttach records an Attach to target and returns the context to send it in.
func (n *Node) startOutAttach(ctx context.Context, target wire.NodeID) (context.Context, *outAttach, func()) {
	if target.IsZero() {
		return ctx, nil, func() {}
	}
	actx, cancel := context.WithCancel(ctx)
	o := &outAttach{yield: cancel}
	n.mu.Lock()
	if n.outAttaches == nil {
		n.outAttaches = map[wire.NodeID]*outAttach{}
	}
	prev := n.outAttaches[target]
	n.outAttaches[target] = o
	n.mu.Unlock()
	return actx, o, func() {
		cancel()
		n.mu.Lock()
		if n.outAttaches[target] == o {
			if prev != nil {
				n.outAttaches[target] = prev
			} else {
				delete(n.outAttaches, target)
			}
		}
		n.mu.Unlock()
	}
}

// glare decides an AttachReq from origin while this node has an Attach of its own to
// origin outstanding (RFC 6940 §6.5.1.2): Error_In_Progress when ours was answered (ICE
// runs) or when our Node-ID is the larger; otherwise ours is given up and theirs served.
func (n *Node) glare(origin wire.NodeID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.outAttaches[origin]
	if o == nil || o.yielded {
		return nil
	}
	if o.answered {
		return Errorf(wire.ErrInProgress, "an attachment to %s is in progress", origin)
	}
	if origin.Compare(n.id) < 0 {
		return Errorf(wire.ErrInProgress, "attach glare: %s has the smaller Node-ID and yields", origin)
	}
	o.yielded = true
	o.yield()
	return nil
}

// awaitLink waits for a link to id made by id's own Attach (after glare, or after
// Error_In_Progress from id, §6.5.1.2) for up to AttachTimeout.
func (n *Node) awaitLink(ctx context.Context, id wire.NodeID, why error) (Link, error) {
	deadline := time.Now().Add(n.s.AttachTimeout)
	for {
		if l := n.link(id); l != nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node: attach to %s: no link from its own attach: %w", id, why)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node: attach to %s: %w", id, ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrClosed
		case <-time.After(20 * time.Millisecond): // links have no "up" event per peer
		}
	}
}
