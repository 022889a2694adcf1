package peer

import (
	"context"
	"errors"
	"time"

	"github.com/chordphone/chordphone/overlay/netwatch"
	"github.com/chordphone/chordphone/overlay/storage"
)

// linkCheckTimeout bounds the Ping that proves a link alive after a network change or a
// stall (a live peer answers in milliseconds; a loaded machine in well under a second).
const linkCheckTimeout = 3 * time.Second

// Refresh brings the peer back in step after the host's networks changed or the process
// resumed from a stall (ch, from overlay/netwatch): links bound to removed addresses die,
// every other link must answer a Ping (node.CheckLinks), the neighbours lost that way are
// not held back as failed (the failure was this peer's: chord.Resumed), and a peer left
// with no routing peer checks through its bootstrap peers whether their ring still holds
// it or holds its place (the partition check of RFC 6940 §10.7.4.4), which attaches it
// to its former neighbours without a full rejoin. It returns when that is done.
func (p *Peer) Refresh(ctx context.Context, ch netwatch.Change) {
	p.link.NetworkChanged(ch.Removed)
	if ch.Stall > 0 || len(ch.Removed) > 0 || ch.Interfaces {
		if dead := p.node.CheckLinks(ctx, linkCheckTimeout); len(dead) > 0 || ch.Stall > 0 {
			p.log.Info("links checked after a network change or stall", "dead", len(dead), "stall", ch.Stall.Round(time.Millisecond))
		}
		p.chord.Resumed()
	}
	if p.chord.Alone() {
		cctx, cancel := context.WithTimeout(ctx, 4*linkCheckTimeout)
		defer cancel()
		if p.chord.CheckPartition(cctx) {
			p.log.Info("back in the overlay through a bootstrap peer")
		}
	}
}

// Alone reports whether this peer has joined but has no routing peer: cut off from the
// overlay (or the only peer of it).
func (p *Peer) Alone() bool { return p.chord.Alone() }

// Reregister stores this device's registration again at once (it is refreshed anyway at
// half its lifetime): after a network change or a stall, the peer responsible for it
// may have changed or lost it. It does nothing before Register.
func (p *Peer) Reregister(ctx context.Context) error {
	if !p.registered.Load() {
		return nil
	}
	err := p.storage.Register(ctx, p.id.User(), "")
	if errors.Is(err, storage.ErrRetrying) {
		return nil // stored soon, in the background
	}
	return err
}
