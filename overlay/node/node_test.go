package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/memnet"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

func newNet() *memnet.Network { return memnet.New() }

func newChord() *chord.Chord {
	return chord.New(chord.Settings{UpdateInterval: time.Hour, PingInterval: time.Hour})
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type peer struct {
	n  *node.Node
	c  *chord.Chord
	ep *memnet.Endpoint
}

type ring struct {
	t     *testing.T
	nw    *memnet.Network
	peers []*peer
}

func idOf(i int) wire.NodeID {
	var id wire.NodeID
	id[0] = byte(i * 256 / 8) // spread evenly for up to 8 peers
	id[15] = byte(i + 1)
	return id
}

// newRing builds k joined peers with Node-IDs idOf(0..k-1) on one memnet.
func newRing(t *testing.T, k int, tweak func(i int, s *node.Settings)) *ring {
	t.Helper()
	r := &ring{t: t, nw: newNet()}
	t.Cleanup(r.close)
	for i := 0; i < k; i++ {
		r.add(idOf(i), tweak, i)
	}
	return r
}

func (r *ring) add(id wire.NodeID, tweak func(i int, s *node.Settings), i int) *peer {
	t := r.t
	t.Helper()
	ep, err := r.nw.Endpoint(id, fmt.Sprintf("10.0.0.%d:6084", i+1))
	if err != nil {
		t.Fatal(err)
	}
	c := newChord()
	s := node.Settings{NodeID: id, OverlayName: "test", Connector: ep, Topology: c,
		Logger: discard(), ReliabilityTimer: 200 * time.Millisecond}
	if len(r.peers) > 0 {
		s.Bootstrap = []string{r.peers[0].ep.Addr()}
	}
	if tweak != nil {
		tweak(i, &s)
	}
	n, err := node.New(s)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{n, c, ep}
	r.peers = append(r.peers, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatalf("join %d: %v", i, err)
	}
	r.waitStable()
	return p
}

// waitStable waits until every peer's first successor is right (event-driven updates
// make this fast; the loop only observes).
func (r *ring) waitStable() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ids := make([]wire.NodeID, len(r.peers))
		for i, p := range r.peers {
			ids[i] = p.n.ID()
		}
		slices.SortFunc(ids, func(a, b wire.NodeID) int { return a.Compare(b) })
		ok := true
		for _, p := range r.peers {
			s := p.c.Successors()
			i := slices.Index(ids, p.n.ID())
			if len(ids) > 1 && (len(s) == 0 || s[0] != ids[(i+1)%len(ids)]) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("ring did not stabilise")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *ring) close() {
	for _, p := range r.peers {
		p.ep.Close()
		p.n.Close()
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRequestRoutedAndAnsweredOnReversedVia(t *testing.T) {
	r := newRing(t, 6, nil)
	var got atomic.Pointer[node.Request]
	for _, p := range r.peers {
		p.n.Handle(wire.CodeProbeReq, node.HandlerFunc(func(ctx context.Context, req *node.Request) (wire.Body, error) {
			got.Store(req)
			return &wire.ProbeAns{}, nil
		}))
	}
	// A resource just below peer 4 is peer 4's responsibility (RFC 6940 §10.1).
	target := r.peers[4].n.ID()
	target[15]--
	resp, err := r.peers[0].n.Request(ctx(t), []wire.Destination{wire.ResourceDestination(wire.ResourceID(target[:]))}, wire.CodeProbeReq, &wire.ProbeReq{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.From != r.peers[4].n.ID() {
		t.Fatalf("answered by %s, want peer 4 %s", resp.From, r.peers[4].n.ID())
	}
	req := got.Load()
	if req.Origin != r.peers[0].n.ID() {
		t.Errorf("origin %s, want peer 0", req.Origin)
	}
	// Symmetric routing: the answer crossed as many links as the request (via list + 1).
	if want := len(req.Message.Header.ViaList) + 1; req.Hops != want || resp.Hops != want {
		t.Errorf("request hops %d, answer hops %d, via list %d", req.Hops, resp.Hops, len(req.Message.Header.ViaList))
	}
}

func TestTTLExceeded(t *testing.T) {
	r := newRing(t, 6, nil)
	// A request that arrives with TTL 0 at a peer that must forward it is refused there.
	route := []wire.Destination{wire.NodeDestination(r.peers[1].n.ID()), wire.NodeDestination(r.peers[3].n.ID())}
	_, err := r.peers[0].n.Ping(ctx(t), route, node.WithTTL(0))
	if !node.IsCode(err, wire.ErrTTLExceeded) {
		t.Fatalf("got %v, want Error_TTL_Exceeded", err)
	}
	// A TTL above initial-ttl is refused too (RFC 6940 §6.3.2).
	_, err = r.peers[0].n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}, node.WithTTL(200))
	if !node.IsCode(err, wire.ErrTTLExceeded) {
		t.Fatalf("got %v, want Error_TTL_Exceeded for ttl 200", err)
	}
}

func TestMessageTooLarge(t *testing.T) {
	r := newRing(t, 3, func(i int, s *node.Settings) {
		if i == 2 {
			s.MaxMessageSize = 600
		} else {
			s.MaxMessageSize = 20000
		}
	})
	big := &wire.PingReq{Padding: bytes.Repeat([]byte{7}, 1000)}
	_, err := r.peers[0].n.Call(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[2].n.ID())}, wire.CodePingReq, big, &wire.PingAns{})
	if !node.IsCode(err, wire.ErrMessageTooLarge) {
		t.Fatalf("got %v, want Error_Message_Too_Large from the receiver", err)
	}
	// Locally: a request larger than our own limit is not sent.
	huge := &wire.PingReq{Padding: bytes.Repeat([]byte{7}, 30000)}
	_, err = r.peers[0].n.Call(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}, wire.CodePingReq, huge, &wire.PingAns{})
	if !node.IsCode(err, wire.ErrMessageTooLarge) {
		t.Fatalf("got %v, want local Error_Message_Too_Large", err)
	}
}

func TestCriticalForwardingOptions(t *testing.T) {
	r := newRing(t, 3, nil)
	dst := []wire.Destination{wire.NodeDestination(r.peers[2].n.ID())}
	// Source route through peer 1 so that it must forward (RFC 6940 §6.3.2.3).
	via := []wire.Destination{wire.NodeDestination(r.peers[1].n.ID()), dst[0]}
	_, err := r.peers[0].n.Ping(ctx(t), via, node.WithForwardingOptions(wire.ForwardingOption{Type: 9, Flags: wire.ForwardCritical}))
	if !node.IsCode(err, wire.ErrUnsupportedForwardingOption) {
		t.Fatalf("forward-critical: got %v", err)
	}
	_, err = r.peers[0].n.Ping(ctx(t), dst, node.WithForwardingOptions(wire.ForwardingOption{Type: 9, Flags: wire.DestinationCritical}))
	if !node.IsCode(err, wire.ErrUnsupportedForwardingOption) {
		t.Fatalf("destination-critical: got %v", err)
	}
	// A non-critical unknown option is ignored.
	if _, err := r.peers[0].n.Ping(ctx(t), via, node.WithForwardingOptions(wire.ForwardingOption{Type: 9})); err != nil {
		t.Fatalf("non-critical option: %v", err)
	}
}

func TestRetransmissionAndDuplicateSuppression(t *testing.T) {
	r := newRing(t, 2, nil)
	var calls atomic.Int32
	r.peers[1].n.Handle(wire.CodeStatReq, node.HandlerFunc(func(ctx context.Context, req *node.Request) (wire.Body, error) {
		calls.Add(1)
		return &wire.StatAns{}, nil
	}))
	// Lose the first answer: the request is retransmitted with the same transaction
	// ID and answered from the cache, without running the handler again (§6.2.1).
	var lost atomic.Bool
	r.nw.SetDrop(func(from, to wire.NodeID, msg []byte) bool {
		m, err := wire.Decode(msg, 0)
		if err == nil && m.Code == wire.CodeStatAns && !lost.Load() {
			lost.Store(true)
			return true
		}
		return false
	})
	resp, err := r.peers[0].n.Request(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}, wire.CodeStatReq, &wire.FetchReq{Resource: wire.ResourceID{1}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Transmissions != 2 || calls.Load() != 1 {
		t.Fatalf("transmissions %d, handler calls %d; want 2 and 1", resp.Transmissions, calls.Load())
	}
	// Every transmission lost: the request fails after 5 transmissions.
	r.nw.SetDrop(func(from, to wire.NodeID, msg []byte) bool { return true })
	_, err = r.peers[0].n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}, node.WithReliabilityTimer(10*time.Millisecond))
	if !errors.Is(err, node.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	r.nw.SetDrop(nil)
}

func TestHandlerErrorsAndUnknownMethod(t *testing.T) {
	r := newRing(t, 2, nil)
	r.peers[1].n.Handle(wire.CodeStoreReq, node.HandlerFunc(func(ctx context.Context, req *node.Request) (wire.Body, error) {
		return nil, node.Errorf(wire.ErrForbidden, "not yours")
	}))
	dst := []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}
	_, err := r.peers[0].n.Request(ctx(t), dst, wire.CodeStoreReq, &wire.StoreReq{Resource: wire.ResourceID{1}})
	var re *node.RemoteError
	if !errors.As(err, &re) || re.Code != wire.ErrForbidden || re.Phrase != "not yours" || re.From != r.peers[1].n.ID() {
		t.Fatalf("got %v", err)
	}
	_, err = r.peers[0].n.Request(ctx(t), dst, wire.CodeFindReq, &wire.FindReq{Resource: wire.ResourceID{1}})
	if !node.IsCode(err, wire.ErrInvalidMessage) {
		t.Fatalf("unhandled method: got %v", err)
	}
}

func TestLinkDeathFailsPendingRequestFast(t *testing.T) {
	r := newRing(t, 3, nil)
	entered := make(chan struct{})
	r.peers[1].n.Handle(wire.CodeFetchReq, node.HandlerFunc(func(ctx context.Context, req *node.Request) (wire.Body, error) {
		close(entered)
		<-ctx.Done() // never answers
		return nil, ctx.Err()
	}))
	errc := make(chan error, 1)
	go func() {
		_, err := r.peers[0].n.Request(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}, wire.CodeFetchReq,
			&wire.FetchReq{Resource: wire.ResourceID{1}}, node.WithReliabilityTimer(time.Hour))
		errc <- err
	}()
	<-entered
	r.peers[1].ep.Close() // the peer's process dies
	if err := <-errc; !errors.Is(err, node.ErrLinkDown) {
		t.Fatalf("got %v, want ErrLinkDown", err)
	}
}

func TestAppAttach(t *testing.T) {
	r := newRing(t, 4, nil)
	got := make(chan string, 1)
	r.peers[2].n.HandleApp(5060, func(conn net.Conn, remote wire.NodeID) {
		go func() {
			defer conn.Close()
			buf := make([]byte, 64)
			k, _ := conn.Read(buf)
			got <- fmt.Sprintf("%s from %s", buf[:k], remote.String()[:4])
			conn.Write([]byte("200 OK"))
		}()
	})
	conn, err := r.peers[0].n.AppAttach(ctx(t), r.peers[2].n.ID(), 5060)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("INVITE"))
	buf := make([]byte, 64)
	k, err := conn.Read(buf)
	if err != nil || string(buf[:k]) != "200 OK" {
		t.Fatalf("read %q %v", buf[:k], err)
	}
	if s := <-got; s != "INVITE from "+r.peers[0].n.ID().String()[:4] {
		t.Fatalf("callee got %q", s)
	}
	_, err = r.peers[0].n.AppAttach(ctx(t), r.peers[2].n.ID(), 7777)
	if !node.IsCode(err, wire.ErrNotFound) {
		t.Fatalf("unknown application: got %v, want Error_Not_Found", err)
	}
}

func TestGarbageDoesNotPanic(t *testing.T) {
	r := newRing(t, 2, nil)
	var wg sync.WaitGroup
	l, err := r.peers[0].ep.Bootstrap(ctx(t), r.peers[1].ep.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, {0xd2}, bytes.Repeat([]byte{0xff}, 100), []byte("RELO garbage garbage garbage garbage")} {
		wg.Add(1)
		go func() { defer wg.Done(); l.Send(ctx(t), b) }()
	}
	wg.Wait()
	// The node still works.
	if _, err := r.peers[0].n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[1].n.ID())}); err != nil {
		t.Fatal(err)
	}
}

func TestBootstrapToSelfStartsOverlay(t *testing.T) {
	nw := newNet()
	id := idOf(1)
	ep, err := nw.Endpoint(id, "10.0.0.1:6084")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	c := newChord()
	n, err := node.New(node.Settings{NodeID: id, OverlayName: "test", Connector: ep, Topology: c, Bootstrap: []string{"10.0.0.1:6084"}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Join(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if !c.IsJoined() || !c.Responsible(idOf(5)) {
		t.Fatal("the bootstrap node itself should start the overlay")
	}
	// An unreachable bootstrap is an error, not a new overlay.
	ep2, _ := nw.Endpoint(idOf(2), "10.0.0.2:6084")
	defer ep2.Close()
	n2, err := node.New(node.Settings{NodeID: idOf(2), OverlayName: "test", Connector: ep2, Topology: newChord(), Bootstrap: []string{"10.9.9.9:6084"}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if err := n2.Join(ctx(t)); err == nil {
		t.Fatal("join without a reachable bootstrap node succeeded")
	}
}

// TestResponseCopyOption: a forwarding option flagged RESPONSE_COPY comes back in the answer
// with the three flags cleared; others do not (RFC 6940 §6.3.2.3).
func TestResponseCopyOption(t *testing.T) {
	r := newRing(t, 3, nil)
	route := []wire.Destination{wire.NodeDestination(r.peers[1].n.ID()), wire.NodeDestination(r.peers[2].n.ID())}
	resp, err := r.peers[0].n.Ping(ctx(t), route, node.WithForwardingOptions(
		wire.ForwardingOption{Type: 9, Flags: wire.ResponseCopy, Data: []byte{1, 2}},
		wire.ForwardingOption{Type: 10, Data: []byte{3}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.ForwardingOption{{Type: 9, Flags: 0, Data: []byte{1, 2}}}
	got := resp.Message.Header.Options
	if len(got) != 1 || got[0].Type != want[0].Type || got[0].Flags != 0 || !bytes.Equal(got[0].Data, want[0].Data) {
		t.Fatalf("answer options %+v, want %+v", got, want)
	}
}

// TestAttachGlare: two nodes send each other an Attach at once (RFC 6940 §6.5.1.2). When
// the smaller Node-ID's request is held up, the smaller node gives its own up and answers
// the larger's; when the larger's is held up, the larger answers the smaller's with
// Error_In_Progress. Either way both Attach calls return, over a single new link, and
// Error_In_Progress is not taken for a missing peer.
func TestAttachGlare(t *testing.T) {
	for _, slowSmall := range []bool{true, false} {
		r := newRing(t, 3, nil)
		a, b := r.peers[1].n, r.peers[2].n
		s, l := a, b
		if b.ID().Compare(a.ID()) < 0 {
			s, l = b, a
		}
		slow := s // whose AttachReq loses its first transmission
		if !slowSmall {
			slow = l
		}
		held := make(chan struct{})
		var dropped atomic.Bool
		r.nw.SetDrop(func(from, to wire.NodeID, msg []byte) bool {
			m, err := wire.Decode(msg, 0)
			if err == nil && m.Code == wire.CodeAttachReq && from == slow.ID() && dropped.CompareAndSwap(false, true) {
				close(held)
				return true
			}
			return false
		})
		before := s.LinkCount(l.ID())
		var errs [2]error
		var wg sync.WaitGroup
		other := l
		if slow == l {
			other = s
		}
		// The slow side attaches first; its request is lost once, so the other side's
		// Attach arrives while it is outstanding.
		for i, pair := range [][2]*node.Node{{slow, other}, {other, slow}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = pair[0].Attach(ctx(t), []wire.Destination{wire.NodeDestination(pair[1].ID())}, pair[1].ID(), false)
			}()
			if i == 0 {
				<-held
			}
		}
		wg.Wait()
		r.nw.SetDrop(nil)
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("slow small %v: attach errors %v, %v", slowSmall, errs[0], errs[1])
		}
		// Both ends have the links once the answering side's ICE has ended too.
		deadline := time.Now().Add(10 * time.Second)
		for s.LinkCount(l.ID()) != l.LinkCount(s.ID()) || s.LinkCount(l.ID()) == before {
			if time.Now().After(deadline) {
				t.Fatalf("slow small %v: links %d and %d", slowSmall, s.LinkCount(l.ID()), l.LinkCount(s.ID()))
			}
			time.Sleep(5 * time.Millisecond) // no per-link event
		}
		if got := s.LinkCount(l.ID()) - before; got != 1 {
			t.Fatalf("slow small %v: %d new links between the two, want 1", slowSmall, got)
		}
	}
}

// TestRequestGoesOnceLinkComesUp: a request to a node there is no link to is dropped; when a
// link to that node comes up (a node whose address changed re-forms its links a few
// milliseconds after its requests), the request goes again at once over it instead of at
// its next retransmission (here an hour away).
func TestRequestGoesOnceLinkComesUp(t *testing.T) {
	r := newRing(t, 2, nil)
	a, b := r.peers[0], r.peers[1]
	a.ep.CutLinks()
	for len(a.n.Links()) > 0 || len(b.n.Links()) > 0 {
		time.Sleep(5 * time.Millisecond) // observing the link tables empty
	}
	dropped := a.n.Stats().Dropped
	errc := make(chan error, 1)
	go func() {
		_, err := a.n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(b.n.ID())}, node.WithReliabilityTimer(time.Hour))
		errc <- err
	}()
	for a.n.Stats().Dropped == dropped {
		time.Sleep(5 * time.Millisecond) // until the first transmission was dropped
	}
	l, err := a.ep.Bootstrap(ctx(t), b.ep.Addr())
	if err != nil {
		t.Fatal(err)
	}
	a.n.AddLink(l)
	if err := <-errc; err != nil {
		t.Fatalf("ping after the link came up: %v", err)
	}
}
