package chord

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Client mode (RFC 6940 §4.2, §4.2.1, Settings.Client): the node has a Node-ID and a
// certificate but no routing or storage responsibilities. It keeps one link, to the peer
// responsible for its own Node-ID; it sends every request through that peer, and that
// peer makes the final routing step to it, so it is reachable by its Node-ID like a
// peer. It never sends Join, Update or Leave, holds no neighbour or finger table and is
// responsible for nothing. Peers need nothing special for clients (§4.2): a node that
// never becomes a routing candidate (it sends no Update, §10.7) stays out of their
// tables and their replica sets.
//
// The client notices when its peer stops being responsible for its Node-ID (§4.2.1): an
// Update from the peer whose predecessor lies past the client's Node-ID, the link to
// the peer dying, and every Settings.ClientCheckInterval a Ping routed to its own
// Node-ID answered by another peer each make it attach to the responsible peer again.

// DefaultClientCheckInterval is how often a client routes a Ping to its own Node-ID to
// see that its peer is still the responsible one (RFC 6940 §4.2.1).
const DefaultClientCheckInterval = 60 * time.Second

// Roles as Status and Role report them.
const (
	RolePeer   = "peer"
	RoleClient = "client"
)

type clientState struct {
	joined  bool                      // the first attachment succeeded (Join returned)
	peer    wire.NodeID               // the responsible peer we are attached to; zero when detached
	changed chan struct{}             // closed when peer changes
	links   map[wire.NodeID]node.Link // links this client made (bootstrap, Attach)
	kick    chan struct{}
}

func newClientState() clientState {
	return clientState{changed: make(chan struct{}), links: map[wire.NodeID]node.Link{}, kick: make(chan struct{}, 1)}
}

// IsClient implements node.ClientTopology: true in client mode (Settings.Client).
func (c *Chord) IsClient() bool { return c.s.Client }

// Role is RoleClient in client mode, else RolePeer.
func (c *Chord) Role() string {
	if c.s.Client {
		return RoleClient
	}
	return RolePeer
}

// ClientPeer returns the peer a client is attached to (zero when detached, and always
// for a peer) and a channel closed when that changes.
func (c *Chord) ClientPeer() (wire.NodeID, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cl.peer, c.cl.changed
}

// startClient registers a client's handlers and starts its watch on its peer.
func (c *Chord) startClient(n *node.Node) {
	refuse := func(what string) node.Handler {
		return node.HandlerFunc(func(context.Context, *node.Request) (wire.Body, error) {
			return nil, node.Errorf(wire.ErrForbidden, "this node is a client (RFC 6940 §4.2): it %s", what)
		})
	}
	n.Handle(wire.CodeJoinReq, refuse("admits no peers"))
	n.Handle(wire.CodeRouteQueryReq, refuse("does not route"))
	n.Handle(wire.CodeUpdateReq, node.HandlerFunc(c.serveClientUpdate))
	n.Handle(wire.CodeLeaveReq, node.HandlerFunc(c.serveClientLeave))
	n.Handle(wire.CodeProbeReq, node.HandlerFunc(c.serveProbe))
	n.Go(c.clientLoop)
	n.Go(c.notifyLoop)
}

// joinClient attaches to the peer responsible for this client's Node-ID through the
// bootstrap links (RFC 6940 §4.2.1). It retries until attached or ctx ends.
func (c *Chord) joinClient(ctx context.Context, bootstrap []node.Link) error {
	if len(bootstrap) == 0 {
		return errors.New("chord: a client cannot start an overlay: it needs a peer to attach to (RFC 6940 §4.2.1)")
	}
	// One way in is enough. The others are closed before any message crosses them: a
	// bootstrap peer enters a link into its table only with the first message over it,
	// so no peer is left routing to us over a link we close.
	keep := bootstrap[rand.IntN(len(bootstrap))]
	for _, l := range bootstrap {
		if l != keep {
			l.Close()
		}
	}
	c.mu.Lock()
	c.connected[keep.RemoteNodeID()] = true
	c.cl.links[keep.RemoteNodeID()] = keep
	c.mu.Unlock()
	rt := c.n.Settings().ReliabilityTimer
	backoff := rt / 4
	for {
		err := c.clientAttach(ctx)
		if err == nil {
			c.mu.Lock()
			c.cl.joined = true
			c.mu.Unlock()
			return nil
		}
		if _, ok := c.NextHop(c.self); !ok {
			return fmt.Errorf("chord: client: %w (last attempt: %v)", node.ErrBootstrapLost, err)
		}
		c.n.Logger().Debug("client attach failed", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("chord: client: %w (last attempt: %v)", ctx.Err(), err)
		case <-c.n.Context().Done():
			return node.ErrClosed
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(2*backoff, 4*rt)
	}
}

// clientAttach finds the peer responsible for this client's Node-ID with a Ping routed
// to it (RFC 6940 §4.2.1) and attaches to that peer unless already linked to it.
func (c *Chord) clientAttach(ctx context.Context) error {
	rt := c.n.Settings().ReliabilityTimer
	pctx, cancel := context.WithTimeout(ctx, 3*rt)
	resp, err := c.n.Ping(pctx, []wire.Destination{wire.ResourceDestination(wire.ResourceID(c.self[:]))})
	cancel()
	if err != nil {
		return fmt.Errorf("ping for own Node-ID: %w", err)
	}
	r := resp.From
	if r == c.self || r.IsZero() {
		return fmt.Errorf("ping for own Node-ID answered by %s", r)
	}
	c.mu.Lock()
	same := r == c.cl.peer
	c.mu.Unlock()
	if same && c.n.Connected(r) {
		return nil
	}
	if c.n.Connected(r) {
		// A link we made by bootstrapping enters the peer's table only with the first
		// message over it: make sure there is one, so the peer can route to us.
		pctx, cancel := context.WithTimeout(ctx, 3*rt)
		_, err := c.n.Ping(pctx, []wire.Destination{wire.NodeDestination(r)})
		cancel()
		if err != nil {
			return fmt.Errorf("ping to responsible peer %s: %w", r, err)
		}
	} else {
		actx, cancel := context.WithTimeout(ctx, 3*rt)
		l, err := c.n.Attach(actx, []wire.Destination{wire.NodeDestination(r)}, r, false)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.counters.AttachFailures++
			c.mu.Unlock()
			return fmt.Errorf("attach to responsible peer %s: %w", r, err)
		}
		c.mu.Lock()
		c.counters.AttachesSent++
		c.cl.links[r] = l
		c.mu.Unlock()
	}
	c.setClientPeer(r)
	return nil
}

// setClientPeer records r as this client's peer and closes the other links it made: a
// client keeps no table beyond that link.
func (c *Chord) setClientPeer(r wire.NodeID) {
	c.mu.Lock()
	old := c.cl.peer
	var stale []node.Link
	for id, l := range c.cl.links {
		if id != r {
			stale = append(stale, l)
			delete(c.cl.links, id)
		}
	}
	if old != r {
		c.setPeerLocked(r)
		c.counters.ClientAttaches++
	}
	lost := !c.connected[r] // the link died before we got here: LinkDown did not see r
	if lost {
		c.setPeerLocked(wire.NodeID{})
	}
	c.mu.Unlock()
	if lost {
		c.kickClient()
	}
	for _, l := range stale {
		l.Close()
	}
	if old != r {
		c.n.Logger().Info("attached as a client to the peer responsible for our Node-ID", "peer", r, "previous", old)
	}
}

// setPeerLocked makes id the client's peer (zero: detached) and wakes ClientPeer's waiters.
func (c *Chord) setPeerLocked(id wire.NodeID) {
	c.cl.peer = id
	close(c.cl.changed)
	c.cl.changed = make(chan struct{})
}

// clientNextHopLocked is a client's route for everything: its peer, or while it has
// none, any link it has (a bootstrap link).
func (c *Chord) clientNextHopLocked() (wire.NodeID, bool) {
	if p := c.cl.peer; !p.IsZero() && c.connected[p] {
		return p, true
	}
	for id := range c.cl.links {
		if c.connected[id] {
			return id, true
		}
	}
	for id := range c.connected {
		return id, true
	}
	return wire.NodeID{}, false
}

// clientLinkDown detaches a client whose link to its peer died and has it attach again.
func (c *Chord) clientLinkDown(remote wire.NodeID) {
	if !c.s.Client {
		return
	}
	c.mu.Lock()
	lost := remote == c.cl.peer
	if lost {
		c.setPeerLocked(wire.NodeID{})
	}
	c.mu.Unlock()
	if lost {
		c.n.Logger().Info("link to our peer lost; attaching again", "peer", remote)
		c.kickClient()
	}
}

func (c *Chord) kickClient() {
	select {
	case c.cl.kick <- struct{}{}:
	default:
	}
}

// clientLoop keeps a client attached to the peer responsible for its Node-ID (RFC 6940
// §4.2.1): when kicked (link lost, an Update) and every ClientCheckInterval it routes a
// Ping to its own Node-ID and attaches to whoever answers, bootstrapping again when it
// has no link left. Failures are retried with a backoff.
func (c *Chord) clientLoop(ctx context.Context) {
	rt := c.n.Settings().ReliabilityTimer
	t := time.NewTimer(jitter(c.s.ClientCheckInterval))
	defer t.Stop()
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.cl.kick:
		case <-t.C:
		}
		c.mu.Lock()
		joined := c.cl.joined
		c.mu.Unlock()
		if !joined { // Join attaches the first time
			t.Reset(jitter(c.s.ClientCheckInterval))
			continue
		}
		if err := c.clientCheck(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, rt/4), rt, c.s.ClientCheckInterval) // one Ping a try: cheap
			c.n.Logger().Debug("client: attaching to the responsible peer failed", "err", err, "retry_in", backoff)
			t.Reset(backoff + rand.N(backoff/2+1))
			continue
		}
		backoff = 0
		t.Reset(jitter(c.s.ClientCheckInterval))
	}
}

// clientCheck attaches to the responsible peer, bootstrapping first if no link is left.
func (c *Chord) clientCheck(ctx context.Context) error {
	if _, ok := c.NextHop(c.self); !ok {
		addrs := c.n.Settings().Bootstrap
		if len(addrs) == 0 {
			return errors.New("no link left and no bootstrap address")
		}
		l, err := c.bootstrapAny(ctx, addrs)
		if err != nil {
			return fmt.Errorf("bootstrapping again: %w", err)
		}
		c.mu.Lock()
		c.connected[l.RemoteNodeID()] = true
		c.cl.links[l.RemoteNodeID()] = l
		c.mu.Unlock()
	}
	return c.clientAttach(ctx)
}

// bootstrapAny connects to the bootstrap addresses at once and keeps the first link
// made: one dead bootstrap peer (maybe the peer just lost) must not hold the others up.
func (c *Chord) bootstrapAny(ctx context.Context, addrs []string) (node.Link, error) {
	bctx, cancel := context.WithTimeout(ctx, 3*c.n.Settings().ReliabilityTimer)
	defer cancel()
	type result struct {
		links []node.Link
		err   error
	}
	res := make(chan result, len(addrs))
	for _, a := range addrs {
		go func() { // owner: bootstrapAny, which collects every result
			links, err := c.n.Bootstrap(bctx, []string{a})
			res <- result{links, err}
		}()
	}
	var first node.Link
	var errs []error
	for range addrs {
		r := <-res
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		for _, l := range r.links {
			if first == nil {
				first = l
				cancel() // the others need not finish
			} else {
				l.Close()
			}
		}
	}
	if first == nil {
		return nil, errors.Join(errs...)
	}
	return first, nil
}

// serveClientUpdate processes an Update at a client (RFC 6940 §4.2.1, §6.4.2.3): when its
// peer's first predecessor lies at or past the client's Node-ID, the peer is no longer
// responsible for it, and the client attaches to the responsible peer.
func (c *Chord) serveClientUpdate(ctx context.Context, req *node.Request) (wire.Body, error) {
	var u wire.ChordUpdate
	if err := u.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.counters.UpdatesReceived++
	peer := c.cl.peer
	c.mu.Unlock()
	if req.Origin == peer && req.SignedBy(peer) && u.Type != wire.ChordPeerReady && len(u.Predecessors) > 0 &&
		!Between(c.self, u.Predecessors[0], peer) {
		c.n.Logger().Info("our peer is no longer responsible for our Node-ID; attaching again", "peer", peer, "its_predecessor", u.Predecessors[0])
		c.kickClient()
	}
	return &wire.UpdateAns{}, nil
}

// serveClientLeave acknowledges a Leave (RFC 6940 §6.4.2.2); when it comes from the
// client's peer, the client attaches to the peer that takes over.
func (c *Chord) serveClientLeave(ctx context.Context, req *node.Request) (wire.Body, error) {
	l, err := leaveRequest(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	peer := c.cl.peer
	c.mu.Unlock()
	if l.LeavingPeerID == peer {
		c.kickClient()
	}
	return &wire.LeaveAns{}, nil
}
