// Package sim runs many CHORD-RELOAD peers (the real node and chord code) over the
// in-memory link layer in one process and measures the overlay: lookup success, hop
// counts, maintenance traffic, ring convergence, repair after mass failure and under
// continuous churn (RFC 6940 §10).
//
// Intervals are the RFC defaults divided by Params.TimeScale (default 100: a 6 s
// chord-update-interval, 36 s chord-ping-interval, 0.3 s hold-down, and a churn
// half-life of 30 min becomes 18 s); the overlay-reliability-timer is 500 ms. Lookups
// are Pings routed to random Resource-IDs; a lookup succeeds when the peer that answers
// is the one responsible in the global view. Hops are links crossed by the answer
// (equal to the request's with symmetric routing).
//
// Run it with sim.Run, or from the command line:
//
//	go run ./overlay/sim/cmd/chordsim -n 1000            # JSON report on stdout
//	CHORDPHONE_SIM_N=1000 go test ./overlay/sim -run TestRunLarge -v -timeout 30m
//	CHORDPHONE_SIM_N=1000 go test ./overlay/sim -run XXX -bench .
package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/memnet"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Peer is one simulated peer.
type Peer struct {
	ID    wire.NodeID
	Addr  string
	Node  *node.Node
	Chord *chord.Chord
	ep    *memnet.Endpoint
}

// Cluster is a set of peers on one in-memory network.
type Cluster struct {
	Net *memnet.Network
	p   Params

	mu    sync.Mutex
	rng   *rand.Rand
	peers map[wire.NodeID]*Peer
	seq   int
}

// NewCluster returns an empty cluster; p's zero fields take defaults (see Params).
func NewCluster(p Params) *Cluster {
	p = p.withDefaults()
	return &Cluster{Net: memnet.New(), p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)), peers: map[wire.NodeID]*Peer{}}
}

// Params returns the parameters with defaults filled in.
func (c *Cluster) Params() Params { return c.p }

func (c *Cluster) newID() wire.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var id wire.NodeID
	for {
		for i := range id {
			id[i] = byte(c.rng.UintN(256))
		}
		if _, dup := c.peers[id]; !dup && !id.IsZero() {
			return id
		}
	}
}

// ChordSettings are the topology settings of every peer: RFC defaults divided by the
// time scale.
func (c *Cluster) ChordSettings() chord.Settings {
	sc := c.p.TimeScale
	return chord.Settings{
		UpdateInterval:   time.Duration(float64(chord.DefaultUpdateInterval) / sc),
		PingInterval:     time.Duration(float64(chord.DefaultPingInterval) / sc),
		HoldDown:         time.Duration(float64(chord.DefaultHoldDown) / sc),
		Predecessors:     c.p.Neighbors,
		Successors:       c.p.Neighbors,
		NoPartitionCheck: c.p.NoPartitionCheck,
	}
}

// AddPeer creates a peer and joins it through the peer at bootstrap ("" = start the
// overlay as first peer). It returns when the peer has joined.
func (c *Cluster) AddPeer(ctx context.Context, bootstrap string) (*Peer, error) {
	p, err := c.NewPeer(bootstrap)
	if err != nil {
		return nil, err
	}
	if err := p.Node.Join(ctx); err != nil {
		c.Kill(p)
		return nil, err
	}
	return p, nil
}

// NewPeer creates a peer without joining it.
func (c *Cluster) NewPeer(bootstrap string) (*Peer, error) {
	id := c.newID()
	c.mu.Lock()
	c.seq++
	addr := fmt.Sprintf("10.%d.%d.%d:6084", c.seq>>16&255, c.seq>>8&255, c.seq&255)
	c.mu.Unlock()
	ep, err := c.Net.Endpoint(id, addr)
	if err != nil {
		return nil, err
	}
	ch := chord.New(c.ChordSettings())
	var boot []string
	if bootstrap != "" {
		boot = []string{bootstrap}
	}
	sec, err := c.Security(id)
	if err != nil {
		ep.Close()
		return nil, err
	}
	n, err := node.New(node.Settings{
		NodeID: id, OverlayName: simOverlay, Connector: ep, Topology: ch, Bootstrap: boot,
		Logger: c.p.Logger, ReliabilityTimer: c.p.ReliabilityTimer, Security: sec,
	})
	if err != nil {
		ep.Close()
		return nil, err
	}
	p := &Peer{ID: id, Addr: addr, Node: n, Chord: ch, ep: ep}
	c.mu.Lock()
	c.peers[id] = p
	c.mu.Unlock()
	return p, nil
}

// Isolate cuts every link of a peer (a network outage); the peer stays up.
func (c *Cluster) Isolate(p *Peer) { p.ep.CutLinks() }

// Kill ends a peer abruptly: all its links die at once, as when a process is killed.
func (c *Cluster) Kill(p *Peer) {
	c.mu.Lock()
	delete(c.peers, p.ID)
	c.mu.Unlock()
	p.ep.Close()
	p.Node.Close()
}

// Leave makes a peer leave gracefully (RFC 6940 §10.9) and closes it.
func (c *Cluster) Leave(ctx context.Context, p *Peer) error {
	err := p.Node.Leave(ctx)
	c.Kill(p)
	return err
}

// Peers returns the live peers that have joined, sorted by Node-ID.
func (c *Cluster) Peers() []*Peer {
	c.mu.Lock()
	out := make([]*Peer, 0, len(c.peers))
	for _, p := range c.peers {
		out = append(out, p)
	}
	c.mu.Unlock()
	out = slices.DeleteFunc(out, func(p *Peer) bool { return !p.Chord.IsJoined() })
	slices.SortFunc(out, func(a, b *Peer) int { return a.ID.Compare(b.ID) })
	return out
}

// Random returns a random joined peer (nil if none).
func (c *Cluster) Random() *Peer {
	ps := c.Peers()
	if len(ps) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return ps[c.rng.IntN(len(ps))]
}

// RandomKey returns a random Resource-ID.
func (c *Cluster) RandomKey() wire.ResourceID {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := make(wire.ResourceID, wire.NodeIDSize)
	for i := range r {
		r[i] = byte(c.rng.UintN(256))
	}
	return r
}

// Close closes every peer.
func (c *Cluster) Close() {
	c.mu.Lock()
	ps := make([]*Peer, 0, len(c.peers))
	for _, p := range c.peers {
		ps = append(ps, p)
	}
	c.peers = map[wire.NodeID]*Peer{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.ep.Close()
			p.Node.Close()
		}()
	}
	wg.Wait()
}

// Responsible returns the joined peer responsible for key: the first peer at or after
// it on the ring (RFC 6940 §10.1), from the global view.
func Responsible(sorted []*Peer, key wire.NodeID) *Peer {
	if len(sorted) == 0 {
		return nil
	}
	i, _ := slices.BinarySearchFunc(sorted, key, func(p *Peer, k wire.NodeID) int { return p.ID.Compare(k) })
	if i == len(sorted) {
		i = 0
	}
	return sorted[i]
}

// RingCheck compares every joined peer's neighbour table with the global ring. It
// returns the number of peers whose first successor and predecessor are wrong, and the
// number whose successor or predecessor list (first k entries) is wrong.
func RingCheck(sorted []*Peer, k int) (wrongFirst, wrongList int) {
	n := len(sorted)
	for i, p := range sorted {
		succs, preds := p.Chord.Successors(), p.Chord.Predecessors()
		if n == 1 {
			if len(succs) != 0 || len(preds) != 0 {
				wrongFirst++
			}
			continue
		}
		if len(succs) == 0 || len(preds) == 0 || succs[0] != sorted[(i+1)%n].ID || preds[0] != sorted[(i+n-1)%n].ID {
			wrongFirst++
			wrongList++
			continue
		}
		want := min(k, n-1)
		ok := len(succs) >= want && len(preds) >= want
		for j := 0; ok && j < want; j++ {
			ok = succs[j] == sorted[(i+1+j)%n].ID && preds[j] == sorted[(i+n-1-j)%n].ID
		}
		if !ok {
			wrongList++
		}
	}
	return
}

// Lookup routes a Ping from p to the Resource-ID key and reports whether the peer that
// answered is the responsible one, and the hop count.
func (c *Cluster) Lookup(ctx context.Context, p *Peer, key wire.ResourceID, sorted []*Peer) (ok bool, hops int, err error) {
	resp, err := p.Node.Ping(ctx, []wire.Destination{wire.ResourceDestination(key)})
	if err != nil {
		return false, 0, err
	}
	want := Responsible(sorted, key.NodeID())
	return want != nil && resp.From == want.ID, resp.Hops, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Diagnose describes up to max peers whose neighbour table (k predecessors and k
// successors) is wrong: its lists, and the state of the first wanted peer missing from
// each.
func Diagnose(sorted []*Peer, k, max int) []string {
	var out []string
	n := len(sorted)
	short := func(ids []wire.NodeID) string {
		s := "["
		for i, id := range ids {
			if i > 0 {
				s += " "
			}
			s += id.String()[:8]
		}
		return s + "]"
	}
	// missing returns the state of the first of the want peers that got is without.
	missing := func(p *Peer, got, want []wire.NodeID) string {
		for _, w := range want {
			if !slices.Contains(got, w) {
				cn, rd, dp := p.Chord.PeerState(w)
				return fmt.Sprintf(" (lacks %s conn=%v ready=%v departed=%v)", w.String()[:8], cn, rd, dp)
			}
		}
		return ""
	}
	for i, p := range sorted {
		if len(out) >= max || n < 2 {
			break
		}
		s, pr := p.Chord.Successors(), p.Chord.Predecessors()
		var ws, wp []wire.NodeID
		for j := 0; j < min(k, n-1); j++ {
			ws = append(ws, sorted[(i+1+j)%n].ID)
			wp = append(wp, sorted[(i+n-1-j)%n].ID)
		}
		if slices.Equal(s, ws) && slices.Equal(pr, wp) {
			continue
		}
		out = append(out, fmt.Sprintf("peer %s succs %s want %s%s; preds %s want %s%s; counters %+v",
			p.ID.String()[:8], short(s), short(ws), missing(p, s, ws),
			short(pr), short(wp), missing(p, pr, wp), p.Chord.Status().Counters))
	}
	return out
}
