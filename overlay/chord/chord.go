// Package chord is the CHORD-RELOAD topology plug-in (RFC 6940 §10): responsibility,
// routing, join, updates, stabilisation, leave, RouteQuery and Probe. It plugs into a
// node.Node as its node.Topology.
//
// Tables: every connected peer known to be a joined peer (it sent an Update, was named
// in one, answered as responsible, or is a bootstrap node) is a routing candidate; the
// neighbour table (predecessors and successors) and the finger table are derived from
// those candidates, so a dead link changes them at once (§10.7.1, §10.7.2).
package chord

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Defaults (RFC 6940 §10.7, §10.7.1, §10.7.4, §11.1).
const (
	DefaultUpdateInterval = config.DefaultChordUpdateInterval // chord-update-interval, 600 s
	DefaultPingInterval   = config.DefaultChordPingInterval   // chord-ping-interval, 3600 s
	DefaultHoldDown       = 30 * time.Second                  // successor replacement hold-down
	DefaultNeighbors      = 5                                 // at least 3 each side, O(log N) recommended (§10.7)
	DefaultFingers        = 16                                // §10.7.4.3
	DefaultReplicas       = 2                                 // §10.4: next two successors
)

// Settings tune the topology. Zero fields take the defaults.
type Settings struct {
	// UpdateInterval is chord-update-interval (§10.7.4.1): 600 s.
	UpdateInterval time.Duration
	// PingInterval is chord-ping-interval (§10.7.4.2): 3600 s.
	PingInterval time.Duration
	// Periodic turns reactive recovery off (chord-reactive false, §10.7.1): updates are
	// then sent only every UpdateInterval.
	Periodic bool
	// HoldDown is the successor replacement hold-down (§10.7.1): 30 s.
	HoldDown time.Duration
	// Predecessors and Successors are the neighbour table sizes: 5 each (RFC 6940 §10.7:
	// at least 3, O(log N) recommended; 5 keeps the ring whole when 20% of the peers
	// fail at once, where 3 leaves about 1 peer in 125 without any live successor).
	Predecessors, Successors int
	// Fingers is the finger table size (§10.7.4.3): 16, at most 128.
	Fingers int
	// Replicas is the size of the replica set reported to observers (§10.4): 2.
	Replicas int
	// NoPartitionCheck turns off the partition checks of §10.7.4.4 made by the peer
	// itself (a Ping for our own Node-ID through a bootstrap node every PingInterval,
	// and the rejoin loop of a lone peer, lone.go); CheckPartition and MergeWith still
	// check when called.
	NoPartitionCheck bool
	// ResourceCount answers Probe num_resources (§6.4.2.5); nil answers 0.
	ResourceCount func() uint32
	// Client makes this node a RELOAD client (RFC 6940 §4.2, client.go): attached to the
	// peer responsible for its Node-ID, responsible for nothing, routing for nobody.
	Client bool
	// ClientCheckInterval is how often a client checks with a Ping to its own Node-ID
	// that its peer is still responsible for it (§4.2.1): DefaultClientCheckInterval.
	ClientCheckInterval time.Duration
}

// SettingsFromConfig takes the intervals of an overlay configuration (RFC 6940 §11.1).
func SettingsFromConfig(c *config.Config) Settings {
	return Settings{UpdateInterval: c.ChordUpdateInterval, PingInterval: c.ChordPingInterval, Periodic: !c.ChordReactive}
}

func (s *Settings) withDefaults() Settings {
	c := *s
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.UpdateInterval, DefaultUpdateInterval)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.HoldDown, DefaultHoldDown)
	def(&c.ClientCheckInterval, DefaultClientCheckInterval)
	if c.Predecessors <= 0 {
		c.Predecessors = DefaultNeighbors
	}
	if c.Successors <= 0 {
		c.Successors = DefaultNeighbors
	}
	if c.Fingers <= 0 {
		c.Fingers = DefaultFingers
	}
	if c.Fingers > 128 {
		c.Fingers = 128
	}
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	return c
}

// Neighbors is the neighbour table as told to observers.
type Neighbors struct {
	// Predecessors and Successors, closest first.
	Predecessors, Successors []wire.NodeID
	// Replicas is the replica set (§10.4): the first Settings.Replicas successors, changed
	// only after the successor replacement hold-down when a successor failed (§10.7.1).
	Replicas []wire.NodeID
}

// Observer learns about neighbour table changes, e.g. storage for replication and
// migration (RFC 6940 §10.4, §10.7.3). Calls come one at a time from a chord goroutine
// with the latest table (intermediate states may be skipped).
type Observer interface {
	NeighborsChanged(Neighbors)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Neighbors)

// NeighborsChanged calls f.
func (f ObserverFunc) NeighborsChanged(nb Neighbors) { f(nb) }

// Admitter is an optional Observer extension: Admitting is called on the admitting peer
// after it answered a Join and before it sends the Updates that make the joining peer
// its predecessor (RFC 6940 §10.5 step 6: Store the joining peer's data).
type Admitter interface {
	Admitting(ctx context.Context, joining wire.NodeID)
}

type ringEntry struct {
	id wire.NodeID
	d  u128 // clockwise distance from self
}

// Chord is the CHORD-RELOAD topology of one node.
type Chord struct {
	s     Settings
	n     *node.Node
	self  wire.NodeID
	start time.Time

	mu        sync.Mutex
	connected map[wire.NodeID]bool
	ready     map[wire.NodeID]bool
	departed  map[wire.NodeID]time.Time // failed or left: not re-adopted for a while
	// left holds peers that sent us a Leave: an Update they sent before it (handled
	// after it) must not make them ready again; only a peer_ready (they joined again) does.
	left        map[wire.NodeID]time.Time
	ring        []ringEntry // routing candidates by clockwise distance
	preds       []wire.NodeID
	succs       []wire.NodeID
	fingers     []wire.NodeID // fingers[i-1] is finger i; zero = invalid
	attaching   map[wire.NodeID]bool
	searching   map[int]bool
	lastCorrect map[wire.NodeID]time.Time

	joined   bool
	joinedCh chan struct{}
	leaving  bool
	joinWait chan *wire.ChordUpdate
	joinAP   wire.NodeID

	replicas  []wire.NodeID
	holdUntil time.Time

	kickCh       chan struct{}
	kickNeigh    bool
	kickAll      bool
	observers    []Observer
	obsCh        chan struct{}
	lastNotified *Neighbors

	counters  Counters
	held      map[wire.NodeID]bool // departed peers to try when their hold ends (merge.go)
	rejoining bool                 // the rejoin loop of a lone peer runs (lone.go)
	// confirming holds connected peers being asked whether they joined (confirmPeer).
	confirming map[wire.NodeID]bool
	cl         clientState // client mode (client.go)
}

// Counters count chord maintenance activity of one node.
type Counters struct {
	UpdatesSent, UpdatesReceived, AttachesSent, AttachFailures, FingerSearches, Joins, Leaves, Partitions int
	// ClientAttaches counts a client's attachments to a new responsible peer (§4.2.1).
	ClientAttaches int
}

// New returns the topology; pass it as node.Settings.Topology.
func New(s Settings) *Chord {
	return &Chord{
		s:           s.withDefaults(),
		connected:   map[wire.NodeID]bool{},
		ready:       map[wire.NodeID]bool{},
		departed:    map[wire.NodeID]time.Time{},
		left:        map[wire.NodeID]time.Time{},
		attaching:   map[wire.NodeID]bool{},
		searching:   map[int]bool{},
		lastCorrect: map[wire.NodeID]time.Time{},
		joinedCh:    make(chan struct{}),
		kickCh:      make(chan struct{}, 1),
		obsCh:       make(chan struct{}, 1),
		cl:          newClientState(),
	}
}

// AddObserver registers o for neighbour table changes.
func (c *Chord) AddObserver(o Observer) {
	c.mu.Lock()
	c.observers = append(c.observers, o)
	c.mu.Unlock()
	c.signalObservers()
}

// Start implements node.Topology: it registers the CHORD-RELOAD method handlers.
func (c *Chord) Start(n *node.Node) error {
	c.n = n
	c.self = n.ID()
	c.start = time.Now()
	c.fingers = make([]wire.NodeID, c.s.Fingers)
	if c.s.Client {
		c.startClient(n)
		return nil
	}
	n.Handle(wire.CodeJoinReq, node.HandlerFunc(c.serveJoin))
	n.Handle(wire.CodeUpdateReq, node.HandlerFunc(c.serveUpdate))
	n.Handle(wire.CodeLeaveReq, node.HandlerFunc(c.serveLeave))
	n.Handle(wire.CodeRouteQueryReq, node.HandlerFunc(c.serveRouteQuery))
	n.Handle(wire.CodeProbeReq, node.HandlerFunc(c.serveProbe))
	n.Go(c.maintain)
	n.Go(c.notifyLoop)
	return nil
}

// Close implements node.Topology (goroutines end with the node's context).
func (c *Chord) Close() error { return nil }

// Joined is closed when this peer has joined the overlay.
func (c *Chord) Joined() <-chan struct{} { return c.joinedCh }

// IsJoined reports whether this peer has joined.
func (c *Chord) IsJoined() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined
}

// Responsible implements node.Topology: id is in (predecessor, self] (RFC 6940 §10.1).
func (c *Chord) Responsible(id wire.NodeID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.responsibleLocked(id)
}

func (c *Chord) responsibleLocked(id wire.NodeID) bool {
	if !c.joined {
		return false
	}
	if len(c.preds) == 0 {
		return true // alone in the overlay
	}
	return Between(id, c.preds[0], c.self)
}

// ResponsibleFor reports whether this peer is responsible for a Resource-ID.
func (c *Chord) ResponsibleFor(r wire.ResourceID) bool { return c.Responsible(r.NodeID()) }

// NextHop implements node.Topology (RFC 6940 §10.3): the candidate with the largest
// Node-ID in (self, target], else the smallest Node-ID greater than target.
func (c *Chord) NextHop(target wire.NodeID) (wire.NodeID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.Client {
		return c.clientNextHopLocked()
	}
	if len(c.ring) == 0 {
		return wire.NodeID{}, false
	}
	dt := dist(c.self, target)
	i := sort.Search(len(c.ring), func(i int) bool { return dt.less(c.ring[i].d) })
	if i > 0 {
		return c.ring[i-1].id, true
	}
	return c.ring[0].id, true
}

// Predecessors returns the predecessor list, closest first.
func (c *Chord) Predecessors() []wire.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.preds)
}

// Successors returns the successor list, closest first.
func (c *Chord) Successors() []wire.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.succs)
}

// Replicas returns the current replica set (§10.4, §10.7.1).
func (c *Chord) Replicas() []wire.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.replicas)
}

// Status is a snapshot of the routing state.
type Status struct {
	NodeID       wire.NodeID
	Joined       bool
	Predecessors []wire.NodeID
	Successors   []wire.NodeID
	// Fingers are the distinct valid finger table entries in ascending order.
	Fingers []wire.NodeID
	// FingerTable has one entry per finger (index 0 = finger 1, half way round); zero
	// entries are invalid (no peer known in that range).
	FingerTable []wire.NodeID
	Connections int
	Uptime      time.Duration
	Counters    Counters
	// Role is RolePeer or RoleClient (§4.2); ClientPeer is a client's peer, the one
	// responsible for its Node-ID (zero when detached, and for a peer).
	Role       string
	ClientPeer wire.NodeID
}

// MarshalJSON renders Node-IDs as hex strings.
func (s Status) MarshalJSON() ([]byte, error) {
	hex := func(ids []wire.NodeID) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, id.String())
		}
		return out
	}
	return json.Marshal(struct {
		NodeID       string   `json:"node_id"`
		Joined       bool     `json:"joined"`
		Predecessors []string `json:"predecessors"`
		Successors   []string `json:"successors"`
		Fingers      []string `json:"fingers"`
		Connections  int      `json:"connections"`
		UptimeS      float64  `json:"uptime_s"`
		Role         string   `json:"role"`
		ClientPeer   string   `json:"client_peer,omitempty"`
	}{s.NodeID.String(), s.Joined, hex(s.Predecessors), hex(s.Successors), hex(s.Fingers), s.Connections, s.Uptime.Seconds(),
		s.Role, clientPeerString(s.ClientPeer)})
}

func clientPeerString(id wire.NodeID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

// Status returns the current routing state.
func (c *Chord) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{
		NodeID: c.self, Joined: c.joined,
		Predecessors: slices.Clone(c.preds), Successors: slices.Clone(c.succs),
		Fingers: c.fingerListLocked(), FingerTable: slices.Clone(c.fingers),
		Connections: len(c.connected), Uptime: time.Since(c.start), Counters: c.counters,
		Role: c.Role(), ClientPeer: c.cl.peer,
	}
}

func (c *Chord) fingerListLocked() []wire.NodeID {
	var out []wire.NodeID
	for _, f := range c.fingers {
		if !f.IsZero() && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b wire.NodeID) int { return a.Compare(b) })
	return out
}

// change describes what a recompute changed.
type change struct {
	neighbors  bool // preds or succs
	pred0      bool // responsible range
	succ0      bool
	lostFinger bool
	lost       []int // finger indices whose entry was lost
}

// recomputeLocked derives ring, neighbour and finger tables from the candidates.
func (c *Chord) recomputeLocked() change {
	// Departed peers are neither connected (failure) nor ready (Leave): the departed
	// record only stops them being adopted again from stale Updates.
	c.ring = c.ring[:0]
	for id := range c.connected {
		if c.ready[id] && id != c.self {
			c.ring = append(c.ring, ringEntry{id, dist(c.self, id)})
		}
	}
	sort.Slice(c.ring, func(i, j int) bool { return c.ring[i].d.less(c.ring[j].d) })
	var ch change
	oldP, oldS := c.preds, c.succs
	ns := min(c.s.Successors, len(c.ring))
	succs := make([]wire.NodeID, 0, ns)
	for i := 0; i < ns; i++ {
		succs = append(succs, c.ring[i].id)
	}
	np := min(c.s.Predecessors, len(c.ring))
	preds := make([]wire.NodeID, 0, np)
	for i := 0; i < np; i++ {
		preds = append(preds, c.ring[len(c.ring)-1-i].id)
	}
	ch.neighbors = !slices.Equal(oldP, preds) || !slices.Equal(oldS, succs)
	ch.pred0 = first(oldP) != first(preds)
	ch.succ0 = first(oldS) != first(succs)
	c.preds, c.succs = preds, succs
	// Finger table (§10.7.4.2): keep a valid entry; otherwise any candidate in range.
	for i := 1; i <= len(c.fingers); i++ {
		f := c.fingers[i-1]
		if !f.IsZero() {
			if c.inRingLocked(f) && fingerIndex(dist(c.self, f)) == i {
				continue
			}
			ch.lostFinger = true
			ch.lost = append(ch.lost, i)
			c.fingers[i-1] = wire.NodeID{}
		}
		lo, _ := fingerRange(i)
		j := sort.Search(len(c.ring), func(k int) bool { return !c.ring[k].d.less(lo) })
		if j < len(c.ring) && fingerIndex(c.ring[j].d) == i {
			c.fingers[i-1] = c.ring[j].id
		}
	}
	return ch
}

func first(ids []wire.NodeID) wire.NodeID {
	if len(ids) == 0 {
		return wire.NodeID{}
	}
	return ids[0]
}

func (c *Chord) inRingLocked(id wire.NodeID) bool {
	d := dist(c.self, id)
	i := sort.Search(len(c.ring), func(k int) bool { return !c.ring[k].d.less(d) })
	return i < len(c.ring) && c.ring[i].id == id
}

// LinkUp implements node.Topology.
func (c *Chord) LinkUp(remote wire.NodeID, sendUpdate bool) {
	c.mu.Lock()
	c.connected[remote] = true
	var ch change
	if c.ready[remote] {
		ch = c.recomputeLocked()
	}
	c.mu.Unlock()
	c.react(ch, false)
	if sendUpdate && !c.s.Client { // a client sends no Updates (§4.2)
		// RFC 6940 §6.4.2.3: Attach with send_update: Update back after the connection.
		c.n.Go(func(ctx context.Context) { c.sendUpdate(ctx, remote, wire.ChordFull) })
	}
}

// LinkDown implements node.Topology: the peer is removed from every table and replaced
// from the routing table (RFC 6940 §10.7.1, §10.7.2).
func (c *Chord) LinkDown(remote wire.NodeID) {
	c.mu.Lock()
	if c.n.Connected(remote) {
		// The node reports a link's end after it has let go of its lock, so a new link to
		// remote (both sides attaching at once, as when rings merge) can have come up and
		// been reported in between: this report is stale, and heeding it would leave
		// remote out of the tables while a link to it stays up. The check is made under
		// c.mu: made before it, a LinkUp of the new link could slip in between the check
		// and the delete below, and remote stayed linked but out of the ring for good
		// (no LinkUp comes for a second link).
		c.mu.Unlock()
		return
	}
	delete(c.connected, remote)
	wasReady := c.ready[remote]
	delete(c.ready, remote)
	var ch change
	if wasReady {
		c.departed[remote] = time.Now().Add(c.departTTL())
		ch = c.recomputeLocked()
	}
	c.mu.Unlock()
	c.react(ch, true)
	c.clientLinkDown(remote)
	c.startRejoin() // §10.7.1: the last neighbour gone
}

func (c *Chord) departTTL() time.Duration {
	return min(c.s.UpdateInterval, 4*c.n.Settings().ReliabilityTimer*time.Duration(c.n.Settings().Transmissions))
}

// react performs the reactive recovery steps after a table change.
func (c *Chord) react(ch change, failure bool) {
	if ch.neighbors {
		c.updateReplicas(failure)
		c.signalObservers()
		if !c.s.Periodic {
			// §10.7.1/§10.7.3: Update to the neighbours; to all connections when the
			// responsible range changed (§6.4.1, §10.7.3).
			c.kick(ch.pred0)
		}
		if failure {
			// Ask the new closest neighbours for their tables so that a gap left by
			// several failures closes at once (§6.4.2.4 send_update, §10.7.4.1).
			c.mu.Lock()
			s0, p0, joined := first(c.succs), first(c.preds), c.joined
			c.mu.Unlock()
			if joined {
				if ch.succ0 && !s0.IsZero() {
					c.n.Go(func(ctx context.Context) { c.requestFull(ctx, s0) })
				}
				if ch.pred0 && !p0.IsZero() && p0 != s0 {
					c.n.Go(func(ctx context.Context) { c.requestFull(ctx, p0) })
				}
			}
		}
	}
	if ch.lostFinger && failure && !c.s.Periodic {
		// §10.7.2: search a replacement for each lost finger that stayed invalid.
		c.n.Go(func(ctx context.Context) { c.searchLost(ctx, ch.lost) })
	}
}

// kick asks the maintenance goroutine to send Updates.
func (c *Chord) kick(all bool) {
	c.mu.Lock()
	c.kickNeigh = true
	c.kickAll = c.kickAll || all
	c.mu.Unlock()
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

// updateReplicas applies the successor replacement hold-down (RFC 6940 §10.7.1).
func (c *Chord) updateReplicas(failure bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := slices.Clone(c.succs[:min(c.s.Replicas, len(c.succs))])
	if slices.Equal(want, c.replicas) {
		return
	}
	now := time.Now()
	if failure && len(c.replicas) > 0 {
		if c.holdUntil.IsZero() || now.After(c.holdUntil) {
			c.holdUntil = now.Add(c.s.HoldDown)
		}
		return
	}
	if now.Before(c.holdUntil) {
		return
	}
	c.replicas = want
}

func (c *Chord) signalObservers() {
	select {
	case c.obsCh <- struct{}{}:
	default:
	}
}

func (c *Chord) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.obsCh:
		}
		c.mu.Lock()
		nb := Neighbors{Predecessors: slices.Clone(c.preds), Successors: slices.Clone(c.succs), Replicas: slices.Clone(c.replicas)}
		obs := slices.Clone(c.observers)
		same := c.lastNotified != nil && slices.Equal(c.lastNotified.Predecessors, nb.Predecessors) &&
			slices.Equal(c.lastNotified.Successors, nb.Successors) && slices.Equal(c.lastNotified.Replicas, nb.Replicas)
		if !same && len(obs) > 0 {
			c.lastNotified = &nb
		}
		c.mu.Unlock()
		if same {
			continue
		}
		for _, o := range obs {
			o.NeighborsChanged(nb)
		}
	}
}

// markReady records that id is a joined peer (it may be routed through) while a link
// to it is up. Callers learn that id is ready over a link that may die before this
// runs: a mark set after the link's LinkDown would outlive it, and the next link from id
// (a bootstrap link of its partition check, §10.7.4.4) would put id straight back into
// the ring although id itself, cut off, now counts no one as its neighbour.
func (c *Chord) markReady(id wire.NodeID) {
	if id == c.self || id.IsZero() {
		return
	}
	c.mu.Lock()
	var ch change
	if !c.ready[id] && c.linkedLocked(id) {
		c.ready[id] = true
		delete(c.departed, id)
		if c.connected[id] {
			ch = c.recomputeLocked()
		}
	}
	c.mu.Unlock()
	c.react(ch, false)
}

// linkedLocked reports whether a link to id is up. Checked under c.mu, it is ordered
// with LinkDown (which takes c.mu after the node dropped the link): either the link is
// seen gone, or LinkDown comes after and clears what was marked.
func (c *Chord) linkedLocked(id wire.NodeID) bool {
	return c.connected[id] || c.n.Connected(id)
}

func jitter(d time.Duration) time.Duration {
	// §10.7.4.1: randomly offset periodic Updates (±10%).
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// PeerState reports what this peer knows of id: whether a link is up, whether id is
// known to be a joined peer, and whether it is held back as departed.
func (c *Chord) PeerState(id wire.NodeID) (connected, ready, departed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, dep := c.departed[id]
	return c.connected[id], c.ready[id], dep && time.Now().Before(t)
}
