package hostile

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// relay is a hostile peer on the path of a victim's requests: it joins the victim's routing
// table with an Update of its own, forwards what the victim sends it to the real
// responsible peer, and relays the answer back with an empty via list (RFC 6940 does not
// require one on answers). Before forwarding it answers the request itself when forge
// says so.
type relay struct {
	*user
	victim, real *link.Link
	forge        atomic.Pointer[forger] // nil, or a nil answer: forge nothing; set by the test while links deliver
	forged       atomic.Int32
	relayed      atomic.Int32
}

// forger makes the answer the relay sends in place of the real one.
type forger func(req *wire.Message) *wire.Message

func (r *relay) intercept(from node.Link, m *wire.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &m.Header
	switch {
	case m.Code.IsRequest() && from.RemoteNodeID() == r.victim.RemoteNodeID() && m.Code != wire.CodeUpdateReq && m.Code != wire.CodePingReq:
		if f := r.forge.Load(); f != nil && *f != nil {
			if ans := (*f)(m); ans != nil {
				ans.Header = wire.ForwardingHeader{OverlayHash: h.OverlayHash, TTL: wire.DefaultTTL, TransactionID: h.TransactionID,
					DestinationList: []wire.Destination{wire.NodeDestination(from.RemoteNodeID())},
					ViaList:         []wire.Destination{wire.NodeDestination(r.NodeID)}}
				if r.victim.Send(ctx, r.Encode(ans)) == nil {
					r.forged.Add(1)
				}
			}
		}
		// Forward like a peer (RFC 6940 §6.1.2): the previous hop joins the via list.
		h.ViaList = append(h.ViaList, wire.NodeDestination(from.RemoteNodeID()))
		h.TTL--
		if b, err := wire.Encode(m); err == nil {
			r.real.Send(ctx, b)
		}
	case m.Code.IsAnswer() && from.RemoteNodeID() == r.real.RemoteNodeID():
		// Back along the reversed via list, our own entry removed, via list emptied.
		if len(h.DestinationList) < 2 || h.DestinationList[0].Node != r.NodeID {
			return
		}
		h.DestinationList = h.DestinationList[1:]
		h.ViaList = nil
		if b, err := wire.Encode(m); err == nil && r.victim.Send(ctx, b) == nil {
			r.relayed.Add(1)
		}
	}
}

// onPath places a hostile peer between two of ps: it returns the relay (linked to the
// victim, the real peer before it, and to the real peer after it) and a user name whose
// AoR the victim reaches through the relay.
func onPath(t *testing.T, ps []*peer.Peer) (*relay, *peer.Peer, string) {
	t.Helper()
	h := newUser(t, "mallory")
	ids := []wire.NodeID{h.NodeID}
	for _, p := range ps {
		ids = append(ids, p.NodeID())
	}
	slices.SortFunc(ids, func(a, b wire.NodeID) int { return a.Compare(b) })
	i := slices.Index(ids, h.NodeID)
	prev, next := ids[(i+len(ids)-1)%len(ids)], ids[(i+1)%len(ids)]
	var victim, real *peer.Peer
	for _, p := range ps {
		switch p.NodeID() {
		case prev:
			victim = p
		case next:
			real = p
		}
	}
	// A name whose Resource-ID lies in (relay, real]: the victim routes it to the relay,
	// the last candidate before it (RFC 6940 §10.3), and the real peer is responsible.
	name := ""
	for k := 0; name == ""; k++ {
		n := fmt.Sprintf("bob%d", k)
		x := kinds.UserResourceID(n + "@" + overlayName).NodeID()
		if between(x, h.NodeID, real.NodeID()) {
			name = n
		}
	}
	r := &relay{user: h}
	h.Intercept = r.intercept
	r.victim, r.real = h.dial(t, victim), h.dial(t, real)
	// An Update of its own makes the victim route through it (§10.7.3, peer_ready).
	up := h.Request(wire.CodeUpdateReq, &wire.ChordUpdate{Type: wire.ChordPeerReady}, wire.NodeDestination(victim.NodeID()))
	expectOK(t, "relay's Update", call(t, h, r.victim, up), wire.CodeUpdateAns)
	return r, victim, name
}

// between reports whether x is in the ring interval (a, b].
func between(x, a, b wire.NodeID) bool {
	if a.Compare(b) < 0 {
		return a.Less(x) && !b.Less(x)
	}
	return a.Less(x) || !b.Less(x)
}

// TestOnPathForgedAnswersIgnored: a peer on the path of a Fetch answers it itself, with
// Error_Not_Found and with an empty FetchAns (hiding a registration), then forwards the
// request and relays the real answer with an empty via list. The requester drops the
// forged answers — an answer for a Resource-ID must come from a node at least as close to
// it as the requester's neighbours (RFC 6940 §6.3.4) — takes the real one, whose responder
// it finds from the signature, and finds the registration.
func TestOnPathForgedAnswersIgnored(t *testing.T) {
	ps := startPeers(t, 3)
	r, victim, name := onPath(t, ps)
	bob := newUser(t, name)
	bl := bob.dial(t, ps[0])
	reg := bob.registration(t, bob.aor(), bob.NodeID, time.Now())
	expectOK(t, "bob registers", call(t, bob, bl, bob.storeMsg(bob.aor(), wire.KindSIPRegistration, reg)), wire.CodeStoreAns)

	for _, tc := range []struct {
		name  string
		forge func(req *wire.Message) *wire.Message
	}{
		{"ErrorNotFound", func(req *wire.Message) *wire.Message {
			m, _ := wire.NewErrorMessage(nil, wire.ErrNotFound, "no such resource")
			return m
		}},
		{"EmptyFetchAns", func(req *wire.Message) *wire.Message {
			m, _ := wire.NewMessage(wire.CodeFetchAns, &wire.FetchAns{})
			return m
		}},
		{"NoForgery", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := forger(tc.forge)
			r.forge.Store(&f)
			f0, r0 := r.forged.Load(), r.relayed.Load()
			regs, err := victim.Lookup(testCtx(t, 30*time.Second), name)
			if err != nil {
				t.Fatalf("lookup of %s: %v (forged %d, relayed %d)", name, err, r.forged.Load()-f0, r.relayed.Load()-r0)
			}
			if len(regs) != 1 || regs[0].Node != bob.NodeID {
				t.Fatalf("lookup of %s: %+v", name, regs)
			}
			if r.relayed.Load() == r0 {
				t.Fatalf("the lookup did not go through the hostile peer")
			}
			if tc.forge != nil && r.forged.Load() == f0 {
				t.Fatalf("nothing forged")
			}
			t.Logf("forged %d, relayed %d (empty via list)", r.forged.Load()-f0, r.relayed.Load()-r0)
		})
	}
}

// TestUpdateCannotMakeAThirdNodeRoutable: a peer cannot make another node route through a
// third one, a node linked to it that never said it joined (a client, RFC 6940 §4.2): not
// by naming it in its own Update (§10.7.3: the victim asks the third node itself, which
// does not confirm), nor by an Update whose via list claims it comes from the third node
// (the originator is the signer, §6.3.4: dropped unanswered).
func TestUpdateCannotMakeAThirdNodeRoutable(t *testing.T) {
	ps := startPeers(t, 3)
	victim := ps[0]
	eve, carol := newUser(t, "eve"), newUser(t, "carol")
	probed := make(chan struct{}, 16)
	carol.Intercept = func(from node.Link, m *wire.Message) {
		if m.Code == wire.CodeProbeReq {
			probed <- struct{}{} // carol never answers: she is no peer
		}
	}
	el, cl := eve.dial(t, victim), carol.dial(t, victim)
	// Carol talks over her link (as a client does), so the victim has it in its tables.
	expectOK(t, "carol's Ping", call(t, carol, cl, carol.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(victim.NodeID()))), wire.CodePingAns)
	routable := func() bool { return victim.Linked(carol.NodeID) }
	if routable() {
		t.Fatal("setup: carol routable before any Update")
	}

	t.Run("NamedInUpdate", func(t *testing.T) {
		up := eve.Request(wire.CodeUpdateReq, &wire.ChordUpdate{Type: wire.ChordNeighbors,
			Predecessors: []wire.NodeID{carol.NodeID}, Successors: []wire.NodeID{carol.NodeID}}, wire.NodeDestination(victim.NodeID()))
		expectOK(t, "eve's Update naming carol", call(t, eve, el, up), wire.CodeUpdateAns)
		if routable() {
			t.Fatal("carol routable on eve's word")
		}
		select {
		case <-probed:
		case <-testCtx(t, 20*time.Second).Done():
			t.Fatal("the victim did not ask carol herself")
		}
		if routable() {
			t.Fatal("carol routable without confirming")
		}
	})
	t.Run("ViaListClaimsTheThirdNode", func(t *testing.T) {
		up := eve.Request(wire.CodeUpdateReq, &wire.ChordUpdate{Type: wire.ChordPeerReady}, wire.NodeDestination(victim.NodeID()))
		up.Header.ViaList = []wire.Destination{wire.NodeDestination(carol.NodeID)}
		if ans, err := eve.Call(testCtx(t, 3*time.Second), el, up); err == nil {
			t.Errorf("Update with carol's origin and eve's signature answered %v, want dropped", ans.Code)
		}
		if routable() {
			t.Fatal("carol routable by an Update that claims to come from her")
		}
	})
}
