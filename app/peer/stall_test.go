package peer

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/internal/tcpgate"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestStalledTLSLinkLeavesRouting: RFC 6940 §6.6.5 on running peers. Carol, a client, is
// attached to alice over a TLS link (her bootstrap link). When the link's packets stop on
// the way, a request carol sends over it goes unacknowledged, and once the link's RTO (at
// least 1 s) has passed — well before a silent link is declared dead (7 s) — carol's routing
// no longer uses it: her node has no link to alice and her topology no route. When the
// packets flow again, carol routes through alice again (her client attaches again).
func TestStalledTLSLinkLeavesRouting(t *testing.T) {
	doc := config.SelfSigned("stall.test")
	alice := startTestPeer(t, doc, nil, RelaySettings{Mode: RelayOff, NoClient: true})
	gate := tcpgate.New(t, alice.Addr().String())
	carol, err := New(Config{Profile: t.TempDir(), User: "carol", Overlay: doc.InstanceName, Document: doc, Listen: "127.0.0.1:0",
		Bootstrap: []string{"tls://" + gate.Addr()}, Client: true, Relay: RelaySettings{NoClient: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = carol.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := carol.Join(ctx); err != nil {
		t.Fatal(err)
	}
	routed := func() bool {
		_, ok := carol.chord.NextHop(alice.NodeID())
		return carol.node.Connected(alice.NodeID()) && ok
	}
	eventually(t, "carol routing through alice", routed)
	tls := carol.link.Links()
	if len(tls) != 1 || tls[0].Protocol() != wire.LinkTLSTCPFHNoICE {
		t.Fatalf("carol's links %v: want her TLS bootstrap link only", tls)
	}

	gate.Pause()
	t0 := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: this test; ends with the Ping (answered after Resume, or pctx)
		defer wg.Done()
		_, _ = carol.node.Ping(pctx, []wire.Destination{wire.NodeDestination(alice.NodeID())})
	}()
	defer func() { pcancel(); wg.Wait() }()
	for routed() {
		if time.Since(t0) > 6*time.Second {
			t.Fatalf("carol still routes through a link whose frames are unacknowledged for %v", time.Since(t0))
		}
		time.Sleep(20 * time.Millisecond) // no event for it
	}
	t.Logf("FIGURE TLS link out of routing %v after its packets stopped (RTO %v)", time.Since(t0).Round(time.Millisecond), tls[0].Stats().RTO)
	if err := tls[0].Err(); err != nil {
		t.Fatalf("the link was closed (%v): §6.6.5 keeps it to see if the failure is transient", err)
	}

	gate.Resume()
	eventually(t, "carol routing through alice again", routed)
}
