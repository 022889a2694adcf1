package chord_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/memnet"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/sim"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

const mergeOverlay = "merge.example"

// storingPeer is a peer with the real node, chord and storage code over memnet.
type storingPeer struct {
	sim.Peer
	user string
	svc  *storage.Service
}

// newStoringPeer starts a peer on nw at addr and joins it through bootstrap ("" = it
// starts a ring of its own). Intervals are the RFC defaults (chord-update-interval
// 600 s), so nothing periodic happens during a test: what the test sees is reactive.
func newStoringPeer(t *testing.T, ctx context.Context, nw *memnet.Network, addr, bootstrap string) *storingPeer {
	t.Helper()
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	name := "u" + strings.ReplaceAll(strings.Split(addr, ":")[0], ".", "-")
	id, err := identity.NewSelfSigned(key, name, mergeOverlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	nid := id.NodeID()
	ep, err := nw.Endpoint(nid, addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := chord.New(chord.Settings{})
	sec := storage.NewCertifying(&node.CertSecurity{NodeID: nid, Key: id.Key, Chain: id.Chain})
	eng := storage.NewEngine(kinds.Default(), storage.Options{})
	var boot []string
	if bootstrap != "" {
		boot = []string{bootstrap}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(node.Settings{
		NodeID: nid, OverlayName: mergeOverlay, Connector: ep, Topology: ch, Bootstrap: boot,
		Logger: log, ReliabilityTimer: 500 * time.Millisecond, Security: sec, KindModels: eng.Kinds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close(); n.Close() })
	svc, err := storage.NewService(n, ch, storage.ServiceSettings{
		Engine: eng, Security: sec, Credentials: &storage.Credentials{Key: id.Key, Chain: id.Chain}, Logger: log,
		Settle: 50 * time.Millisecond,
		// No audit and no refresh during the test: a registration found after the merge
		// got there by migration (RFC 6940 §10.7.3), not by being stored again.
		AuditInterval: time.Hour, RegistrationLifetime: 2 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Join(ctx); err != nil {
		t.Fatal(err)
	}
	return &storingPeer{Peer: sim.Peer{ID: nid, Addr: addr, Node: n, Chord: ch}, user: id.User(), svc: svc}
}

// ring starts n peers on nw that form a ring of their own (the first starts it).
func ring(t *testing.T, ctx context.Context, nw *memnet.Network, prefix string, n int) []*storingPeer {
	t.Helper()
	var ps []*storingPeer
	for i := range n {
		boot := ""
		if i > 0 {
			boot = ps[0].Addr
		}
		ps = append(ps, newStoringPeer(t, ctx, nw, fmt.Sprintf("%s.%d:6084", prefix, i+1), boot))
	}
	return ps
}

// sorted returns the peers as sim peers in Node-ID order.
func sorted(groups ...[]*storingPeer) []*sim.Peer {
	var out []*sim.Peer
	for _, g := range groups {
		for _, p := range g {
			out = append(out, &p.Peer)
		}
	}
	slices.SortFunc(out, func(x, y *sim.Peer) int { return x.ID.Compare(y.ID) })
	return out
}

// waitRing polls until every peer's whole neighbour table is right for the ring of
// peers (all predecessors and successors, RFC 6940 §10.7), or fails after timeout.
func waitRing(t *testing.T, peers []*sim.Peer, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		_, wrong := sim.RingCheck(peers, chord.DefaultNeighbors)
		if wrong == 0 {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			t.Fatalf("%d of %d peers still have a wrong neighbour table after %v: %s", wrong, len(peers), timeout,
				strings.Join(diagnose(peers, chord.DefaultNeighbors, 6), " | "))
		}
		time.Sleep(5 * time.Millisecond) // polling the tables; there is no event for "the ring is right"
	}
}

// TestMergeTwoRings: two rings of 5 and 6 peers formed apart become one ring after a
// single MergeWith from one peer (the partition check of RFC 6940 §10.7.4.4 through a
// peer of the other ring); every neighbour table ends right for the union, with no
// periodic Update (chord-update-interval is 600 s), and the registrations stored in
// each ring move to the peers now responsible, so each side finds the other's users.
func TestMergeTwoRings(t *testing.T) {
	ctx := testCtx(t)
	nw := memnet.New()
	na, nb := 5, 6
	if v := os.Getenv("CHORDPHONE_MERGE_N"); v != "" {
		fmt.Sscanf(v, "%d,%d", &na, &nb)
	}
	a := ring(t, ctx, nw, "10.1.0", na)
	b := ring(t, ctx, nw, "10.2.0", nb)
	waitRing(t, sorted(a), 30*time.Second)
	waitRing(t, sorted(b), 30*time.Second)
	for _, p := range append(append([]*storingPeer{}, a...), b...) {
		if err := p.svc.Register(ctx, p.user, ""); err != nil {
			t.Fatalf("register %s: %v", p.user, err)
		}
	}
	// Apart, a peer of one ring does not find the other ring's users.
	if _, err := a[0].svc.LookupAoR(ctx, b[0].user); err == nil {
		t.Fatalf("%s found in the other ring before the merge", b[0].user)
	}

	// A peer of the other ring answers a MergeWith to an address of its own ring: no merge.
	if a[2].Chord.MergeWith(ctx, a[0].Addr) {
		t.Fatal("MergeWith within one ring reported another ring")
	}
	t0 := time.Now()
	if !a[2].Chord.MergeWith(ctx, b[3].Addr) {
		t.Fatal("MergeWith did not find the other ring")
	}
	all := sorted(a, b)
	defer func() {
		drops := map[string]uint64{}
		var af, us, ur int
		var rt uint64
		for _, p := range all {
			for k, v := range p.Node.Stats().DropReasons {
				drops[k] += v
			}
			rt += p.Node.Stats().Retransmissions
			c := p.Chord.Status().Counters
			af += c.AttachFailures
			us += c.UpdatesSent
			ur += c.UpdatesReceived
		}
		t.Logf("merge traffic of all peers: %d Updates sent, %d received, %d Attach failures, %d retransmissions, drops %v", us, ur, af, rt, drops)
	}()
	waitRing(t, all, time.Minute)
	t.Logf("neighbour tables right for the union of %d+%d peers %v after MergeWith", na, nb, time.Since(t0))

	// Every user is found from every peer of the other side (a record stored in ring B
	// is fetchable from ring A, and the other way round).
	deadline := time.Now().Add(30 * time.Second)
	for _, pair := range [][2][]*storingPeer{{a, b}, {b, a}} {
		for _, from := range pair[0] {
			for _, to := range pair[1] {
				for {
					regs, err := from.svc.LookupAoR(ctx, to.user)
					if err == nil && len(regs) == 1 && regs[0].Target() == to.ID {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s cannot find %s after the merge: %v %v", from.user, to.user, regs, err)
					}
					time.Sleep(20 * time.Millisecond) // migration runs after the neighbour change settles
				}
			}
		}
	}
	t.Logf("every registration found from the other side %v after MergeWith", time.Since(t0))
	// The records are held by the peers now responsible for them (§10.1).
	for _, p := range append(append([]*storingPeer{}, a...), b...) {
		aor, err := kinds.NormalizeAoR(p.user)
		if err != nil {
			t.Fatal(err)
		}
		rid := kinds.UserResourceID(aor)
		holder := sim.Responsible(all, rid.NodeID())
		var hp *storingPeer
		for _, q := range append(append([]*storingPeer{}, a...), b...) {
			if q.ID == holder.ID {
				hp = q
			}
		}
		found := false
		for _, ri := range hp.svc.Engine().Resources() {
			found = found || string(ri.ID) == string(rid)
		}
		if !found {
			t.Fatalf("the peer responsible for %s does not hold it", p.user)
		}
	}
}

// diagnose describes up to max peers whose neighbour table differs from the ring's: the
// entries missing and what the peer knows of them.
func diagnose(sorted []*sim.Peer, k, max int) []string {
	var out []string
	n := len(sorted)
	for i, p := range sorted {
		if len(out) >= max {
			break
		}
		succs, preds := p.Chord.Successors(), p.Chord.Predecessors()
		var missing []string
		for j := 1; j <= min(k, n-1); j++ {
			for _, w := range []wire.NodeID{sorted[(i+j)%n].ID, sorted[(i+n-j)%n].ID} {
				if !slices.Contains(succs, w) && !slices.Contains(preds, w) {
					cn, rd, dp := p.Chord.PeerState(w)
					missing = append(missing, fmt.Sprintf("%s(conn=%v ready=%v departed=%v)", w.String()[:8], cn, rd, dp))
				}
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("peer %s misses %v; counters %+v", p.ID.String()[:8], missing, p.Chord.Status().Counters))
		}
	}
	return out
}

// TestMergeHealsIsolatedPeerReactively: a peer cut off from the ring (every link lost,
// so the others hold it back as failed and it holds them back) comes back through
// MergeWith while those holds last; with no periodic Update in the test's time
// (chord-update-interval 600 s), the peers named to each other while held back are
// attached once held four reliability timers, and every neighbour table ends right.
func TestMergeHealsIsolatedPeerReactively(t *testing.T) {
	c := grow(t, sim.Params{N: 12, Seed: 23, TimeScale: 1})
	ps := c.Peers()
	p, other := ps[4], ps[9]
	c.Isolate(p)
	waitIsolated(t, c, p)
	ctx := testCtx(t)
	if !p.Chord.MergeWith(ctx, other.Addr) {
		t.Fatalf("MergeWith did not find the ring; %s", linkState(c, p))
	}
	waitRing(t, c.Peers(), time.Minute)
}
