package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

func registerAll(t testing.TB, ctx context.Context, ps []*tpeer) []*regState {
	t.Helper()
	var regs []*regState
	for _, p := range ps {
		if err := p.svc.Register(ctx, "sip:"+p.u.name, ""); err != nil {
			t.Fatalf("register %s: %v", p.u.name, err)
		}
		regs = append(regs, p.registered())
	}
	return regs
}

func TestServiceRegisterLookupReplicate(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "sim", true: "signed"}[secure], func(t *testing.T) { testRegisterLookupReplicate(t, secure) })
	}
}

func testRegisterLookupReplicate(t *testing.T, secure bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.secure = secure
	c.grow(ctx, 8)
	c.waitRing(time.Minute)
	ps := c.live()
	regs := registerAll(t, ctx, ps)
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })

	// Every phone finds every other by name (RFC 7904 §4.2).
	for i, p := range ps {
		q := ps[(i+3)%len(ps)]
		got, err := p.svc.LookupAoR(ctx, "sip:"+q.u.name)
		if err != nil {
			t.Fatalf("lookup %s from %s: %v", q.u.name, p.u.name, err)
		}
		if len(got) != 1 || got[0].Node != q.id || got[0].Target() != q.id || got[0].User != q.u.name {
			t.Fatalf("lookup %s: %+v", q.u.name, got)
		}
	}
	_, err := ps[0].svc.LookupAoR(ctx, "sip:nobody@"+testOverlay)
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unknown AoR: %v", err)
	}
	// The StoreAns names the replicas; Stat and Find over the network.
	st, err := ps[1].svc.Stat(ctx, regs[0].rid, wire.StoredDataSpecifier{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary})
	if err != nil || len(st.KindResponses) != 1 || len(st.KindResponses[0].Values) != 1 {
		t.Fatalf("stat: %v %+v", err, st)
	}
	fa, err := ps[2].svc.Find(ctx, regs[0].rid, wire.KindSIPRegistration)
	if err != nil || string(fa.Results[0].Closest) != string(regs[0].rid) {
		t.Fatalf("find: %v %+v", err, fa)
	}
}

// Forged stores sent over the overlay are refused with Error_Forbidden and
// change nothing, at the responsible peer and its replicas.
func TestServiceRefusesForgedStores(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "sim", true: "signed"}[secure], func(t *testing.T) { testRefusesForgedStores(t, secure) })
	}
}

func testRefusesForgedStores(t *testing.T, secure bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.secure = secure
	c.grow(ctx, 6)
	c.waitRing(time.Minute)
	ps := c.live()
	alice := ps[0]
	regs := registerAll(t, ctx, []*tpeer{alice})
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	rid := regs[0].rid
	// Mallory is a peer that holds no copy of Alice's registration (her own
	// store would not check her own request's signature).
	var mallory *tpeer
	for _, p := range ps[1:] {
		if !slices.Contains(holders(ps, rid), p) {
			mallory = p
			break
		}
	}
	reg, _ := kinds.RouteRegistration(mallory.id, "")
	now := time.Now()
	forged := []wire.StoredData{}
	// Mallory signs a registration at Alice's AoR, keyed by her own and by Alice's Node-ID.
	for _, key := range []wire.NodeID{mallory.id, alice.id} {
		sd, _ := NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(key[:], reg), now, time.Hour, mallory.u.cred)
		forged = append(forged, sd)
	}
	// Alice's own value, tampered after signing.
	own, _ := kinds.RouteRegistration(alice.id, "")
	sd, _ := NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(alice.id[:], own), now, time.Hour, alice.u.cred)
	sd.Value.Dictionary.Value.Value = reg
	forged = append(forged, sd)
	for i, f := range forged {
		_, err := mallory.svc.Store(ctx, rid, wire.KindSIPRegistration, f)
		if !node.IsCode(err, wire.ErrForbidden) {
			t.Fatalf("forged store %d: %v, want Error_Forbidden", i, err)
		}
	}
	if secure {
		// Alice's genuine, fresh value sent by Mallory as an original store:
		// the StoreReq's signer must satisfy the policy too (RFC 6940 §7.3).
		fresh, _ := NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(alice.id[:], own), time.Now().Add(time.Second), time.Hour, alice.u.cred)
		if _, err := mallory.svc.Store(ctx, rid, wire.KindSIPRegistration, fresh); !node.IsCode(err, wire.ErrForbidden) {
			t.Fatalf("relayed store: %v, want Error_Forbidden", err)
		}
	}
	// A forged replica store sent straight to a replica is refused too.
	hs := holders(c.live(), rid)
	req := &wire.StoreReq{Resource: rid, ReplicaNumber: 1, KindData: []wire.StoreKindData{{Kind: wire.KindSIPRegistration, GenerationCounter: 99, Values: forged[:1]}}}
	if _, err := mallory.n.Request(ctx, []wire.Destination{wire.NodeDestination(hs[1].id)}, wire.CodeStoreReq, req); !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("forged replica store: %v", err)
	}
	if ok, why := replicated(c.live(), regs); !ok {
		t.Fatalf("state changed: %s", why)
	}
	got, err := mallory.svc.LookupAoR(ctx, alice.u.name)
	if err != nil || len(got) != 1 || got[0].Target() != alice.id {
		t.Fatalf("alice's registration after forgeries: %v %+v", err, got)
	}
	// Unknown kinds are refused (Error_Unknown_Kind).
	_, err = mallory.svc.Store(ctx, rid, 0x4242, wire.StoredData{Value: wire.SingleValue([]byte("x"))})
	if !node.IsCode(err, wire.ErrUnknownKind) {
		t.Fatalf("store of an unknown kind: %v", err)
	}
}

// Two adjacent storing peers die: every registration they held is still
// fetchable, and replication is restored (issue 6 point 4).
func TestServiceTwoAdjacentDie(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.grow(ctx, 12)
	c.waitRing(time.Minute)
	ps := c.live()
	regs := registerAll(t, ctx, ps)
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	// Kill the responsible peer of the first registration and its successor.
	hs := holders(ps, regs[0].rid)
	c.kill(hs[0])
	c.kill(hs[1])
	c.waitRing(time.Minute)
	survivors := c.live()
	// Registrations of the dead phones too: the data must survive.
	d := waitFor(t, time.Minute, "replicated after two adjacent deaths", func() (bool, string) { return replicated(c.live(), regs) })
	t.Logf("replication restored %v after the ring", d)
	for _, r := range regs {
		got, err := survivors[0].svc.LookupAoR(ctx, r.aor)
		if err != nil || len(got) != 1 || got[0].StorageTime.UnixMilli() != int64(r.time) {
			t.Fatalf("%s after two adjacent deaths: %v %+v", r.aor, err, got)
		}
	}
}

// Joins move data to the new responsible peers (RFC 6940 §10.5 step 6) and
// peers that left the replica set drop it (§10.7.3).
func TestServiceJoinMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.grow(ctx, 5)
	c.waitRing(time.Minute)
	regs := registerAll(t, ctx, c.live())
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	c.grow(ctx, 20)
	c.waitRing(time.Minute)
	waitFor(t, time.Minute, "replicated after joins", func() (bool, string) { return replicated(c.live(), regs) })
	// Copies outside the replica sets disappear after StaleHold.
	waitFor(t, time.Minute, "stale copies dropped", func() (bool, string) {
		sorted := c.live()
		for _, r := range regs {
			hs := holders(sorted, r.rid)
			for _, p := range sorted {
				if p.eng.Stats().Records == 0 {
					continue
				}
				held := false
				for _, h := range hs {
					held = held || h == p
				}
				if _, _, _, ok := p.eng.Snapshot(r.rid, 1); ok && !held {
					return false, p.u.name + " still holds " + r.aor
				}
			}
		}
		return true, ""
	})
	var migrations uint64
	for _, p := range c.live() {
		migrations += p.svc.Metrics().Migrations
	}
	t.Logf("migrations at admission: %d", migrations)
}

// Register refreshes before the lifetime ends and Unregister removes the
// registration (issue 6 point 5).
func TestServiceRegisterRefreshUnregister(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	// Refreshed at half its lifetime: a refresh has 2 s to be stored before the record
	// expires (1 s was within reach of a loaded machine under the race detector).
	c.ss.RegistrationLifetime = 4 * time.Second
	c.grow(ctx, 4)
	c.waitRing(time.Minute)
	p := c.live()[0]
	q := c.live()[2]
	if err := p.svc.Register(ctx, "sip:"+p.u.name, "(sip.schemes=SIP)"); err != nil {
		t.Fatal(err)
	}
	first := p.registered().time
	// Several lifetimes later the registration is still there, refreshed.
	waitFor(t, 30*time.Second, "refreshed", func() (bool, string) {
		r := p.registered()
		return r.time > first, "not yet refreshed"
	})
	time.Sleep(5 * time.Second) // longer than one lifetime: only refreshes keep it alive
	got, err := q.svc.LookupAoR(ctx, p.u.name)
	if err != nil || len(got) != 1 || got[0].ContactPrefs != "(sip.schemes=SIP)" {
		t.Fatalf("after refreshes: %v %+v", err, got)
	}
	if err := p.svc.Register(ctx, "sip:someone-else@"+testOverlay, ""); err == nil {
		t.Fatal("registered an AoR that is not the certificate's")
	}
	if err := p.svc.Unregister(ctx, p.u.name); err != nil {
		t.Fatal(err)
	}
	if _, err := q.svc.LookupAoR(ctx, p.u.name); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("after unregister: %v", err)
	}
}

// A graceful Leave (RFC 6940 §10.9) loses nothing: the replicas take over
// and the replica sets are filled again.
func TestServiceLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.grow(ctx, 10)
	c.waitRing(time.Minute)
	ps := c.live()
	regs := registerAll(t, ctx, ps[5:])
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	// The responsible peers of two registrations leave (without unregistering).
	for _, r := range regs[:2] {
		h := holders(c.live(), r.rid)[0]
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := h.n.Leave(lctx); err != nil {
			t.Logf("leave: %v", err)
		}
		lcancel()
		c.kill(h)
	}
	c.waitRing(time.Minute)
	waitFor(t, time.Minute, "replicated after leaves", func() (bool, string) { return replicated(c.live(), regs) })
	for _, r := range regs {
		got, err := c.live()[0].svc.LookupAoR(ctx, r.aor)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s after leave: %v %+v", r.aor, err, got)
		}
	}
}

// A registration whose first store fails for a passing reason is stored
// by the background refresher.
func TestServiceRegisterRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.ss.RegistrationLifetime = 4 * time.Second // retries within 0.5 s
	c.grow(ctx, 4)
	c.waitRing(time.Minute)
	p, q := c.live()[0], c.live()[1]
	dead, stop := context.WithCancel(ctx)
	stop()
	if err := p.svc.Register(dead, "sip:"+p.u.name, ""); !errors.Is(err, ErrRetrying) {
		t.Fatalf("store with a cancelled context: %v, want ErrRetrying", err)
	}
	waitFor(t, 30*time.Second, "registered by the background retry", func() (bool, string) {
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		defer lcancel()
		got, err := q.svc.LookupAoR(lctx, p.u.name)
		return err == nil && len(got) == 1, fmt.Sprint(err)
	})
}

// TestAuditNotPassedByALonePeer: a registered peer that lost every neighbour (its links cut
// and the overlay unreachable) cannot confirm its registration against its own store, which
// answers for the whole ring in its eyes only (RFC 6940 §10.7.1); once it is back in the ring
// (the rejoin of chord's lone peer) the audit asks the overlay again and passes.
func TestAuditNotPassedByALonePeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.grow(ctx, 4)
	c.waitRing(time.Minute)
	var p *tpeer
	for _, q := range c.live() {
		if len(q.n.Settings().Bootstrap) > 0 {
			p = q
			break
		}
	}
	regs := registerAll(t, ctx, []*tpeer{p})
	waitFor(t, time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	var r *registration
	p.svc.regMu.Lock()
	for _, x := range p.svc.regs {
		r = x
	}
	p.svc.regMu.Unlock()
	if r == nil {
		t.Fatalf("no registration of %s", p.u.name)
	}
	c.nw.SetDrop(func(from, to wire.NodeID, msg []byte) bool { return from == p.id || to == p.id })
	p.ep.CutLinks()
	waitFor(t, time.Minute, "lone", func() (bool, string) { return p.ch.IsLone(), "" })
	if ok, err := p.svc.holds(ctx, r); ok || !errors.Is(err, errLone) {
		t.Fatalf("audit of a lone peer: held %v, err %v; want errLone", ok, err)
	}
	c.nw.SetDrop(nil)
	waitFor(t, 30*time.Second, "back in the ring", func() (bool, string) { return !p.ch.IsLone(), "" })
	waitFor(t, 30*time.Second, "audit passes again", func() (bool, string) {
		ok, err := p.svc.holds(ctx, r)
		return ok, fmt.Sprint(err)
	})
}
