package chord

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// serveUpdate handles an Update (RFC 6940 §10.7.3): new peers that belong in the
// neighbour table (or fill an invalid finger) are attached to; the neighbour table
// changes once they are connected.
func (c *Chord) serveUpdate(ctx context.Context, req *node.Request) (wire.Body, error) {
	var u wire.ChordUpdate
	if err := u.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	origin := req.Origin
	c.mu.Lock()
	c.counters.UpdatesReceived++
	if c.joinWait != nil && !c.joined && u.Type == wire.ChordFull {
		// The admitting peer's routing table during a join (§10.5).
		select {
		case c.joinWait <- &u:
		default:
		}
	}
	c.mu.Unlock()
	// Only peers send Updates: the sender may be routed through (peer_ready, §10.7).
	if c.n.Connected(origin) && c.readyAgain(origin, u.Type) {
		c.markReady(origin)
	}
	c.consider(origin, u.Predecessors, u.Successors, u.Fingers)
	c.correct(origin, &u)
	return &wire.UpdateAns{}, nil
}

// readyAgain reports whether an Update of type typ from origin shows it is a joined peer.
// Handlers run concurrently, so an Update that a leaving peer sent just before its Leave
// may be handled after it: a peer that left is ready again only when it says it joined
// again (peer_ready, RFC 6940 §10.5) or joined through us.
func (c *Chord) readyAgain(origin wire.NodeID, typ wire.ChordUpdateType) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leftLocked(origin) && typ != wire.ChordPeerReady {
		return false
	}
	delete(c.left, origin)
	return true
}

// leftLocked reports whether id sent us a Leave (§10.9) that still holds it back.
func (c *Chord) leftLocked(id wire.NodeID) bool {
	t, ok := c.left[id]
	return ok && time.Now().Before(t)
}

// correct answers an Update from a peer that counts this peer among its neighbours
// while this peer does not count it among its own: the sender's table is stale (it
// missed peers that joined in between), so it gets this peer's neighbour table back and
// attaches to the closer peers (§10.7.3). This is what the successor/predecessor check
// of Chord's stabilize() does.
func (c *Chord) correct(origin wire.NodeID, u *wire.ChordUpdate) {
	if u.Type == wire.ChordPeerReady || origin == c.self {
		return
	}
	if !slices.Contains(u.Successors, c.self) && !slices.Contains(u.Predecessors, c.self) {
		return
	}
	now := time.Now()
	c.mu.Lock()
	stale := c.joined && !c.leaving && !slices.Contains(c.preds, origin) && !slices.Contains(c.succs, origin) &&
		now.After(c.lastCorrect[origin])
	if stale {
		c.lastCorrect[origin] = now.Add(c.n.Settings().ReliabilityTimer)
		if len(c.lastCorrect) > 4096 {
			for id, t := range c.lastCorrect {
				if now.After(t) {
					delete(c.lastCorrect, id)
				}
			}
		}
	}
	c.mu.Unlock()
	if stale {
		c.n.Go(func(ctx context.Context) { c.sendUpdate(ctx, origin, wire.ChordNeighbors) })
	}
}

// consider examines peers named by a neighbour (§10.7.3): known connected peers become
// routing candidates; unknown ones are attached to if they would enter the neighbour
// table or fill an invalid finger.
func (c *Chord) consider(via wire.NodeID, lists ...[]wire.NodeID) {
	var all []wire.NodeID
	for _, l := range lists {
		all = append(all, l...)
	}
	now := time.Now()
	for _, id := range uniq(all) {
		if id == c.self || id.IsZero() {
			continue
		}
		c.mu.Lock()
		if t, ok := c.departed[id]; ok && now.Before(t) {
			later := c.tryAfterHoldLocked(id)
			c.mu.Unlock()
			if later {
				c.n.Go(func(ctx context.Context) { c.attachAfterHold(ctx, id, via) })
			}
			continue
		}
		if c.connected[id] {
			ready := c.ready[id]
			c.mu.Unlock()
			if !ready {
				// Named by another node: it becomes routable only on its own word.
				c.n.Go(func(ctx context.Context) { c.confirmPeer(ctx, id) })
			}
			continue
		}
		if !c.joined || c.leaving || c.attaching[id] {
			c.mu.Unlock()
			continue
		}
		neighbor := c.wouldBeNeighborLocked(id)
		finger := !neighbor && c.fillsFingerLocked(id)
		c.mu.Unlock()
		if neighbor || finger {
			id := id
			c.n.Go(func(ctx context.Context) { c.attachCandidate(ctx, id, via, finger) })
		}
	}
}

// confirmPeer marks a connected peer that another node named in an Update or a Leave
// ready (routable) once it has said itself that it is a joined peer: a Probe to it, whose
// answer it signs (RFC 6940 §6.3.4), reports a responsible set (§6.4.2.5). A third node's
// word is not enough: otherwise any peer could make us route through a client, or a node
// that never joined, by naming it (§6.4.2.3 binds an Update to its sender).
func (c *Chord) confirmPeer(ctx context.Context, id wire.NodeID) bool {
	c.mu.Lock()
	ready, busy := c.ready[id], c.confirming[id]
	if c.leftLocked(id) {
		busy = true // it said it left (§10.9): it comes back by joining again
	}
	if !ready && !busy {
		if c.confirming == nil {
			c.confirming = map[wire.NodeID]bool{}
		}
		c.confirming[id] = true
	}
	c.mu.Unlock()
	if ready || busy {
		return ready
	}
	defer func() {
		c.mu.Lock()
		delete(c.confirming, id)
		c.mu.Unlock()
	}()
	pctx, cancel := context.WithTimeout(ctx, 3*c.n.Settings().ReliabilityTimer)
	defer cancel()
	var ans wire.ProbeAns
	if _, err := c.n.Call(pctx, []wire.Destination{wire.NodeDestination(id)}, wire.CodeProbeReq,
		&wire.ProbeReq{RequestedInfo: []wire.ProbeInformationType{wire.ProbeResponsibleSet}}, &ans); err != nil {
		c.n.Logger().Debug("probe of a named peer", "peer", id, "err", err)
		return false
	}
	for _, pi := range ans.ProbeInfo {
		if pi.Type == wire.ProbeResponsibleSet && pi.Value > 0 {
			c.markReady(id)
			return true
		}
	}
	return false
}

// PlausibleResponder implements node.ResponderChecker (RFC 6940 §6.3.4, second check):
// responder is at least as close to target (clockwise, §10.1) as every peer of the
// Neighbor Table. A client has no Neighbor Table (§4.2): it checks nothing.
func (c *Chord) PlausibleResponder(target, responder wire.NodeID) bool {
	if c.s.Client {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := dist(target, responder)
	for _, l := range [][]wire.NodeID{c.preds, c.succs} {
		for _, id := range l {
			if dist(target, id).less(d) {
				return false
			}
		}
	}
	return true
}

func (c *Chord) wouldBeNeighborLocked(id wire.NodeID) bool {
	if len(c.succs) < c.s.Successors || dist(c.self, id).less(dist(c.self, c.succs[len(c.succs)-1])) {
		return true
	}
	if len(c.preds) < c.s.Predecessors || dist(id, c.self).less(dist(c.preds[len(c.preds)-1], c.self)) {
		return true
	}
	return false
}

func (c *Chord) fillsFingerLocked(id wire.NodeID) bool {
	i := fingerIndex(dist(c.self, id))
	return i >= 1 && i <= len(c.fingers) && c.fingers[i-1].IsZero() && !c.searching[i]
}

// sendUpdate sends one Update of type typ to peer id (§10.7) and reports whether it was
// answered.
func (c *Chord) sendUpdate(ctx context.Context, id wire.NodeID, typ wire.ChordUpdateType) bool {
	c.mu.Lock()
	u := &wire.ChordUpdate{Uptime: uint32(time.Since(c.start) / time.Second), Type: typ}
	if typ != wire.ChordPeerReady {
		u.Predecessors = slices.Clone(c.preds)
		u.Successors = slices.Clone(c.succs)
	}
	if typ == wire.ChordFull {
		u.Fingers = c.fingerListLocked()
	}
	c.counters.UpdatesSent++
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 3*c.n.Settings().ReliabilityTimer)
	defer cancel()
	if _, err := c.n.Call(rctx, []wire.Destination{wire.NodeDestination(id)}, wire.CodeUpdateReq, u, &wire.UpdateAns{}); err != nil {
		c.n.Logger().Debug("update", "peer", id, "err", err)
		return false
	}
	return true
}

// flushUpdates sends the Updates asked for by kick: neighbours always, every connection
// when the responsible range changed (§6.4.1, §10.7.3).
func (c *Chord) flushUpdates() {
	c.mu.Lock()
	all, neigh := c.kickAll, c.kickNeigh
	c.kickAll, c.kickNeigh = false, false
	if !c.joined || c.leaving || !all && !neigh {
		c.mu.Unlock()
		return
	}
	targets := uniq(append(slices.Clone(c.preds), c.succs...))
	if all {
		for id := range c.connected {
			if !slices.Contains(targets, id) {
				targets = append(targets, id)
			}
		}
	}
	c.mu.Unlock()
	for _, id := range targets {
		c.n.Go(func(ctx context.Context) { c.sendNeighborUpdate(ctx, id) })
	}
}

// maintain runs stabilisation (§10.7.4): periodic Updates to the neighbours, finger
// refresh every chord-ping-interval, reactive Updates when kicked, and the end of the
// successor hold-down.
func (c *Chord) maintain(ctx context.Context) {
	ut := time.NewTimer(jitter(c.s.UpdateInterval))
	pt := time.NewTimer(jitter(c.s.PingInterval))
	ht := time.NewTicker(max(c.s.HoldDown/3, time.Millisecond))
	defer ut.Stop()
	defer pt.Stop()
	defer ht.Stop()
	coalesce := min(c.n.Settings().ReliabilityTimer/50, 20*time.Millisecond)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kickCh:
			// Let a burst of table changes settle into one round of Updates.
			select {
			case <-time.After(coalesce):
			case <-ctx.Done():
				return
			}
			c.flushUpdates()
		case <-ut.C:
			c.periodic()
			ut.Reset(jitter(c.s.UpdateInterval))
		case <-pt.C:
			if c.IsJoined() {
				c.n.Go(func(ctx context.Context) { c.refreshFingers(ctx, true) })
				if !c.s.NoPartitionCheck {
					c.n.Go(c.checkPartition)
				}
			}
			pt.Reset(jitter(c.s.PingInterval))
		case <-ht.C:
			c.endHoldDown()
		}
	}
}

// periodic sends the periodic Updates to the neighbour table (§10.7.4.1) and expires
// the record of departed peers.
func (c *Chord) periodic() {
	now := time.Now()
	c.mu.Lock()
	for id, t := range c.departed {
		if now.After(t) {
			delete(c.departed, id)
		}
	}
	for id, t := range c.left {
		if now.After(t) {
			delete(c.left, id)
		}
	}
	ok := c.joined && !c.leaving
	c.mu.Unlock()
	if !ok {
		return
	}
	c.mu.Lock()
	c.kickNeigh = true
	c.mu.Unlock()
	c.flushUpdates()
}

// endHoldDown adopts the new replica set once the hold-down has passed (§10.7.1).
func (c *Chord) endHoldDown() {
	c.mu.Lock()
	changed := false
	if !c.holdUntil.IsZero() && time.Now().After(c.holdUntil) {
		c.holdUntil = time.Time{}
	}
	if c.holdUntil.IsZero() {
		want := c.succs[:min(c.s.Replicas, len(c.succs))]
		if !slices.Equal(want, c.replicas) {
			c.replicas = slices.Clone(want)
			changed = true
		}
	}
	c.mu.Unlock()
	if changed {
		c.signalObservers()
	}
}

// Leave sends a Leave to every neighbour (RFC 6940 §10.9): successors get our
// predecessors (from_pred), predecessors our successors (from_succ).
func (c *Chord) Leave(ctx context.Context) error {
	c.mu.Lock()
	if !c.joined || c.leaving {
		c.mu.Unlock()
		return nil
	}
	c.leaving = true
	c.counters.Leaves++
	preds, succs := slices.Clone(c.preds), slices.Clone(c.succs)
	c.mu.Unlock()
	done := make(chan struct{}, len(preds)+len(succs))
	count := 0
	for _, id := range uniq(append(slices.Clone(succs), preds...)) {
		d := &wire.ChordLeaveData{Type: wire.ChordLeaveFromSucc, Successors: succs}
		if slices.Contains(succs, id) {
			d = &wire.ChordLeaveData{Type: wire.ChordLeaveFromPred, Predecessors: preds}
		}
		od, err := d.MarshalBinary()
		if err != nil {
			continue
		}
		count++
		if !c.n.Go(func(_ context.Context) {
			defer func() { done <- struct{}{} }()
			// The transaction's own retransmissions bound it (RFC 6940 §6.2.1), and ctx:
			// a busy neighbour answering after two overlay-reliability-timers still
			// learns of the leave before Leave returns.
			c.n.Call(ctx, []wire.Destination{wire.NodeDestination(id)}, wire.CodeLeaveReq, &wire.LeaveReq{LeavingPeerID: c.self, OverlaySpecificData: od}, &wire.LeaveAns{})
		}) {
			count--
		}
	}
	for ; count > 0; count-- {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// serveLeave treats a leaving neighbour as failed (RFC 6940 §10.9, §10.7.1) and adopts
// the peers its Leave names.
func (c *Chord) serveLeave(ctx context.Context, req *node.Request) (wire.Body, error) {
	l, err := leaveRequest(req)
	if err != nil {
		return nil, err
	}
	var d wire.ChordLeaveData
	if len(l.OverlaySpecificData) > 0 {
		if err := d.UnmarshalBinary(l.OverlaySpecificData); err != nil {
			return nil, err
		}
	}
	id := l.LeavingPeerID
	c.mu.Lock()
	delete(c.ready, id)
	c.departed[id] = time.Now().Add(c.departTTL())
	c.left[id] = c.departed[id]
	ch := c.recomputeLocked()
	c.mu.Unlock()
	c.react(ch, true)
	c.consider(wire.NodeID{}, d.Successors, d.Predecessors)
	c.startRejoin() // the last neighbour left (§10.7.1)
	return &wire.LeaveAns{}, nil
}

// leaveRequest decodes a Leave and checks that the leaving Node-ID is the signer's and
// the link's (RFC 6940 §6.4.2.2).
func leaveRequest(req *node.Request) (*wire.LeaveReq, error) {
	var l wire.LeaveReq
	if err := l.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	if !req.Direct || req.From != l.LeavingPeerID || !req.SignedBy(l.LeavingPeerID) {
		return nil, node.Errorf(wire.ErrForbidden, "leave must come from %s over its own link", l.LeavingPeerID)
	}
	return &l, nil
}

// serveRouteQuery answers with the next hop for the destination (RFC 6940 §10.8) and,
// if asked, sends a full Update to the requester.
func (c *Chord) serveRouteQuery(ctx context.Context, req *node.Request) (wire.Body, error) {
	var q wire.RouteQueryReq
	if err := q.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	var target wire.NodeID
	switch q.Destination.Type {
	case wire.DestinationNode:
		target = q.Destination.Node
	case wire.DestinationResource:
		target = q.Destination.Resource.NodeID()
	default:
		return nil, node.Errorf(wire.ErrInvalidMessage, "route query for %v not supported", q.Destination)
	}
	next := c.self
	if target != c.self && !c.Responsible(target) {
		var ok bool
		if next, ok = c.NextHop(target); !ok {
			return nil, node.Errorf(wire.ErrNotFound, "no route to %v", q.Destination)
		}
	}
	if q.SendUpdate {
		origin := req.Origin
		c.n.Go(func(ctx context.Context) { c.sendUpdate(ctx, origin, wire.ChordFull) })
	}
	return &wire.ChordRouteQueryAns{NextPeer: next}, nil
}

// serveProbe answers a Probe (RFC 6940 §6.4.2.5) in the requested order.
func (c *Chord) serveProbe(ctx context.Context, req *node.Request) (wire.Body, error) {
	var p wire.ProbeReq
	if err := p.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	ans := &wire.ProbeAns{}
	for _, t := range p.RequestedInfo {
		var v uint32
		switch t {
		case wire.ProbeResponsibleSet:
			c.mu.Lock()
			switch {
			case !c.joined || c.leaving: // no longer takes responsibility (§10.9)
			case len(c.preds) == 0:
				v = 1e9
			default:
				v = uint32(dist(c.preds[0], c.self).float() * 1e9)
			}
			c.mu.Unlock()
		case wire.ProbeNumResources:
			if c.s.ResourceCount != nil {
				v = c.s.ResourceCount()
			}
		case wire.ProbeUptime:
			v = uint32(time.Since(c.start) / time.Second)
		default:
			continue // §6.4.2.5.2: unknown types are not returned
		}
		ans.ProbeInfo = append(ans.ProbeInfo, wire.ProbeInformation{Type: t, Value: v})
	}
	return ans, nil
}

// checkPartition repeats the bootstrap step (RFC 6940 §10.7.4.4): a Ping for our own
// Node-ID routed through a bootstrap node must come back to us; if another peer S'
// answers, the overlay is partitioned (or we lost all our neighbours, §10.7.1), and we
// Attach to S' through the bootstrap node and send it an Update.
func (c *Chord) checkPartition(ctx context.Context) { c.CheckPartition(ctx) }

// CheckPartition runs the partition check of §10.7.4.4 now and reports whether it found
// (and started to heal) a partition.
func (c *Chord) CheckPartition(ctx context.Context) bool {
	addrs := c.n.Settings().Bootstrap
	if len(addrs) == 0 {
		return false
	}
	return c.partitionCheck(ctx, addrs[rand.IntN(len(addrs))])
}

// partitionCheck is the check of §10.7.4.4 through the node at addr (CheckPartition,
// MergeWith).
func (c *Chord) partitionCheck(ctx context.Context, addr string) bool {
	rt := c.n.Settings().ReliabilityTimer
	bctx, cancel := context.WithTimeout(ctx, 3*rt)
	defer cancel()
	links, err := c.n.Bootstrap(bctx, []string{addr})
	if err != nil || len(links) == 0 {
		return false
	}
	b := links[0].RemoteNodeID()
	resp, err := c.n.Ping(bctx, []wire.Destination{wire.NodeDestination(b), wire.ResourceDestination(wire.ResourceID(c.self[:]))})
	if err == nil && resp.From == c.self && c.Alone() {
		// b's ring still routes to us while we lost every link to it (our address
		// changed, or we were stopped for less than b's link timeout): b is a peer of our
		// ring, and its tables name our neighbours. Keep the link, route through b and
		// ask it for its tables (§10.7.4.1).
		c.n.Logger().Info("back in the ring through a peer that still routes to us", "peer", b)
		c.markReady(b)
		c.requestFull(ctx, b)
		return true
	}
	if err != nil || resp.From == c.self {
		links[0].Close() // a link of its own for this check; other links to b stay
		return false
	}
	c.n.Logger().Info("overlay partition detected", "answered_by", resp.From, "bootstrap", b)
	c.mu.Lock()
	c.counters.Partitions++
	c.mu.Unlock()
	// The link to b stays: the Updates that follow reach b's ring, which may soon route
	// through us over it, and a link closed now would look failed there (held back as
	// departed, §10.7.1) if the close got lost. When b itself answered, it is the link to S'.
	ok := c.attach(ctx, resp.From, b, false)
	if ok {
		c.sendUpdate(ctx, resp.From, wire.ChordNeighbors)
	}
	return true
}
