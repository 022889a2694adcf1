package phone

import (
	"context"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/diag"
	"github.com/chordphone/chordphone/overlay/wire"
)

// joinedPeer is the running peer once joined, or ErrNotJoined.
func (p *Phone) joinedPeer() (*peer.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peer == nil || p.state == NotJoined {
		return nil, ErrNotJoined
	}
	return p.peer, nil
}

// Inspect asks a node (a Node-ID in hex, or a user's registered device) for its RFC 7851
// diagnostics; it returns the node asked and its answer.
func (p *Phone) Inspect(ctx context.Context, target string) (wire.NodeID, *diag.Hop, error) {
	return askNode(ctx, p, target, (*peer.Peer).Inspect)
}

// PathTrack traces the overlay path to a node (a Node-ID, or a user's registered device)
// with RFC 7851 PathTrack.
func (p *Phone) PathTrack(ctx context.Context, target string) (wire.NodeID, []diag.Hop, error) {
	return askNode(ctx, p, target, (*peer.Peer).PathTrack)
}

// askNode resolves target to a Node-ID through the joined peer and asks it with ask.
func askNode[T any](ctx context.Context, p *Phone, target string, ask func(*peer.Peer, context.Context, wire.NodeID) (T, error)) (wire.NodeID, T, error) {
	var zero T
	pr, err := p.joinedPeer()
	if err != nil {
		return wire.NodeID{}, zero, err
	}
	id, err := pr.ResolveNode(ctx, target)
	if err != nil {
		return id, zero, err
	}
	a, err := ask(pr, ctx, id)
	return id, a, err
}
