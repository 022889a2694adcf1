package peer

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/turn"
	"github.com/chordphone/chordphone/overlay/wire"
)

func startTestPeer(t *testing.T, doc *config.Config, boot []string, relay RelaySettings) *Peer {
	t.Helper()
	p, err := New(Config{Profile: t.TempDir(), Overlay: doc.InstanceName, Document: doc, Listen: "127.0.0.1:0",
		Bootstrap: boot, Relay: relay, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// records fetches the TURN-SERVICE records of server at H(Node-ID || d), d = 1..density.
func records(t *testing.T, p *Peer, server wire.NodeID, density int) []turn.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []turn.Record
	for _, rid := range turn.Resources(server, density) {
		res, err := p.storage.Fetch(ctx, rid, wire.StoredDataSpecifier{Kind: wire.KindTURNService})
		if err != nil {
			t.Fatal(err)
		}
		for _, kr := range res.Kinds {
			for _, sd := range kr.Values {
				if sd.Value.Single.Exists {
					var r turn.Record
					if err := r.UnmarshalBinary(sd.Value.Single.Value); err != nil {
						t.Fatal(err)
					}
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// eventually polls cond (there is no event for "the overlay's view has settled").
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTURNService (issue 13 points 1, 2, 5 at the peer level): a peer that serves TURN
// stores turn-density TURN-SERVICE records; another peer finds the server through the
// overlay, gets relayed candidates in its Attach parameters, and its allocation is freed when
// the attachment closes; going idle-off withdraws the records.
func TestTURNService(t *testing.T) {
	doc := config.SelfSigned("turn.test")
	doc.TurnDensity = 3
	srv := startTestPeer(t, doc, nil, RelaySettings{Mode: RelayOn, Addr: mustAddr("127.0.0.1")})
	boot := []string{srv.Addr().String()}
	a := startTestPeer(t, doc, boot, RelaySettings{})
	b := startTestPeer(t, doc, boot, RelaySettings{})

	st := srv.RelayStatus()
	if !st.Serving || st.Advertised != 3 {
		t.Fatalf("server relay status %+v", st)
	}
	if as := a.RelayStatus(); as.Serving {
		t.Fatalf("a loopback peer in auto mode serves TURN: %+v", as)
	}
	eventually(t, "three TURN-SERVICE records", func() bool { return len(records(t, b, srv.NodeID(), 3)) == 3 })
	for i, r := range records(t, b, srv.NodeID(), 3) {
		if int(r.Iteration) != i+1 || r.Addr.String() != st.Addr {
			t.Fatalf("record %d: %+v, want iteration %d at %s", i, r, i+1, st.Addr)
		}
	}

	// RFC 6940 §9's way, knowing no server: Find at random Resource-IDs, Fetch the closest.
	eventually(t, "a server found by Find", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		found, err := turn.Discover(ctx, turn.DiscoverConfig{Overlay: b.storage, Density: 3, RandomFinds: 4})
		return err == nil && len(found) == 1 && found[0].Addr.String() == st.Addr
	})

	eventually(t, "a finding the relay", func() bool { return len(a.RelayStatus().Relays) == 1 })
	if got := a.RelayStatus().Relays[0]; got != st.Addr {
		t.Fatalf("a uses relay %s, server is %s", got, st.Addr)
	}
	if ice := a.ICEServers(); ice != nil {
		t.Fatalf("ICE servers for media on loopback: %+v", ice)
	}

	// Attach parameters carry a relayed candidate on the server's address.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.relay.mu.Lock()
	server := srv.relay.server
	srv.relay.mu.Unlock()
	before := server.Stats().Allocations
	att, err := a.link.NewAttachment(ctx, b.NodeID(), 0, true)
	if err != nil {
		t.Fatal(err)
	}
	relayed := false
	for _, c := range att.Local().Candidates {
		if c.Type == wire.CandRelay && c.AddrPort.Addr().String() == "127.0.0.1" {
			relayed = true
		}
	}
	if !relayed {
		t.Fatalf("no relayed candidate in %+v", att.Local().Candidates)
	}
	if n := server.Stats().Allocations; n != before+1 {
		t.Fatalf("%d allocations after the attachment gathered, %d before", n, before)
	}
	_ = att.Close()
	if err := server.WaitAllocations(ctx, before); err != nil {
		t.Fatalf("allocation not freed when the attachment closed: %v", err)
	}

	// Idle-off: the records are withdrawn.
	if err := srv.SetRelayServing(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := len(records(t, b, srv.NodeID(), 3)); n != 0 {
		t.Fatalf("%d records left after serving stopped", n)
	}
	if srv.RelayStatus().Serving {
		t.Fatal("still serving")
	}

	// Serving again stores them again; leaving withdraws them (RFC 6940 §9).
	if err := srv.SetRelayServing(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n := len(records(t, b, srv.NodeID(), 3)); n != 3 {
		t.Fatalf("%d records after serving again, want 3", n)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The withdrawal of a record the server held itself reaches the other copies by
	// replication, which may still be on its way when Close returns (a loaded machine).
	eventually(t, "no records left after the server left", func() bool { return len(records(t, b, srv.NodeID(), 3)) == 0 })
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
