package chord

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

func (c *Chord) joinAPLocked() wire.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joinAP
}

// Join implements node.Topology: with no bootstrap links this peer starts the overlay as
// its first peer; otherwise it joins through an admitting peer (RFC 6940 §10.5). It
// retries until joined or ctx ends.
func (c *Chord) Join(ctx context.Context, bootstrap []node.Link) error {
	if c.s.Client {
		return c.joinClient(ctx, bootstrap) // RFC 6940 §4.2.1: attach, never Join
	}
	if len(bootstrap) == 0 {
		c.mu.Lock()
		if !c.joined {
			c.joined = true
			close(c.joinedCh)
		}
		c.mu.Unlock()
		c.n.Logger().Info("started overlay as first peer")
		return nil
	}
	for _, l := range bootstrap {
		// Bootstrap nodes are peers: route through them until joined (§11.4).
		c.mu.Lock()
		c.connected[l.RemoteNodeID()] = true
		c.mu.Unlock()
		c.markReady(l.RemoteNodeID())
	}
	backoff := c.n.Settings().ReliabilityTimer / 4
	for {
		err := c.joinOnce(ctx)
		if err == nil {
			return nil
		}
		alive := false
		for _, l := range bootstrap {
			alive = alive || c.n.Connected(l.RemoteNodeID())
		}
		if !alive && !c.n.Connected(c.joinAPLocked()) {
			// Our way into the overlay is gone: let the caller bootstrap again.
			return fmt.Errorf("chord: join: %w (last attempt: %v)", node.ErrBootstrapLost, err)
		}
		c.n.Logger().Debug("join attempt failed", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("chord: join: %w (last attempt: %v)", ctx.Err(), err)
		case <-c.n.Context().Done():
			return node.ErrClosed
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(2*backoff, c.n.Settings().ReliabilityTimer*4)
	}
}

func (c *Chord) joinOnce(ctx context.Context) error {
	rt := c.n.Settings().ReliabilityTimer
	wait := make(chan *wire.ChordUpdate, 1)
	c.mu.Lock()
	if c.joined {
		c.mu.Unlock()
		return nil
	}
	c.joinWait = wait
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.joinWait = nil
		c.mu.Unlock()
	}()
	// Step 2: Attach to the admitting peer, responsible for n+1, with send_update.
	actx, cancel := context.WithTimeout(ctx, 3*rt)
	target := Next(c.self)
	l, err := c.n.Attach(actx, []wire.Destination{wire.ResourceDestination(wire.ResourceID(target[:]))}, wire.NodeID{}, true)
	cancel()
	if err != nil {
		return fmt.Errorf("attach to admitting peer: %w", err)
	}
	ap := l.RemoteNodeID()
	c.mu.Lock()
	c.joinAP = ap
	c.mu.Unlock()
	c.markReady(ap)
	// The Update from AP (its routing table) usually arrives right after the link.
	var u *wire.ChordUpdate
	c.mu.Lock()
	c.joinWait = wait
	c.mu.Unlock()
	select {
	case u = <-wait:
	case <-time.After(2 * rt):
	case <-ctx.Done():
		return ctx.Err()
	}
	if u == nil {
		u = &wire.ChordUpdate{}
	}
	// Step 3/4: Attach to the prospective neighbours, source-routed through AP (§10.6).
	cands := append(append([]wire.NodeID{ap}, u.Predecessors...), u.Successors...)
	var nb []wire.NodeID
	nb = append(nb, closest(c.self, cands, c.s.Successors, true)...)
	nb = append(nb, closest(c.self, cands, c.s.Predecessors, false)...)
	var wg sync.WaitGroup
	for _, id := range uniq(nb) {
		if id == ap || c.n.Connected(id) {
			c.markReady(id)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.attach(ctx, id, ap, false)
		}()
	}
	wg.Wait()
	// Step 5: Join to AP.
	jctx, cancel := context.WithTimeout(ctx, 3*rt)
	_, err = c.n.Call(jctx, []wire.Destination{wire.NodeDestination(ap)}, wire.CodeJoinReq, &wire.JoinReq{JoiningPeerID: c.self}, &wire.JoinAns{})
	cancel()
	if err != nil {
		return fmt.Errorf("join via %s: %w", ap, err)
	}
	c.mu.Lock()
	c.joined = true
	c.counters.Joins++
	close(c.joinedCh)
	ch := c.recomputeLocked()
	c.mu.Unlock()
	c.n.Logger().Debug("joined", "admitting", ap)
	c.react(ch, false)
	// Step 9: Updates to the whole neighbour table.
	c.kick(true)
	fingerHints := append(append(slices.Clone(u.Fingers), u.Successors...), u.Predecessors...)
	c.n.Go(func(ctx context.Context) { c.initFingers(ctx, ap, fingerHints) })
	return nil
}

// closest returns up to k of ids nearest to self clockwise (succ) or counter-clockwise.
func closest(self wire.NodeID, ids []wire.NodeID, k int, succ bool) []wire.NodeID {
	ids = uniq(ids)
	ids = slices.DeleteFunc(ids, func(id wire.NodeID) bool { return id == self || id.IsZero() })
	slices.SortFunc(ids, func(a, b wire.NodeID) int {
		da, db := dist(self, a), dist(self, b)
		if !succ {
			da, db = dist(a, self), dist(b, self)
		}
		switch {
		case da.less(db):
			return -1
		case db.less(da):
			return 1
		}
		return 0
	})
	return ids[:min(k, len(ids))]
}

func uniq(ids []wire.NodeID) []wire.NodeID {
	out := make([]wire.NodeID, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// attach makes a link to the joined peer id, source-routed through via if via is
// connected (RFC 6940 §10.6), and marks it ready. It returns false on failure.
func (c *Chord) attach(ctx context.Context, id, via wire.NodeID, peerReady bool) bool {
	if id == c.self || id.IsZero() {
		return false
	}
	if c.n.Connected(id) {
		return c.confirmPeer(ctx, id) // a link it made, maybe as a client (§4.2)
	}
	c.mu.Lock()
	if c.attaching[id] {
		c.mu.Unlock()
		return false
	}
	c.attaching[id] = true
	c.counters.AttachesSent++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.attaching, id)
		c.mu.Unlock()
	}()
	dests := []wire.Destination{wire.NodeDestination(id)}
	if !via.IsZero() && via != id && via != c.self && c.n.Connected(via) {
		dests = []wire.Destination{wire.NodeDestination(via), wire.NodeDestination(id)}
	}
	rt := c.n.Settings().ReliabilityTimer
	actx, cancel := context.WithTimeout(ctx, 3*rt)
	defer cancel()
	if _, err := c.n.Attach(actx, dests, id, false); err != nil {
		c.mu.Lock()
		c.counters.AttachFailures++
		// Do not try this peer again for a while: it is probably gone — unless it said
		// Error_In_Progress, which says it is there (§6.5.1.2, §14.9).
		if !c.connected[id] && !node.IsCode(err, wire.ErrInProgress) {
			c.departed[id] = time.Now().Add(c.departTTL())
		}
		c.mu.Unlock()
		return false
	}
	c.markReady(id)
	if peerReady {
		// §10.7: peer_ready tells a peer we attached to that it may route through us.
		c.n.Go(func(ctx context.Context) { c.sendUpdate(ctx, id, wire.ChordPeerReady) })
	}
	return true
}

// serveJoin admits a joining peer (RFC 6940 §6.4.2.1, §10.5 steps 5-8).
func (c *Chord) serveJoin(ctx context.Context, req *node.Request) (wire.Body, error) {
	var j wire.JoinReq
	if err := j.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	// §6.4.2.1: the joining Node-ID must be the signer's and the link's.
	if !req.Direct || req.From != j.JoiningPeerID {
		return nil, node.Errorf(wire.ErrForbidden, "join must come over a link bound to %s", j.JoiningPeerID)
	}
	if !req.SignedBy(j.JoiningPeerID) {
		return nil, node.Errorf(wire.ErrForbidden, "join not signed by %s", j.JoiningPeerID)
	}
	c.mu.Lock()
	joined := c.joined
	obs := slices.Clone(c.observers)
	c.mu.Unlock()
	if !joined {
		return nil, node.Errorf(wire.ErrInvalidMessage, "this node has not joined the overlay")
	}
	jn := j.JoiningPeerID
	c.n.Go(func(ctx context.Context) {
		for _, o := range obs {
			if a, ok := o.(Admitter); ok {
				a.Admitting(ctx, jn) // step 6
			}
		}
		c.mu.Lock()
		if !c.linkedLocked(jn) {
			// Its link died while we stored its data: its Updates over a new link
			// make it a routing peer (markReady), not this stale admission.
			c.mu.Unlock()
			return
		}
		c.ready[jn] = true
		delete(c.departed, jn)
		delete(c.left, jn)
		ch := c.recomputeLocked()
		c.mu.Unlock()
		c.react(ch, false)
		// Steps 7-8: Update to JN (now our predecessor) and to all neighbours.
		c.kick(true)
	})
	return &wire.JoinAns{}, nil
}

// initFingers fills the finger table after joining (RFC 6940 §10.5): a finger range
// that holds a peer of AP's tables gets an Attach source-routed through AP; the others
// are found with a Ping to a point in the range, then an Attach to the responder.
func (c *Chord) initFingers(ctx context.Context, ap wire.NodeID, hints []wire.NodeID) {
	c.mu.Lock()
	for _, h := range uniq(hints) {
		if h == c.self || h.IsZero() {
			continue
		}
		i := fingerIndex(dist(c.self, h))
		if i >= 1 && i <= len(c.fingers) && c.fingers[i-1].IsZero() && !c.searching[i] {
			c.searching[i] = true
			c.mu.Unlock()
			ok := c.attach(ctx, h, ap, true)
			c.mu.Lock()
			delete(c.searching, i)
			if !ok {
				continue
			}
		}
	}
	c.mu.Unlock()
	c.refreshFingers(ctx, false)
}

// refreshFingers searches for every invalid finger whose range lies beyond the last
// successor (§10.7.4.2, §10.7.4.3). With one set, it searches one entry chosen with
// exponentially decreasing probability (Alternative 1).
func (c *Chord) refreshFingers(ctx context.Context, one bool) {
	c.mu.Lock()
	var todo []int
	var lastSucc u128
	if len(c.succs) > 0 {
		lastSucc = dist(c.self, c.succs[len(c.succs)-1])
	}
	for i := 1; i <= len(c.fingers); i++ {
		lo, _ := fingerRange(i)
		if !c.fingers[i-1].IsZero() || c.searching[i] {
			continue
		}
		if !lastSucc.isZero() && !lastSucc.less(lo) {
			// This range and all smaller ones are covered by the successor list.
			break
		}
		todo = append(todo, i)
	}
	if one {
		var pick []int
		for _, i := range todo {
			if rand.IntN(2) == 0 {
				pick = []int{i}
				break
			}
		}
		todo = pick
	}
	for _, i := range todo {
		c.searching[i] = true
	}
	c.mu.Unlock()
	for _, i := range todo {
		c.searchFinger(ctx, i)
		c.mu.Lock()
		delete(c.searching, i)
		c.mu.Unlock()
	}
}

// searchLost searches replacements for lost fingers still invalid (§10.7.2).
func (c *Chord) searchLost(ctx context.Context, lost []int) {
	for _, i := range lost {
		c.mu.Lock()
		todo := i <= len(c.fingers) && c.fingers[i-1].IsZero() && !c.searching[i]
		if todo {
			c.searching[i] = true
		}
		c.mu.Unlock()
		if !todo {
			continue
		}
		c.searchFinger(ctx, i)
		c.mu.Lock()
		delete(c.searching, i)
		c.mu.Unlock()
	}
}

// searchFinger pings a random point of finger i's range and attaches to the responder
// if it lies in the range (§10.7.4.2).
func (c *Chord) searchFinger(ctx context.Context, i int) {
	lo, size := fingerRange(i)
	off := randBits(128 - i)
	_ = size
	point := toU(c.self).add(lo).add(off).id()
	c.mu.Lock()
	c.counters.FingerSearches++
	c.mu.Unlock()
	rt := c.n.Settings().ReliabilityTimer
	pctx, cancel := context.WithTimeout(ctx, 3*rt)
	resp, err := c.n.Ping(pctx, []wire.Destination{wire.ResourceDestination(wire.ResourceID(point[:]))})
	cancel()
	if err != nil {
		return
	}
	if r := resp.From; r != c.self && fingerIndex(dist(c.self, r)) == i {
		c.attach(ctx, r, wire.NodeID{}, true)
	}
}

// requestFull asks peer id for a full Update with RouteQuery send_update (§6.4.2.4).
func (c *Chord) requestFull(ctx context.Context, id wire.NodeID) {
	rt := c.n.Settings().ReliabilityTimer
	rctx, cancel := context.WithTimeout(ctx, 3*rt)
	defer cancel()
	_, err := c.n.Call(rctx, []wire.Destination{wire.NodeDestination(id)}, wire.CodeRouteQueryReq,
		&wire.RouteQueryReq{SendUpdate: true, Destination: wire.NodeDestination(c.self)}, &wire.ChordRouteQueryAns{})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.n.Logger().Debug("route query", "peer", id, "err", err)
	}
}

// randBits returns a random number below 2^k.
func randBits(k int) u128 {
	r := u128{rand.Uint64(), rand.Uint64()}
	switch {
	case k >= 128:
	case k >= 64:
		r.hi &= 1<<uint(k-64) - 1
	default:
		r.hi, r.lo = 0, r.lo&(1<<uint(k)-1)
	}
	return r
}
