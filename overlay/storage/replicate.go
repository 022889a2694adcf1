package storage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// between reports whether x is in the ring interval (a, b]; (a, a] is the
// whole ring.
func between(x, a, b wire.NodeID) bool {
	switch a.Compare(b) {
	case 0:
		return true
	case -1:
		return a.Less(x) && !b.Less(x)
	default:
		return a.Less(x) || !b.Less(x)
	}
}

type role int

const (
	roleResponsible role = iota
	roleReplica          // one of the next two successors of the responsible peer
	roleStale            // outside this peer's replica range (§10.7.3)
)

// role places a resource relative to this peer (RFC 6940 §10.4, §10.7.3)
// and names the peer responsible for it when this peer is a replica.
func (s *Service) role(rid wire.ResourceID) (role, wire.NodeID) {
	return roleOf(rid.NodeID(), s.self, s.ring.Predecessors())
}

func roleOf(x, self wire.NodeID, preds []wire.NodeID) (role, wire.NodeID) {
	if len(preds) == 0 || between(x, preds[0], self) {
		return roleResponsible, self
	}
	for k := 0; k+1 < len(preds) && k < 2; k++ {
		if between(x, preds[k+1], preds[k]) {
			return roleReplica, preds[k]
		}
	}
	if len(preds) < 3 {
		// A ring of at most three peers: everyone holds everything; the
		// farthest known predecessor is responsible.
		return roleReplica, preds[len(preds)-1]
	}
	return roleStale, wire.NodeID{}
}

// replicaSet returns where this peer replicates what it is responsible for.
func (s *Service) replicaSet() []wire.NodeID {
	reps := s.ring.Replicas()
	if len(reps) == 0 {
		succ := s.ring.Successors()
		reps = succ[:min(2, len(succ))]
	}
	out := make([]wire.NodeID, 0, len(reps))
	for _, r := range reps {
		if r != s.self && !r.IsZero() {
			out = append(out, r)
		}
	}
	return out
}

// loop is the repair goroutine: it replicates changed resources at once,
// repairs everything after neighbour changes (settled) and periodically,
// and sweeps expired values.
func (s *Service) loop(ctx context.Context) {
	repair := time.NewTicker(s.s.RepairInterval)
	defer repair.Stop()
	sweep := time.NewTicker(s.s.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			if n := s.eng.Sweep(); n > 0 {
				s.log.Debug("expired values removed", "count", n)
			}
			continue
		case <-repair.C:
			s.mu.Lock()
			s.full = true
			s.mu.Unlock()
		case <-s.kickCh:
		}
		// Freshly stored resources go to their replicas at once (§10.4).
		s.mu.Lock()
		full, dirty := s.full, s.dirty
		s.dirty = map[string]wire.ResourceID{}
		s.mu.Unlock()
		if len(dirty) > 0 {
			ids := make([]wire.ResourceID, 0, len(dirty))
			for _, id := range dirty {
				ids = append(ids, id)
			}
			s.pass(ctx, ids)
		}
		if !full {
			continue
		}
		// Let a burst of neighbour changes settle into one full pass.
		t := time.NewTimer(s.s.Settle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.Lock()
		s.full, s.dirty = false, map[string]wire.ResourceID{}
		s.mu.Unlock()
		s.pass(ctx, nil)
	}
}

// pass brings the replica set of each resource (all when ids is nil) up
// to date: the responsible peer stores to its replicas (§10.4, §10.7.3), a
// replica stores to a responsible peer that lacks the data (a joined or
// promoted peer), and data outside the replica range is handed to the
// responsible peer, then dropped after StaleHold.
func (s *Service) pass(ctx context.Context, ids []wire.ResourceID) {
	if ids == nil {
		for _, ri := range s.eng.Resources() {
			ids = append(ids, ri.ID)
		}
	}
	s.count(func(m *Metrics) { m.Passes++ })
	preds := s.ring.Predecessors()
	reps := s.replicaSet()
	sem := make(chan struct{}, pushParallel)
	var wg sync.WaitGroup
	run := func(f func()) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f()
		}()
	}
	now := time.Now()
	for _, rid := range ids {
		if ctx.Err() != nil {
			break
		}
		r, resp := roleOf(rid.NodeID(), s.self, preds)
		key := string(rid)
		if r != roleStale {
			s.mu.Lock()
			delete(s.stale, key)
			s.mu.Unlock()
		}
		switch r {
		case roleResponsible:
			s.eng.ForgetPushed(rid, reps)
			for i, t := range reps {
				if !s.eng.Pushed(rid, t) {
					run(func() { s.pushCounted(ctx, rid, t, uint8(i+1)) })
				}
			}
		case roleReplica:
			s.eng.ForgetPushed(rid, []wire.NodeID{resp})
			if !s.eng.Pushed(rid, resp) {
				run(func() { s.pushCounted(ctx, rid, resp, 1) })
			}
		case roleStale:
			s.mu.Lock()
			since, seen := s.stale[key]
			if !seen {
				s.stale[key] = now
				since = now
			}
			s.mu.Unlock()
			run(func() {
				if err := s.handOver(ctx, rid); err != nil && !node.IsCode(err, wire.ErrForbidden) {
					// Refused (Error_Forbidden) is an answer too: the responsible peer takes
					// replica stores only from the replica set (§7.4.1.1), and §10.7.3 asks
					// no hand-over before the delete.
					s.log.Debug("hand-over failed", "resource", rid, "err", err)
					return
				}
				if time.Since(since) >= s.s.StaleHold {
					// §10.7.3: no longer in the replica set: delete.
					s.eng.Drop(rid)
					s.mu.Lock()
					delete(s.stale, key)
					s.metrics.Dropped++
					s.mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
}

func (s *Service) pushCounted(ctx context.Context, rid wire.ResourceID, to wire.NodeID, replica uint8) {
	err := s.push(ctx, rid, to, replica)
	s.count(func(m *Metrics) {
		m.Pushes++
		if err != nil {
			m.PushFailures++
		}
	})
	if err != nil {
		s.log.Debug("replica store failed", "peer", to, "resource", rid, "err", err)
		s.mu.Lock()
		s.full = true // try again in the next pass
		s.mu.Unlock()
	}
}

// push stores everything at rid on peer to as a replica store, and records
// that it holds this version.
func (s *Service) push(ctx context.Context, rid wire.ResourceID, to wire.NodeID, replica uint8) error {
	req, _, version, ok := s.eng.snapshot(rid, replica)
	if !ok {
		return nil
	}
	if _, err := s.sendStore(ctx, []wire.Destination{wire.NodeDestination(to)}, req); err != nil {
		return err
	}
	s.eng.MarkPushed(rid, to, version)
	return nil
}

// handOver stores stale data toward the responsible peer (routed by
// Resource-ID) unless it is known to hold this version.
func (s *Service) handOver(ctx context.Context, rid wire.ResourceID) error {
	req, _, version, ok := s.eng.snapshot(rid, 1)
	if !ok {
		return nil
	}
	s.mu.Lock()
	last := s.handed[string(rid)]
	s.mu.Unlock()
	if last.version == version && !last.to.IsZero() {
		return nil
	}
	from, err := s.sendStore(ctx, []wire.Destination{{Type: wire.DestinationResource, Resource: rid}}, req)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.handed[string(rid)] = handed{to: from, version: version}
	s.mu.Unlock()
	return nil
}

type handed struct {
	to      wire.NodeID
	version uint64
}

// sendStore sends a replica StoreReq, split so that each message stays
// under the node's max-message-size, and returns the answering peer.
func (s *Service) sendStore(ctx context.Context, dests []wire.Destination, req *wire.StoreReq) (wire.NodeID, error) {
	ctx, cancel := context.WithTimeout(ctx, s.s.PushTimeout)
	defer cancel()
	var from wire.NodeID
	for _, part := range splitStore(req, s.n.Settings().MaxMessageSize) {
		resp, err := s.n.Request(ctx, dests, wire.CodeStoreReq, part, node.WithTransmissions(2), node.WithReliabilityTimer(s.s.PushTimeout/2))
		if err != nil {
			return from, fmt.Errorf("storage: replica store of %s: %w", req.Resource, err)
		}
		from = resp.From
	}
	return from, nil
}

// splitStore splits a StoreReq into requests whose values (with roughly one
// certificate each) fit in limit bytes. Each part keeps its Kinds'
// generation counters.
func splitStore(req *wire.StoreReq, limit int) []*wire.StoreReq {
	const perValueCert = 600 // a P-256 certificate, roughly
	budget := limit/2 - 200
	if budget < 1000 {
		budget = 1000
	}
	var out []*wire.StoreReq
	cur := &wire.StoreReq{Resource: req.Resource, ReplicaNumber: req.ReplicaNumber}
	size := 0
	for _, kd := range req.KindData {
		part := wire.StoreKindData{Kind: kd.Kind, GenerationCounter: kd.GenerationCounter}
		for _, v := range kd.Values {
			vs := 64 + len(v.Value.Data().Value) + len(v.Value.Dictionary.Key) + len(v.Signature.Value) + len(v.Signature.Identity.Hash) + perValueCert
			if size > 0 && size+vs > budget {
				if len(part.Values) > 0 {
					cur.KindData = append(cur.KindData, part)
				}
				out = append(out, cur)
				cur = &wire.StoreReq{Resource: req.Resource, ReplicaNumber: req.ReplicaNumber}
				part = wire.StoreKindData{Kind: kd.Kind, GenerationCounter: kd.GenerationCounter}
				size = 0
			}
			part.Values = append(part.Values, v)
			size += vs
		}
		if len(part.Values) > 0 {
			cur.KindData = append(cur.KindData, part)
		}
	}
	if len(cur.KindData) > 0 {
		out = append(out, cur)
	}
	return out
}
