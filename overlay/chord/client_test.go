package chord_test

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/sim"
	"github.com/chordphone/chordphone/overlay/wire"
)

// pointBetween returns the Node-ID num/den of the way clockwise from a to b.
func pointBetween(a, b wire.NodeID, num, den int64) wire.NodeID {
	mod := new(big.Int).Lsh(big.NewInt(1), 128)
	x, y := new(big.Int).SetBytes(a[:]), new(big.Int).SetBytes(b[:])
	d := new(big.Int).Mod(new(big.Int).Sub(y, x), mod)
	d.Mul(d, big.NewInt(num)).Quo(d, big.NewInt(den))
	p := new(big.Int).Mod(new(big.Int).Add(x, d), mod)
	var id wire.NodeID
	p.FillBytes(id[:])
	return id
}

// startNode starts a node with a chosen Node-ID on the cluster's network and joins it
// through the peer at bootstrap.
func startNode(t *testing.T, c *sim.Cluster, id wire.NodeID, addr string, s chord.Settings, bootstrap string) (*node.Node, *chord.Chord) {
	t.Helper()
	ep, err := c.Net.Endpoint(id, addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := chord.New(s)
	sec, err := c.Security(id)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Settings{NodeID: id, OverlayName: "sim.chordphone", Connector: ep, Topology: ch, Security: sec,
		Bootstrap: []string{bootstrap}, Logger: c.Params().Logger, ReliabilityTimer: c.Params().ReliabilityTimer})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ep.Close()
		n.Close()
	})
	if err := n.Join(testCtx(t)); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return n, ch
}

// waitClientPeer waits until the client is attached to want.
func waitClientPeer(t *testing.T, ch *chord.Chord, want wire.NodeID, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p, changed := ch.ClientPeer()
		if p == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("client attached to %s after %v, want %s", p, timeout, want)
		}
	}
}

// waitOnlyLink waits until, of the given nodes, only the client's peer still has a link to
// the client: a client keeps no link but the one to its peer. Link removal is
// asynchronous and has no event, so this polls.
func waitOnlyLink(t *testing.T, client, peer wire.NodeID, nodes ...*node.Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for n.ID() != peer && n.Connected(client) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still has a link to the client", n.ID())
			}
			time.Sleep(10 * time.Millisecond) // polling a link table, no event exists
		}
	}
}

// checkReachable pings the client by its Node-ID from every peer.
func checkReachable(t *testing.T, ctx context.Context, client wire.NodeID, from ...*node.Node) {
	t.Helper()
	for _, n := range from {
		r, err := n.Ping(ctx, []wire.Destination{wire.NodeDestination(client)})
		if err != nil || r.From != client {
			t.Fatalf("ping %s -> client %s: answered by %v, %v", n.ID(), client, r, err)
		}
	}
}

// checkNotInTables fails if any peer counts the client as a routing candidate.
func checkNotInTables(t *testing.T, client wire.NodeID, peers []*sim.Peer) {
	t.Helper()
	for _, p := range peers {
		st := p.Chord.Status()
		if slices.Contains(st.Predecessors, client) || slices.Contains(st.Successors, client) ||
			slices.Contains(st.FingerTable, client) || slices.Contains(p.Chord.Replicas(), client) {
			t.Fatalf("peer %s has the client in its tables: %+v", p.ID, st)
		}
		if _, ready, _ := p.Chord.PeerState(client); ready {
			t.Fatalf("peer %s takes the client for a joined peer", p.ID)
		}
	}
}

// TestClientAttachesToResponsiblePeer: a client (RFC 6940 §4.2) in a ring of peers is
// attached to the peer responsible for its Node-ID, reachable by its Node-ID from every
// peer, in nobody's tables, responsible for nothing and routing nothing for others. When
// a new peer joins between it and its peer, and when that new peer dies, it moves to the
// responsible peer and stays reachable (§4.2.1).
func TestClientAttachesToResponsiblePeer(t *testing.T) {
	c := grow(t, sim.Params{N: 8, Seed: 11})
	ps := c.Peers()
	ctx := testCtx(t)
	cs := c.ChordSettings()
	cs.Client = true
	cs.ClientCheckInterval = time.Hour // only Updates and link loss move it here
	cid := pointBetween(ps[2].ID, ps[3].ID, 1, 4)
	cn, cc := startNode(t, c, cid, "10.9.0.1:6084", cs, ps[0].Addr)

	if p, _ := cc.ClientPeer(); p != ps[3].ID {
		t.Fatalf("client attached to %s, want the responsible peer %s", p, ps[3].ID)
	}
	st := cc.Status()
	if st.Role != chord.RoleClient || st.Joined || len(st.Predecessors)+len(st.Successors)+len(st.Fingers) != 0 {
		t.Fatalf("client status: %+v", st)
	}
	if cc.Responsible(cid) || cc.ResponsibleFor(wire.ResourceIDFromName("anything")) {
		t.Fatal("a client must be responsible for nothing")
	}
	if ps[0].Chord.Role() != chord.RolePeer {
		t.Fatalf("peer role %q", ps[0].Chord.Role())
	}
	var nodes []*node.Node
	for _, p := range ps {
		nodes = append(nodes, p.Node)
	}
	waitOnlyLink(t, cid, ps[3].ID, nodes...)
	checkReachable(t, ctx, cid, nodes...)
	checkNotInTables(t, cid, ps)
	// The client's own Node-ID as a Resource-ID is its peer's (it stores nothing).
	r, err := ps[6].Node.Ping(ctx, []wire.Destination{wire.ResourceDestination(wire.ResourceID(cid[:]))})
	if err != nil || r.From != ps[3].ID {
		t.Fatalf("resource at the client's Node-ID answered by %v (%v), want %s", r, err, ps[3].ID)
	}
	// Its requests go through its peer to every peer.
	for _, p := range ps {
		if r, err := cn.Ping(ctx, []wire.Destination{wire.NodeDestination(p.ID)}); err != nil || r.From != p.ID {
			t.Fatalf("client ping -> %s: %v %v", p.ID, r, err)
		}
	}
	// It forwards nothing: a request source-routed through it is refused. Its
	// Error_Forbidden is signed by the client, not by the destination, so with signatures
	// on the requester drops it (RFC 6940 §6.3.4) and times out; either way no answer
	// comes from ps[5].
	_, err = ps[3].Node.Ping(ctx, []wire.Destination{wire.NodeDestination(cid), wire.NodeDestination(ps[5].ID)})
	if !node.IsCode(err, wire.ErrForbidden) && !errors.Is(err, node.ErrTimeout) {
		t.Fatalf("request routed through the client: %v, want Error_Forbidden or no answer", err)
	}
	// A Join to a client is refused.
	_, err = ps[3].Node.Call(ctx, []wire.Destination{wire.NodeDestination(cid)}, wire.CodeJoinReq, &wire.JoinReq{JoiningPeerID: ps[3].ID}, &wire.JoinAns{})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("join to the client: %v, want Error_Forbidden", err)
	}

	// A peer joins between the client and its peer: it becomes responsible (§4.2.1).
	jid := pointBetween(cid, ps[3].ID, 1, 2)
	jn, _ := startNode(t, c, jid, "10.9.0.2:6084", c.ChordSettings(), ps[0].Addr)
	waitClientPeer(t, cc, jid, 30*time.Second)
	waitOnlyLink(t, cid, jid, append(nodes, jn)...)
	checkReachable(t, ctx, cid, append(nodes, jn)...)
	checkNotInTables(t, cid, c.Peers())

	// The new peer dies: the client bootstraps again and attaches to the peer that took
	// over its Node-ID.
	jn.Close()
	waitClientPeer(t, cc, ps[3].ID, 30*time.Second)
	waitOnlyLink(t, cid, ps[3].ID, nodes...)
	checkReachable(t, ctx, cid, nodes...)
	if n := cc.Status().Counters.ClientAttaches; n != 3 {
		t.Errorf("client attached %d times, want 3", n)
	}
}

// TestClientCheckFindsNewPeer: with every Update to the client lost, the client still
// moves to a new responsible peer: its periodic Ping to its own Node-ID is answered by
// that peer (RFC 6940 §4.2.1).
func TestClientCheckFindsNewPeer(t *testing.T) {
	c := grow(t, sim.Params{N: 5, Seed: 5})
	ps := c.Peers()
	cs := c.ChordSettings()
	cs.Client = true
	cs.ClientCheckInterval = 200 * time.Millisecond
	cid := pointBetween(ps[1].ID, ps[2].ID, 1, 3)
	c.Net.SetDrop(func(from, to wire.NodeID, msg []byte) bool {
		h, hl, err := wire.DecodeHeader(msg)
		return err == nil && to == cid && len(msg) >= hl+2 && h != nil &&
			wire.MessageCode(uint16(msg[hl])<<8|uint16(msg[hl+1])) == wire.CodeUpdateReq
	})
	_, cc := startNode(t, c, cid, "10.9.0.1:6084", cs, ps[0].Addr)
	waitClientPeer(t, cc, ps[2].ID, 10*time.Second)
	jid := pointBetween(cid, ps[2].ID, 1, 2)
	jn, _ := startNode(t, c, jid, "10.9.0.2:6084", c.ChordSettings(), ps[0].Addr)
	waitClientPeer(t, cc, jid, 30*time.Second)
	if got := cc.Status().Counters.UpdatesReceived; got != 0 {
		t.Fatalf("client received %d Updates; the test drops them all", got)
	}
	nodes := []*node.Node{jn}
	for _, p := range ps {
		nodes = append(nodes, p.Node)
	}
	waitOnlyLink(t, cid, jid, nodes...)
	checkReachable(t, testCtx(t), cid, nodes...)
}
