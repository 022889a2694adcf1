package peer

import (
	"context"

	"github.com/chordphone/chordphone/overlay/wire"
)

// MergeWith merges this peer's overlay ring with the one of the peer at addr ("host:port")
// if they are apart (two LAN rings formed separately): the partition check of RFC 6940
// §10.7.4.4 through addr (chord.MergeWith). It reports whether it found another ring.
func (p *Peer) MergeWith(ctx context.Context, addr string) bool {
	return p.chord.MergeWith(ctx, addr)
}

// InOverlay reports whether the peer id is in this peer's overlay ring: linked to it as a
// routing peer, or answering a Ping routed to its own Node-ID (RFC 6940 §6.4.2.1, §10.3:
// a peer is responsible for its own Node-ID). false when unsure (no answer in time).
func (p *Peer) InOverlay(ctx context.Context, id wire.NodeID) bool {
	if id == p.NodeID() {
		return true
	}
	if p.Linked(id) {
		return true
	}
	resp, err := p.node.Ping(ctx, []wire.Destination{wire.ResourceDestination(wire.ResourceID(id[:]))})
	return err == nil && resp.From == id
}

// Linked reports whether this peer has a link to the routing peer id.
func (p *Peer) Linked(id wire.NodeID) bool {
	connected, ready, _ := p.chord.PeerState(id)
	return connected && ready
}
