package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/memnet"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/sim"
	"github.com/chordphone/chordphone/overlay/wire"
)

// tpeer is one simulated phone: a storing peer with its own user.
type tpeer struct {
	u   *user
	id  wire.NodeID
	n   *node.Node
	ch  *chord.Chord
	ep  *memnet.Endpoint
	svc *Service
	eng *Engine
}

// cluster runs real node, chord and storage code over memnet.
type cluster struct {
	t      testing.TB
	nw     *memnet.Network
	cs     chord.Settings
	ss     ServiceSettings
	rt     time.Duration
	maxMsg int
	log    *slog.Logger
	// secure makes every node sign and verify messages with its certificate
	// (node.CertSecurity), as real peers do; otherwise node.NoSecurity.
	secure bool

	mu    sync.Mutex
	peers map[wire.NodeID]*tpeer
	addrs map[wire.NodeID]string
	seq   int
	rng   *rand.Rand
}

// newCluster uses the RFC intervals divided by scale.
func newCluster(t testing.TB, scale float64) *cluster {
	sc := func(d time.Duration) time.Duration { return time.Duration(float64(d) / scale) }
	c := &cluster{
		t:  t,
		nw: memnet.New(),
		cs: chord.Settings{UpdateInterval: sc(chord.DefaultUpdateInterval), PingInterval: sc(chord.DefaultPingInterval), HoldDown: sc(chord.DefaultHoldDown)},
		ss: ServiceSettings{
			RepairInterval: sc(DefaultRepairInterval), SweepInterval: sc(DefaultSweepInterval),
			StaleHold: sc(DefaultStaleHold), Settle: 50 * time.Millisecond,
			RegistrationLifetime: time.Hour, AuditInterval: 10 * time.Second,
		},
		rt:     500 * time.Millisecond,
		maxMsg: 64 << 10,
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		peers:  map[wire.NodeID]*tpeer{},
		addrs:  map[wire.NodeID]string{},
		rng:    rand.New(rand.NewPCG(7, 11)),
	}
	t.Cleanup(c.close)
	return c
}

// freshUser makes a new identity (not cached: every peer its own user).
func freshUser(t testing.TB, name string) *user {
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, name, testOverlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &user{cred: &Credentials{Key: id.Key, Chain: id.Chain}, name: kinds.SignerFromCert(id.Cert()).User, node: wire.NodeID(id.NodeID())}
}

// add creates a peer for a new user and joins it through bootstrap ("" =
// first peer).
func (c *cluster) add(ctx context.Context, bootstrap string) (*tpeer, error) {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	u := freshUser(c.t, fmt.Sprintf("u%d", seq))
	addr := fmt.Sprintf("10.%d.%d.%d:6084", seq>>16&255, seq>>8&255, seq&255)
	ep, err := c.nw.Endpoint(u.node, addr)
	if err != nil {
		return nil, err
	}
	ch := chord.New(c.cs)
	var inner node.Security
	if c.secure {
		inner = &node.CertSecurity{NodeID: u.node, Key: u.cred.Key, Chain: u.cred.Chain}
	}
	sec := NewCertifying(inner)
	eng := NewEngine(kinds.Default(), Options{})
	var boot []string
	if bootstrap != "" {
		boot = []string{bootstrap}
	}
	n, err := node.New(node.Settings{
		NodeID: u.node, OverlayName: testOverlay, Connector: ep, Topology: ch, Bootstrap: boot,
		Logger: c.log, ReliabilityTimer: c.rt, Security: sec, KindModels: eng.Kinds(), MaxMessageSize: c.maxMsg,
	})
	if err != nil {
		ep.Close()
		return nil, err
	}
	ss := c.ss
	ss.Engine, ss.Security, ss.Credentials, ss.Logger = eng, sec, u.cred, c.log
	svc, err := NewService(n, ch, ss)
	if err != nil {
		ep.Close()
		n.Close()
		return nil, err
	}
	p := &tpeer{u: u, id: u.node, n: n, ch: ch, ep: ep, svc: svc, eng: eng}
	c.mu.Lock()
	c.peers[p.id] = p
	c.addrs[p.id] = addr
	c.mu.Unlock()
	if err := n.Join(ctx); err != nil {
		c.kill(p)
		return nil, err
	}
	return p, nil
}

func (c *cluster) addr(p *tpeer) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[p.id]
}

// grow adds peers until n have joined, 16 at a time, each through a random
// joined peer.
func (c *cluster) grow(ctx context.Context, n int) {
	c.t.Helper()
	if len(c.live()) == 0 {
		if _, err := c.add(ctx, ""); err != nil {
			c.t.Fatal(err)
		}
	}
	need := n - len(c.live())
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var lastErr atomic.Value
	for i := 0; i < need; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A join that times out on a loaded machine is tried again, through another
			// peer, as a phone does, up to three times.
			var err error
			for range 3 {
				jctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err = c.add(jctx, c.addr(c.random()))
				cancel()
				if err == nil {
					return
				}
			}
			failed.Add(1)
			lastErr.Store(err)
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		c.t.Fatalf("%d joins failed three times (last: %v)", f, lastErr.Load())
	}
}

// live returns the joined peers sorted by Node-ID.
func (c *cluster) live() []*tpeer {
	c.mu.Lock()
	out := make([]*tpeer, 0, len(c.peers))
	for _, p := range c.peers {
		out = append(out, p)
	}
	c.mu.Unlock()
	out = slices.DeleteFunc(out, func(p *tpeer) bool { return !p.ch.IsJoined() })
	slices.SortFunc(out, func(a, b *tpeer) int { return a.id.Compare(b.id) })
	return out
}

func (c *cluster) random() *tpeer {
	ps := c.live()
	c.mu.Lock()
	defer c.mu.Unlock()
	return ps[c.rng.IntN(len(ps))]
}

func (c *cluster) kill(p *tpeer) {
	c.mu.Lock()
	delete(c.peers, p.id)
	c.mu.Unlock()
	p.ep.Close()
	p.n.Close()
}

func (c *cluster) close() {
	c.mu.Lock()
	ps := make([]*tpeer, 0, len(c.peers))
	for _, p := range c.peers {
		ps = append(ps, p)
	}
	c.peers = map[wire.NodeID]*tpeer{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.ep.Close()
			p.n.Close()
		}()
	}
	wg.Wait()
}

func simPeers(ps []*tpeer) []*sim.Peer {
	out := make([]*sim.Peer, len(ps))
	for i, p := range ps {
		out[i] = &sim.Peer{ID: p.id, Node: p.n, Chord: p.ch}
	}
	return out
}

// waitFor polls cond (a global view: no event exists for it) until it holds
// or timeout passes; it returns how long it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	t0 := time.Now()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return time.Since(t0)
		}
		last = why
		if time.Since(t0) > timeout {
			t.Fatalf("%s: not reached after %v: %s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLists waits until every peer's whole successor and predecessor
// lists are right (the replica sets depend on them).
func (c *cluster) waitLists(timeout time.Duration) time.Duration {
	return waitFor(c.t, timeout, "neighbour lists correct", func() (bool, string) {
		ps := c.live()
		_, wrong := sim.RingCheck(simPeers(ps), 3)
		return wrong == 0, fmt.Sprintf("%d of %d peers with a wrong successor list", wrong, len(ps))
	})
}

func (c *cluster) waitRing(timeout time.Duration) time.Duration {
	return waitFor(c.t, timeout, "ring correct", func() (bool, string) {
		ps := c.live()
		wrong, _ := sim.RingCheck(simPeers(ps), 3)
		return wrong == 0, fmt.Sprintf("%d of %d peers with a wrong neighbour", wrong, len(ps))
	})
}

// holders returns, from the global view, the responsible peer of rid and
// its next two successors.
func holders(sorted []*tpeer, rid wire.ResourceID) []*tpeer {
	if len(sorted) == 0 {
		return nil
	}
	// RFC 6940 §10.1: the first peer at or after the Resource-ID.
	i, _ := slices.BinarySearchFunc(sorted, rid.NodeID(), func(p *tpeer, k wire.NodeID) int { return p.id.Compare(k) })
	var out []*tpeer
	for k := 0; k < min(3, len(sorted)); k++ {
		out = append(out, sorted[(i+k)%len(sorted)])
	}
	return out
}

// regState is what a peer registered: the value it last stored.
type regState struct {
	aor  string
	rid  wire.ResourceID
	node wire.NodeID
	time uint64
	p    *tpeer // the phone, which may store it again (its audit) with a newer time
}

// want is the storage time the copies should have: the phone's latest store.
func (r *regState) want() uint64 {
	if r.p != nil {
		if cur := r.p.registered(); cur != nil && cur.aor == r.aor {
			return cur.time
		}
	}
	return r.time
}

func (p *tpeer) registered() *regState {
	p.svc.regMu.Lock()
	defer p.svc.regMu.Unlock()
	for _, r := range p.svc.regs {
		return &regState{aor: r.aor, rid: r.rid, node: p.id, time: r.stored.StorageTime, p: p}
	}
	return nil
}

// replicated checks that every registration in regs is held, with exactly
// the registered storage time and nothing else under its key, by the
// responsible peer and its two successors (global view).
func replicated(sorted []*tpeer, regs []*regState) (bool, string) {
	return heldBy(sorted, regs, 3)
}

// heldBy checks the first k holders (k = 1: the responsible peer, so a
// fetch finds it).
func heldBy(sorted []*tpeer, regs []*regState, k int) (bool, string) {
	for _, r := range regs {
		hs := holders(sorted, r.rid)
		for hi, h := range hs[:min(k, len(hs))] {
			ans, _, err := h.eng.Fetch(&wire.FetchReq{Resource: r.rid, Specifiers: []wire.StoredDataSpecifier{{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary, Keys: [][]byte{r.node[:]}}}})
			if err != nil {
				return false, err.Error()
			}
			v := ans.KindResponses[0].Values
			if want := r.want(); len(v) != 1 || !v[0].Value.Dictionary.Value.Exists || v[0].StorageTime != want {
				have := "nothing"
				if len(v) == 1 && v[0].Value.Dictionary.Value.Exists {
					have = fmt.Sprintf("storage time %d (want %d)", v[0].StorageTime, want)
				}
				role, resp := roleOf(r.rid.NodeID(), h.id, h.ch.Predecessors())
				return false, fmt.Sprintf("%s: holder %d (%s) has %s; it sees itself as role %d (responsible %s); responsible peer pushed to it: %v",
					r.aor, hi, h.id, have, role, resp, hs[0].eng.Pushed(r.rid, h.id))
			}
		}
	}
	return true, ""
}
