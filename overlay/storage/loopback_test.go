package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

type loopPeer struct {
	u   *user
	tr  *link.Transport
	n   *node.Node
	ch  *chord.Chord
	svc *Service
}

type recvPtr struct{ n atomic.Pointer[node.Node] }

func (r *recvPtr) Receive(from node.Link, msg []byte) {
	if n := r.n.Load(); n != nil {
		n.Receive(from, msg)
	}
}

// newLoopPeer starts a peer with real DTLS/TLS links and ICE on loopback
// (overlay/link), signed messages (node.CertSecurity) and storage.
func newLoopPeer(t *testing.T, name string, bootstrap string) *loopPeer {
	t.Helper()
	u := freshUser(t, name)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	recv := &recvPtr{}
	leaf := u.cert()
	tr, err := link.New(link.Settings{
		Certificate: tlsCert(u), NodeID: u.node, ListenAddr: "127.0.0.1:0", Logger: log,
		ICEIncludeLoopback: true, ICEInterfaceFilter: func(s string) bool { return s == "lo" },
	}, recv)
	if err != nil {
		t.Fatal(err)
	}
	ch := chord.New(chord.Settings{UpdateInterval: 10 * time.Second, HoldDown: time.Second})
	sec := NewCertifying(&node.CertSecurity{NodeID: u.node, Key: u.cred.Key, Chain: []*x509.Certificate{leaf}})
	var boot []string
	if bootstrap != "" {
		boot = []string{bootstrap}
	}
	reg := kinds.Default()
	n, err := node.New(node.Settings{NodeID: u.node, OverlayName: testOverlay, Security: sec, Connector: tr, Topology: ch,
		Bootstrap: boot, Logger: log, KindModels: reg})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	recv.n.Store(n)
	svc, err := NewService(n, ch, ServiceSettings{Engine: NewEngine(reg, Options{}), Security: sec, Credentials: u.cred, Logger: log})
	if err != nil {
		n.Close()
		tr.Close()
		t.Fatal(err)
	}
	p := &loopPeer{u: u, tr: tr, n: n, ch: ch, svc: svc}
	t.Cleanup(func() {
		n.Close()
		tr.Close()
	})
	return p
}

// TestLoopbackRegisterLookup: peers on real sockets (DTLS/TLS, ICE, signed
// messages) register and find each other; store and fetch latencies are
// logged (issue 6 point 7, "on loopback").
func TestLoopbackRegisterLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets and ICE: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 8
	first := newLoopPeer(t, "lo0", "")
	if err := first.n.Join(ctx); err != nil {
		t.Fatal(err)
	}
	peers := []*loopPeer{first}
	for i := 1; i < n; i++ {
		p := newLoopPeer(t, "lo"+string(rune('0'+i)), first.tr.Addr().String())
		if err := p.n.Join(ctx); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		peers = append(peers, p)
	}
	var storeLat, fetchLat latencies
	for _, p := range peers {
		t0 := time.Now()
		if err := p.svc.Register(ctx, "sip:"+p.u.name, ""); err != nil {
			t.Fatalf("register %s: %v", p.u.name, err)
		}
		storeLat = append(storeLat, time.Since(t0))
	}
	for round := 0; round < 4; round++ {
		for i, p := range peers {
			q := peers[(i+1+round)%len(peers)]
			t0 := time.Now()
			got, err := p.svc.LookupAoR(ctx, q.u.name)
			if err != nil || len(got) != 1 || got[0].Target() != q.u.node {
				t.Fatalf("lookup %s from %s: %v %+v", q.u.name, p.u.name, err, got)
			}
			fetchLat = append(fetchLat, time.Since(t0))
		}
	}
	t.Logf("loopback, %d peers: store (Register) %v; fetch (LookupAoR) %v", n, storeLat, fetchLat)

	// Wait until every registration is on its responsible peer and the two
	// successors (global view: the test knows the ring).
	sortedAll := slices.Clone(peers)
	slices.SortFunc(sortedAll, func(a, b *loopPeer) int { return a.u.node.Compare(b.u.node) })
	holdersOf := func(rid wire.ResourceID) []*loopPeer {
		i := slices.IndexFunc(sortedAll, func(p *loopPeer) bool { return !p.u.node.Less(rid.NodeID()) })
		if i < 0 {
			i = 0
		}
		return []*loopPeer{sortedAll[i], sortedAll[(i+1)%n], sortedAll[(i+2)%n]}
	}
	t1 := time.Now()
	for _, p := range peers {
		rid := kinds.UserResourceID(p.u.name)
		for _, h := range holdersOf(rid) {
			for {
				if _, _, _, ok := h.svc.eng.Snapshot(rid, 1); ok {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("%s never replicated to %s", p.u.name, h.u.node)
				}
				time.Sleep(10 * time.Millisecond) // polling the global view: no event for it
			}
		}
	}
	t.Logf("every registration on its three holders %v after the last lookup", time.Since(t1).Round(time.Millisecond))

	// Two adjacent storing peers die abruptly (sockets closed, no Leave): the
	// responsible peer of the first registration and its successor. Every
	// registration is still found, once the links are seen dead.
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b *loopPeer) int { return a.u.node.Compare(b.u.node) })
	rid := kinds.UserResourceID(peers[0].u.name)
	i := slices.IndexFunc(sorted, func(p *loopPeer) bool { return !p.u.node.Less(rid.NodeID()) })
	if i < 0 {
		i = 0
	}
	dead := []*loopPeer{sorted[i], sorted[(i+1)%len(sorted)]}
	t0 := time.Now()
	for _, p := range dead {
		p.tr.Close()
		p.n.Close()
	}
	var survivor *loopPeer
	for _, p := range peers {
		if !slices.Contains(dead, p) {
			survivor = p
			break
		}
	}
	for _, p := range peers {
		for {
			got, err := survivor.svc.LookupAoR(ctx, p.u.name)
			if err == nil && len(got) == 1 && got[0].Target() == p.u.node {
				break
			}
			if ctx.Err() != nil {
				rid := kinds.UserResourceID(p.u.name)
				for _, q := range peers {
					if slices.Contains(dead, q) {
						continue
					}
					_, _, _, has := q.svc.eng.Snapshot(rid, 1)
					role, resp := q.svc.role(rid)
					t.Logf("peer %s: holds=%v role=%d resp=%s preds=%v succs=%v responsible=%v", q.u.node, has, role, resp,
						q.ch.Predecessors(), q.ch.Successors(), q.ch.Responsible(rid.NodeID()))
				}
				t.Fatalf("%s (resource %s) not found after two adjacent peers died (%s, %s): %v", p.u.name, rid, dead[0].u.node, dead[1].u.node, err)
			}
		}
	}
	t.Logf("two adjacent peers closed abruptly: every registration found again after %v", time.Since(t0).Round(time.Millisecond))
}

func tlsCert(u *user) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{u.cert().Raw}, PrivateKey: u.cred.Key, Leaf: u.cert()}
}
