package peer

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/diag"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// diagOverlay starts n storing peers and one more, "dave", registered as a user.
func diagOverlay(t *testing.T, n int) ([]*Peer, *Peer) {
	t.Helper()
	doc := config.SelfSigned("diag.test")
	var peers []*Peer
	var boot []string
	for i := 0; i < n; i++ {
		p := startTestPeer(t, doc, boot, RelaySettings{Mode: RelayOff, NoClient: true})
		boot = append(boot, p.Addr().String())
		peers = append(peers, p)
	}
	d, err := New(Config{Profile: t.TempDir(), User: "dave", Overlay: doc.InstanceName, Document: doc, Listen: "127.0.0.1:0",
		Bootstrap: boot, Relay: RelaySettings{Mode: RelayOff, NoClient: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Register(ctx); err != nil {
		t.Fatal(err)
	}
	return peers, d
}

// TestInspect (issue 20 item 1): a peer inspects another, found by its user name, over the
// overlay (RFC 7851 §4.1): the overlay kinds come back, the host kinds only to the node
// itself (diag.Policy); an expired request gets Error_Message_Expired and a malformed one
// Error_Invalid_Message.
func TestInspect(t *testing.T) {
	peers, dave := diagOverlay(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	asker := peers[0]
	var id wire.NodeID
	var err error
	// The ring may still be settling just after dave registered: the lookup is retried.
	eventually(t, "dave found through the registration lookup", func() bool {
		id, err = asker.ResolveNode(ctx, "dave")
		return err == nil
	})
	if id != dave.NodeID() {
		t.Fatalf("resolve dave: %v, want %v", id, dave.NodeID())
	}
	a, err := asker.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range diag.OverlayKinds {
		if _, ok := a.Info(k); !ok {
			t.Errorf("answer lacks %v: %+v", k, a.Infos)
		}
	}
	for _, k := range diag.HostKinds {
		if _, ok := a.Info(k); ok {
			t.Errorf("another node was told %v", k)
		}
	}
	if v, _ := a.Info(diag.SoftwareVersion); len(v) == 0 {
		t.Error("empty SOFTWARE_VERSION")
	}
	if rt, _ := a.Info(diag.RoutingTableSize); diag.Format(diag.Info{Kind: diag.RoutingTableSize, Contents: rt}) == "0" {
		t.Error("ROUTING_TABLE_SIZE 0 in a four-peer ring")
	}
	if a.Received.IsZero() || a.Initiated.IsZero() || a.Received.Before(a.Initiated.Add(-time.Minute)) {
		t.Errorf("timestamps initiated %v received %v", a.Initiated, a.Received)
	}
	registrations := 0 // SIP-REGISTRATION values (Kind-ID 1) stored across the ring
	for _, p := range append([]*Peer{dave}, peers...) {
		h, err := asker.Inspect(ctx, p.NodeID())
		if err != nil {
			t.Fatal(err)
		}
		c, _ := h.Info(diag.InstancesStored)
		for ; len(c) >= 12; c = c[12:] {
			if binary.BigEndian.Uint32(c) == 1 {
				registrations += int(binary.BigEndian.Uint64(c[4:]))
			}
		}
	}
	// MESSAGES_SENT_RCVD: dave has received the Inspect requests asked of it.
	if c, _ := a.Info(diag.MessagesSentRcvd); !hasCode(c, diag.CodeInspectReq) {
		t.Errorf("MESSAGES_SENT_RCVD of dave lacks inspect requests: %x", c)
	}
	if registrations == 0 {
		t.Error("INSTANCES_STORED shows dave's registration nowhere")
	}
	self, err := dave.Inspect(ctx, dave.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range diag.HostKinds {
		if _, ok := self.Info(k); !ok {
			t.Errorf("the node itself was not told %v", k)
		}
	}

	dest := []wire.Destination{wire.NodeDestination(id)}
	old := diag.Request{Expiration: time.Now().Add(-time.Minute), Initiated: time.Now().Add(-2 * time.Minute), Flags: diag.Flags(diag.AllKinds...)}
	if _, err := asker.node.Call(ctx, dest, diag.CodeInspectReq, &old, nil); !node.IsCode(err, diag.ErrMessageExpired) {
		t.Errorf("expired request: %v, want Error_Message_Expired", err)
	}
	if _, err := asker.node.Request(ctx, dest, diag.CodeInspectReq, rawBody{1, 2, 3}); !node.IsCode(err, wire.ErrInvalidMessage) {
		t.Errorf("malformed request: %v, want Error_Invalid_Message", err)
	}
}

// TestPathTrack (issue 20 item 1): PathTrack (RFC 7851 §4.2) from every peer to dave
// finds a loop-free path that ends at dave, with a round-trip time for each hop.
func TestPathTrack(t *testing.T) {
	peers, dave := diagOverlay(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range peers {
		hops, err := p.PathTrack(ctx, dave.NodeID())
		if err != nil {
			t.Fatalf("path from %v: %v (hops %+v)", p.NodeID(), err, hops)
		}
		if len(hops) == 0 || hops[len(hops)-1].Node != dave.NodeID() {
			t.Fatalf("path from %v does not end at dave: %+v", p.NodeID(), hops)
		}
		seen := map[wire.NodeID]bool{}
		for i, h := range hops {
			if seen[h.Node] || h.Node == p.NodeID() {
				t.Fatalf("path from %v repeats %v", p.NodeID(), h.Node)
			}
			seen[h.Node] = true
			if h.RTT <= 0 {
				t.Errorf("hop %d without round-trip time", i)
			}
			if _, ok := h.Info(diag.AppUptime); !ok {
				t.Errorf("hop %d without APP_UPTIME", i)
			}
		}
	}
}

// rawBody sends bytes as they are.
type rawBody []byte

func (b rawBody) MarshalBinary() ([]byte, error) { return b, nil }
func (b rawBody) UnmarshalBinary([]byte) error   { return nil }

// hasCode reports whether a MESSAGES_SENT_RCVD value counts received messages of code.
func hasCode(c []byte, code wire.MessageCode) bool {
	for ; len(c) >= 18; c = c[18:] {
		if wire.MessageCode(binary.BigEndian.Uint16(c)) == code && binary.BigEndian.Uint64(c[10:]) > 0 {
			return true
		}
	}
	return false
}
