package peer

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// reachClient looks carol up from p and opens an AppAttach connection to the device
// registered for her; the client's handler echoes a line back.
func reachClient(t *testing.T, ctx context.Context, p *Peer, client wire.NodeID) {
	t.Helper()
	regs, err := p.Lookup(ctx, "carol")
	if err != nil {
		t.Fatalf("lookup from %s: %v", p.NodeID(), err)
	}
	if len(regs) != 1 || regs[0].Target() != client {
		t.Fatalf("lookup from %s: %+v, want one registration for %s", p.NodeID(), regs, client)
	}
	conn, err := p.AppAttach(ctx, regs[0])
	if err != nil {
		t.Fatalf("AppAttach from %s to the client: %v", p.NodeID(), err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("echo from the client: %q %v", buf, err)
	}
}

// waitOnlyLink waits until no peer but the client's own still has a link to it (a client
// closes the links it no longer needs; their removal has no event, so this polls).
func waitOnlyLink(t *testing.T, c *Peer, peers []*Peer) {
	t.Helper()
	cp, _ := c.chord.ClientPeer()
	eventually(t, "the client's other links closed", func() bool {
		for _, p := range peers {
			if p.NodeID() != cp && p.node.Connected(c.NodeID()) {
				return false
			}
		}
		return true
	})
}

// TestClientRegistersThroughItsPeer: a phone run as a RELOAD client (RFC 6940 §4.2) on
// real links stores its SIP-REGISTRATION through its peer, stores nothing itself
// (and refuses a Store sent to it), is found and reached by AppAttach from every peer,
// and after its peer leaves it attaches to the new responsible peer and stays reachable.
func TestClientRegistersThroughItsPeer(t *testing.T) {
	doc := config.SelfSigned("clients.test")
	var peers []*Peer
	var boot []string
	for i := 0; i < 3; i++ {
		p := startTestPeer(t, doc, boot, RelaySettings{Mode: RelayOff, NoClient: true})
		if i == 0 {
			boot = []string{p.Addr().String()}
		}
		peers = append(peers, p)
	}
	var all []string
	for _, p := range peers {
		all = append(all, p.Addr().String())
	}
	c, err := New(Config{Profile: t.TempDir(), User: "carol", Overlay: doc.InstanceName, Document: doc, Listen: "127.0.0.1:0",
		Bootstrap: all, Client: true, Relay: RelaySettings{NoClient: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	c.HandleSIP(func(conn net.Conn, remote wire.NodeID) {
		go func() { // owner: the connection; ends when it closes
			defer conn.Close()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(conn, buf); err == nil {
				_, _ = conn.Write([]byte("pong"))
			}
			_, _ = io.Copy(io.Discard, conn)
		}()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.Role != "client" || !st.Joined || st.ClientPeer == "" || len(st.Predecessors)+len(st.Successors) != 0 {
		t.Fatalf("client status %+v", st)
	}
	if c.RelayStatus().Serving {
		t.Fatal("a client serves TURN")
	}
	waitOnlyLink(t, c, peers)
	for _, p := range peers {
		if p.Role() != "peer" {
			t.Fatalf("peer role %q", p.Role())
		}
		reachClient(t, ctx, p, c.NodeID())
	}
	stored := 0
	for _, p := range peers {
		stored += p.Status().StoredRecords
	}
	if stored == 0 || c.Status().StoredRecords != 0 {
		t.Fatalf("records: %d on the peers, %d on the client; want the peers to hold carol's and the client none", stored, c.Status().StoredRecords)
	}
	// A Store sent straight to the client is refused.
	cid := c.NodeID()
	_, err = peers[0].node.Call(ctx, []wire.Destination{wire.NodeDestination(cid)}, wire.CodeStoreReq,
		&wire.StoreReq{Resource: wire.ResourceID(cid[:])}, &wire.StoreAns{})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("store to the client: %v, want Error_Forbidden", err)
	}

	// Every peer holds carol's registration (a ring of three replicates everything,
	// RFC 6940 §10.4) before one of them goes.
	eventually(t, "carol's registration on every peer", func() bool {
		for _, p := range peers {
			if p.Status().StoredRecords == 0 {
				return false
			}
		}
		return true
	})

	// Its peer leaves: the client attaches to the peer that takes over its Node-ID.
	first, changed := c.chord.ClientPeer()
	var gone *Peer
	var rest []*Peer
	for _, p := range peers {
		if p.NodeID() == first {
			gone = p
		} else {
			rest = append(rest, p)
		}
	}
	if gone == nil {
		t.Fatalf("the client's peer %s is none of the peers", first)
	}
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	_ = gone.Close(cctx)
	ccancel()
	// Of two peers A and B, A is responsible for (B, A] (RFC 6940 §10.1).
	want := rest[1].NodeID()
	if chord.Between(cid, rest[1].NodeID(), rest[0].NodeID()) {
		want = rest[0].NodeID()
	}
	for {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the client did not attach to %s", want)
		}
		var cp wire.NodeID
		if cp, changed = c.chord.ClientPeer(); cp == want {
			break
		}
	}
	waitOnlyLink(t, c, rest)
	for _, p := range rest {
		reachClient(t, ctx, p, c.NodeID())
	}
}

// TestClientNotPermitted: in an overlay whose configuration says clients-permitted false
// (RFC 6940 §11.1), or with no peer to attach to, a phone asked to be a client runs as a
// storing peer, and says so in its log.
func TestClientNotPermitted(t *testing.T) {
	doc := config.SelfSigned("noclients.test")
	doc.ClientsPermitted = false
	for _, tc := range []struct {
		name string
		doc  *config.Config
		boot []string
		log  string
	}{
		{"clients-permitted false", doc, []string{"127.0.0.1:9"}, "does not permit clients"},
		{"first peer", config.SelfSigned("alone.test"), nil, "no peer to attach to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncBuffer
			p, err := New(Config{Profile: t.TempDir(), User: "dave", Overlay: tc.doc.InstanceName, Document: tc.doc,
				Listen: "127.0.0.1:0", Bootstrap: tc.boot, Client: true, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			if p.Role() != "peer" || p.Status().Role != "peer" {
				t.Fatalf("role %q, want peer", p.Role())
			}
			if !strings.Contains(log.String(), tc.log) {
				t.Fatalf("log %q lacks %q", log.String(), tc.log)
			}
		})
	}
}

// syncBuffer is a log sink safe for the peer's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
