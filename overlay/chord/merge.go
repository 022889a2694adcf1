package chord

import (
	"context"
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// MergeWith joins this peer's ring with the one the peer at addr belongs to, when they
// differ: the partition check of RFC 6940 §10.7.4.4 through addr instead of a configured
// bootstrap node. A Ping for our own Node-ID routed through the peer at addr is answered
// by the peer responsible for it there; if that is not us, the rings are apart, and we
// Attach to the answering peer and send it an Update. The Updates that follow (§10.7.3,
// §10.7.4.1) carry each ring's peers into the other until both become one ring.
// It reports whether it found another ring (and started the merge).
func (c *Chord) MergeWith(ctx context.Context, addr string) bool {
	if c.s.Client || !c.IsJoined() {
		return false // a client has no ring of its own (§4.2)
	}
	return c.partitionCheck(ctx, addr)
}

// Tries of an Attach to a would-be neighbour (attachCandidate) and of a reactive Update
// to a neighbour (sendNeighborUpdate).
const (
	neighborAttachTries = 5
	neighborUpdateTries = 3
)

// attachCandidate attaches to a peer named in an Update (consider, §10.7.3). An Attach
// to a would-be neighbour that fails is tried again, after 2, 4, 8 and 16 reliability
// timers, while the peer would still be a neighbour and nobody has connected it
// meanwhile: each peer learns of a closer neighbour only from an Update that names
// it, and when two rings merge that Update is sent once, in a burst of Attaches and
// Updates, so a single lost AttachReq would otherwise leave the tables wrong until the
// periodic Update of §10.7.4.1 (chord-update-interval, 600 s by default).
func (c *Chord) attachCandidate(ctx context.Context, id, via wire.NodeID, finger bool) {
	if c.attach(ctx, id, via, finger) || finger {
		return
	}
	c.retry(ctx, neighborAttachTries, func() bool {
		c.mu.Lock()
		again := c.wantNeighborLocked(id)
		c.mu.Unlock()
		if !again {
			return true
		}
		if !c.n.Connected(via) {
			via = wire.NodeID{} // route by Node-ID
		}
		return c.attach(ctx, id, via, false)
	})
}

// sendNeighborUpdate sends the reactive Update of §10.7.1/§10.7.3 to peer id. One that is
// not answered is sent again, with the table as it is then, after 2 and 4 reliability
// timers while id is still a connected neighbour: the peers it names may be ones id
// learns of only from this Update (a merge of two rings sends each such Update once in a
// burst, and under load transactions time out).
func (c *Chord) sendNeighborUpdate(ctx context.Context, id wire.NodeID) {
	if c.sendUpdate(ctx, id, wire.ChordNeighbors) {
		return
	}
	c.retry(ctx, neighborUpdateTries, func() bool {
		c.mu.Lock()
		again := c.joined && !c.leaving && c.connected[id] && (slices.Contains(c.preds, id) || slices.Contains(c.succs, id))
		c.mu.Unlock()
		return !again || c.sendUpdate(ctx, id, wire.ChordNeighbors)
	})
}

// retry calls try after 2, 4, 8, ... reliability timers (jittered) until it reports done,
// tries calls in all (counting the first, made by the caller) were made, or ctx ends.
func (c *Chord) retry(ctx context.Context, tries int, try func() (done bool)) {
	wait := 2 * c.n.Settings().ReliabilityTimer
	for n := 1; n < tries; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(wait)):
		}
		if try() {
			return
		}
		wait *= 2
	}
}

// wantNeighborLocked reports whether id, not yet a routing peer nor being attached, would
// be a neighbour and has not said it left (§10.9): worth an Attach.
func (c *Chord) wantNeighborLocked(id wire.NodeID) bool {
	return c.joined && !c.leaving && !c.leftLocked(id) && !c.ready[id] && !c.attaching[id] && c.wouldBeNeighborLocked(id)
}

// tryAfterHoldLocked reports whether a peer named in an Update while it is held back as
// departed (it failed or left not long ago, §10.7.1) should be tried later: when it
// would be a neighbour and no such try is pending. The hold keeps stale tables from
// bringing back a dead peer; but when a partitioned ring heals (a switch that came back),
// the peers of the other side are alive and named once, while still held, so without
// this they would stay out of the neighbour tables until the periodic Update of
// §10.7.4.1.
func (c *Chord) tryAfterHoldLocked(id wire.NodeID) bool {
	if c.leftLocked(id) {
		return false // it said it left (§10.9): it comes back by joining again
	}
	if !c.joined || c.leaving || c.held[id] || !c.wouldBeNeighborLocked(id) {
		return false
	}
	if c.held == nil {
		c.held = map[wire.NodeID]bool{}
	}
	c.held[id] = true
	return true
}

// attachAfterHold attaches to id (attachCandidate) once it has been held back for four
// reliability timers (or the whole hold, if shorter) if it still would be a neighbour
// and is not a routing peer yet (when a link to it is up, e.g. the one a partition
// check made, that link only makes it one): by then the links to a peer that really failed have
// timed out everywhere (link keepalives), so a neighbour that still names it has a link
// to it, and an Attach that fails all the same costs one AttachReq.
func (c *Chord) attachAfterHold(ctx context.Context, id, via wire.NodeID) {
	defer func() {
		c.mu.Lock()
		delete(c.held, id)
		c.mu.Unlock()
	}()
	hold := min(c.departTTL(), 4*c.n.Settings().ReliabilityTimer)
	for {
		c.mu.Lock()
		until, held := c.departed[id]
		again := c.wantNeighborLocked(id)
		c.mu.Unlock()
		if !again {
			return
		}
		wait := time.Until(until.Add(-c.departTTL()).Add(hold)) // marked at until - departTTL
		if !held || wait <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait + jitter(c.n.Settings().ReliabilityTimer)):
		}
	}
	if !c.n.Connected(via) {
		via = wire.NodeID{}
	}
	c.attachCandidate(ctx, id, via, false)
}

// Resumed forgets which peers this peer holds back as departed because their links
// failed (§10.7.1): after the process was stopped or the machine slept, or after the
// host's address changed, those links failed because of this peer, and its former
// neighbours are alive and should be attached to again at once. Peers that said they
// left (§10.9) stay held back.
func (c *Chord) Resumed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.departed {
		if !c.leftLocked(id) {
			delete(c.departed, id)
		}
	}
}

// Alone reports whether this joined peer has no routing peer left (its neighbours'
// links all failed): it answers for the whole overlay while it is in fact cut off.
func (c *Chord) Alone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined && !c.s.Client && len(c.ring) == 0
}
