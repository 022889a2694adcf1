package chord_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/sim"
	"github.com/chordphone/chordphone/overlay/wire"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func grow(t *testing.T, p sim.Params) *sim.Cluster {
	t.Helper()
	c := sim.NewCluster(p)
	t.Cleanup(c.Close)
	ctx := testCtx(t)
	if err := c.Grow(ctx, c.Params().N); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitNeighbors(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFirstPeerIsResponsibleForEverything(t *testing.T) {
	c := grow(t, sim.Params{N: 1})
	p := c.Peers()[0]
	select {
	case <-p.Chord.Joined():
	default:
		t.Fatal("first peer not joined")
	}
	if !p.Chord.ResponsibleFor(wire.ResourceIDFromName("anything")) {
		t.Fatal("first peer must be responsible for every Resource-ID")
	}
	st := p.Chord.Status()
	if len(st.Successors) != 0 || len(st.Predecessors) != 0 {
		t.Fatalf("alone but has neighbours: %+v", st)
	}
}

// TestOverlay40 joins 40 peers and checks the tables of §10.7 and every route. Its messages
// are not signed: it tests routing, and 40 peers signing and verifying every message under
// the race detector on a busy 2-core machine answer later than five 500 ms transmissions
// (signatures are exercised by TestRunSmall in overlay/sim, overlay/node and app/hostile).
func TestOverlay40(t *testing.T) {
	c := grow(t, sim.Params{N: 40, Seed: 7, Security: sim.SecurityNone})
	ps := c.Peers()
	for i, p := range ps {
		st := p.Chord.Status()
		k := chord.DefaultNeighbors
		if len(st.Predecessors) != k || len(st.Successors) != k {
			t.Fatalf("peer %d: %d predecessors, %d successors; want %d each", i, len(st.Predecessors), len(st.Successors), k)
		}
		for j := 0; j < k; j++ {
			if st.Successors[j] != ps[(i+1+j)%len(ps)].ID || st.Predecessors[j] != ps[(i+len(ps)-1-j)%len(ps)].ID {
				t.Fatalf("peer %d: neighbour %d wrong", i, j)
			}
		}
		if len(st.FingerTable) != chord.DefaultFingers {
			t.Fatalf("finger table has %d entries, want %d", len(st.FingerTable), chord.DefaultFingers)
		}
		// Each valid finger i lies in [x+2^(128-i), x+2^(129-i)-1] (§10.7.4.2).
		for k, f := range st.FingerTable {
			if f.IsZero() {
				continue
			}
			lo := chord.AddPow2(p.ID, 128-(k+1))
			hi := chord.AddPow2(p.ID, 128-k)
			if !chord.Between(f, p.ID, hi) || f != lo && !chord.Between(f, lo, hi) || f == hi {
				t.Fatalf("peer %d finger %d = %s outside its range", i, k+1, f)
			}
		}
		if len(st.Fingers) < 3 {
			t.Fatalf("peer %d has only %d fingers", i, len(st.Fingers))
		}
	}
	// Every route reaches the responsible peer (§10.3).
	ls := c.Lookups(testCtx(t), 400)
	if ls.SuccessRate != 1 {
		t.Fatalf("lookups: %+v", ls)
	}
	// Every Node-ID's peer answers a Ping routed to it, and RouteQuery agrees with routing.
	ctx := testCtx(t)
	for _, p := range ps[:5] {
		for _, q := range ps {
			r, err := p.Node.Ping(ctx, []wire.Destination{wire.NodeDestination(q.ID)})
			if err != nil || r.From != q.ID {
				t.Fatalf("ping %s -> %s: %v", p.ID, q.ID, err)
			}
		}
	}
}

func TestRouteQueryAndProbe(t *testing.T) {
	c := grow(t, sim.Params{N: 12, Seed: 3})
	ps := c.Peers()
	ctx := testCtx(t)
	key := wire.ResourceIDFromName("alice@example")
	want, _ := ps[0].Chord.NextHop(key.NodeID())
	if ps[0].Chord.ResponsibleFor(key) {
		want = ps[0].ID
	}
	var ans wire.ChordRouteQueryAns
	if _, err := ps[1].Node.Call(ctx, []wire.Destination{wire.NodeDestination(ps[0].ID)}, wire.CodeRouteQueryReq,
		&wire.RouteQueryReq{Destination: wire.ResourceDestination(key)}, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.NextPeer != want {
		t.Fatalf("route query: next peer %s, want %s", ans.NextPeer, want)
	}
	// responsible_set of all peers adds up to the whole ring (parts per billion).
	var sum uint64
	for _, p := range ps {
		var pa wire.ProbeAns
		if _, err := ps[0].Node.Call(ctx, []wire.Destination{wire.NodeDestination(p.ID)}, wire.CodeProbeReq,
			&wire.ProbeReq{RequestedInfo: []wire.ProbeInformationType{wire.ProbeUptime, 77, wire.ProbeResponsibleSet}}, &pa); err != nil {
			t.Fatal(err)
		}
		if len(pa.ProbeInfo) != 2 || pa.ProbeInfo[0].Type != wire.ProbeUptime || pa.ProbeInfo[1].Type != wire.ProbeResponsibleSet {
			t.Fatalf("probe answer %+v: want uptime, responsible_set in order, unknown type left out", pa)
		}
		sum += uint64(pa.ProbeInfo[1].Value)
	}
	if sum < 1e9-100 || sum > 1e9+100 {
		t.Fatalf("responsible_set sums to %d ppb", sum)
	}
}

func TestJoinMustComeOverOwnLink(t *testing.T) {
	c := grow(t, sim.Params{N: 5, Seed: 5})
	ps := c.Peers()
	// A JoinReq source-routed through another peer is refused (RFC 6940 §6.4.2.1).
	route := []wire.Destination{wire.NodeDestination(ps[1].ID), wire.NodeDestination(ps[2].ID)}
	_, err := ps[0].Node.Call(testCtx(t), route, wire.CodeJoinReq, &wire.JoinReq{JoiningPeerID: ps[0].ID}, &wire.JoinAns{})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("routed join: got %v, want Error_Forbidden", err)
	}
	// A join for somebody else's Node-ID is refused too.
	_, err = ps[0].Node.Call(testCtx(t), []wire.Destination{wire.NodeDestination(ps[1].ID)}, wire.CodeJoinReq, &wire.JoinReq{JoiningPeerID: ps[3].ID}, &wire.JoinAns{})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("join for another id: got %v, want Error_Forbidden", err)
	}
	_, err = ps[0].Node.Call(testCtx(t), []wire.Destination{wire.NodeDestination(ps[1].ID)}, wire.CodeLeaveReq, &wire.LeaveReq{LeavingPeerID: ps[3].ID}, &wire.LeaveAns{})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("leave for another id: got %v, want Error_Forbidden", err)
	}
}

// TestLeave: neighbours drop a leaving peer at once, although its links stay up (§10.9).
func TestLeave(t *testing.T) {
	c := grow(t, sim.Params{N: 10, Seed: 11})
	ps := c.Peers()
	leaver := ps[4]
	if err := leaver.Node.Leave(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p == leaver {
			continue
		}
		if slices.Contains(p.Chord.Successors(), leaver.ID) || slices.Contains(p.Chord.Predecessors(), leaver.ID) {
			t.Fatalf("peer %s still lists the leaving peer", p.ID)
		}
	}
	if got := ps[5].Chord.Predecessors()[0]; got != ps[3].ID {
		t.Fatalf("successor of the leaver has predecessor %s, want %s", got, ps[3].ID)
	}
	if !ps[5].Chord.ResponsibleFor(wire.ResourceID(leaver.ID[:])) {
		t.Fatal("successor did not take over the leaver's range")
	}
}

type recorder struct {
	mu       sync.Mutex
	events   []chord.Neighbors
	times    []time.Time
	admitted []wire.NodeID
	ch       chan struct{}
	admit    chan wire.NodeID
}

func (r *recorder) NeighborsChanged(nb chord.Neighbors) {
	r.mu.Lock()
	r.events = append(r.events, nb)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) Admitting(ctx context.Context, jn wire.NodeID) {
	r.mu.Lock()
	r.admitted = append(r.admitted, jn)
	r.mu.Unlock()
	r.admit <- jn
}

func (r *recorder) last() (chord.Neighbors, time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1], r.times[len(r.times)-1], len(r.events)
}

// TestObserverAndHoldDown: successor changes reach the observer at once; after a
// successor failure the replica set changes only after the hold-down (§10.7.1).
func TestObserverAndHoldDown(t *testing.T) {
	// TimeScale 15: hold-down 2 s, update interval 40 s.
	c := grow(t, sim.Params{N: 8, Seed: 13, TimeScale: 15})
	ps := c.Peers()
	p := ps[2]
	rec := &recorder{ch: make(chan struct{}, 1), admit: make(chan wire.NodeID, 10)}
	p.Chord.AddObserver(rec)
	<-rec.ch
	nb, _, _ := rec.last()
	if !slices.Equal(nb.Successors, p.Chord.Successors()) || !slices.Equal(nb.Replicas, nb.Successors[:2]) {
		t.Fatalf("initial event %+v", nb)
	}
	oldReplicas := nb.Replicas
	killed := time.Now()
	c.Kill(ps[3]) // first successor dies
	holdDown := c.ChordSettings().HoldDown
	for {
		<-rec.ch
		nb, at, _ := rec.last()
		if slices.Contains(nb.Successors, ps[3].ID) {
			continue
		}
		if !slices.Equal(nb.Replicas, nb.Successors[:2]) {
			if !slices.Equal(nb.Replicas, oldReplicas) {
				t.Fatalf("replicas changed to %v before the hold-down", nb.Replicas)
			}
			continue // successors already replaced, replicas held
		}
		if d := at.Sub(killed); d < holdDown {
			t.Fatalf("replica set replaced after %v, before the %v hold-down", d, holdDown)
		}
		break
	}
	// A join reaches the observer of the admitting peer through Admitting.
	rec2 := &recorder{ch: make(chan struct{}, 1), admit: make(chan wire.NodeID, 10)}
	for _, q := range c.Peers() {
		q.Chord.AddObserver(rec2)
	}
	jn, err := c.AddPeer(testCtx(t), ps[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-rec2.admit; got != jn.ID {
		t.Fatalf("Admitting(%s), want the joining peer %s", got, jn.ID)
	}
}

// TestPartitionCheckHealsIsolatedPeer: a peer that lost every link believes it is alone;
// the partition check through its bootstrap node (§10.7.4.4) brings it back. The
// periodic checks are off: one of them (the peer's own, or another peer's through it as
// its bootstrap node) could heal the peer first and leave this check nothing to find.
func TestPartitionCheckHealsIsolatedPeer(t *testing.T) {
	c := grow(t, sim.Params{N: 12, Seed: 17, TimeScale: 60, NoPartitionCheck: true})
	ps := c.Peers()
	var p *sim.Peer
	for _, q := range ps {
		if len(q.Node.Settings().Bootstrap) > 0 {
			p = q
			break
		}
	}
	c.Isolate(p)
	ctx := testCtx(t)
	waitIsolated(t, c, p)
	if !p.Chord.ResponsibleFor(wire.ResourceIDFromName("x")) {
		t.Fatal("isolated peer should think it is alone")
	}
	if !p.Chord.CheckPartition(ctx) {
		t.Fatalf("partition not detected; %s", linkState(c, p))
	}
	if _, err := c.WaitNeighbors(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// TestLonePeerComesBack: a peer of a named overlay (one with a bootstrap peer) that lost
// every link — an outage that ended — is back in the ring within 30 s with the RFC's
// default intervals (chord-ping-interval an hour, reliability timer 3 s): it does not stay
// responsible for the whole ring until its next partition check (§10.7.1, §10.7.4.4).
func TestLonePeerComesBack(t *testing.T) {
	c := grow(t, sim.Params{N: 6, Seed: 19, TimeScale: 1})
	var p *sim.Peer
	for _, q := range c.Peers() {
		if len(q.Node.Settings().Bootstrap) > 0 {
			p = q
			break
		}
	}
	c.Isolate(p)
	t0 := time.Now()
	for !p.Chord.IsLone() {
		if time.Since(t0) > 30*time.Second {
			t.Fatal("the isolated peer did not notice it lost its neighbours")
		}
		time.Sleep(time.Millisecond) // polling: no event for it
	}
	d, err := c.WaitNeighbors(testCtx(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Chord.IsLone() || len(p.Chord.Predecessors()) == 0 {
		t.Fatal("the peer is still alone")
	}
	t.Logf("lone peer back in the ring %v after it noticed", d)
}

// waitIsolated waits until p, cut off by Isolate, has lost its links and every other
// peer has noticed (a peer still linked to p would route p's own Ping back to p). The
// tables follow the links at once; only the goroutines noticing them may be slow.
func waitIsolated(t *testing.T, c *sim.Cluster, p *sim.Peer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		linked := len(p.Chord.Successors()) > 0 || len(p.Chord.Predecessors()) > 0
		for _, q := range c.Peers() {
			if conn, ready, _ := q.Chord.PeerState(p.ID); q != p && (conn || ready || q.Node.Connected(p.ID)) {
				linked = true
			}
		}
		if !linked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still linked after 30 s: %s", linkState(c, p))
		}
		time.Sleep(time.Millisecond) // polling the tables; no event for "every side noticed"
	}
}

// linkState describes p's tables and what every other peer knows of p.
func linkState(c *sim.Cluster, p *sim.Peer) string {
	st := p.Chord.Status()
	out := fmt.Sprintf("%s: succs %v preds %v links %v partitions %d;", p.ID.String()[:8],
		short(st.Successors), short(st.Predecessors), short(p.Node.Links()), st.Counters.Partitions)
	for _, q := range c.Peers() {
		if conn, ready, departed := q.Chord.PeerState(p.ID); q != p && (conn || ready || departed || q.Node.Connected(p.ID)) {
			out += fmt.Sprintf(" %s has it conn=%v ready=%v departed=%v linked=%v;", q.ID.String()[:8], conn, ready, departed, q.Node.Connected(p.ID))
		}
	}
	return out
}

func short(ids []wire.NodeID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String()[:8])
	}
	return out
}
