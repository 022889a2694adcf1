package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// fakeLink is a link whose sends go nowhere.
type fakeLink struct {
	id   wire.NodeID
	done chan struct{}
}

func (l *fakeLink) RemoteNodeID() wire.NodeID                  { return l.id }
func (l *fakeLink) Send(ctx context.Context, msg []byte) error { return nil }
func (l *fakeLink) Done() <-chan struct{}                      { return l.done }
func (l *fakeLink) Close() error                               { return nil }

func seedMessages(t testing.TB) [][]byte {
	self, other := idOf(0), idOf(3)
	var out [][]byte
	add := func(code wire.MessageCode, body wire.Body, dests []wire.Destination, via []wire.Destination, ttl uint8) {
		m, err := wire.NewMessage(code, body)
		if err != nil {
			t.Fatal(err)
		}
		m.Header.OverlayHash = wire.OverlayHash("test")
		m.Header.TransactionID = uint64(len(out) + 1)
		m.Header.DestinationList, m.Header.ViaList, m.Header.TTL = dests, via, ttl
		(node.NoSecurity{}).Sign(m)
		b, err := wire.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	me := []wire.Destination{wire.NodeDestination(self)}
	add(wire.CodePingReq, &wire.PingReq{}, me, nil, 100)
	add(wire.CodeUpdateReq, &wire.ChordUpdate{Type: wire.ChordNeighbors, Successors: []wire.NodeID{other}}, me, nil, 100)
	add(wire.CodeRouteQueryReq, &wire.RouteQueryReq{Destination: wire.NodeDestination(other)}, me, nil, 100)
	add(wire.CodeProbeReq, &wire.ProbeReq{RequestedInfo: []wire.ProbeInformationType{1, 2, 3}}, me, []wire.Destination{wire.NodeDestination(other)}, 5)
	add(wire.CodePingReq, &wire.PingReq{}, []wire.Destination{wire.ResourceDestination(wire.ResourceID{1, 2}), wire.NodeDestination(other)}, nil, 0)
	add(wire.CodePingAns, &wire.PingAns{}, []wire.Destination{wire.NodeDestination(self), wire.NodeDestination(other)}, nil, 1)
	add(wire.CodeJoinReq, &wire.JoinReq{JoiningPeerID: other}, me, nil, 100)
	add(wire.CodeLeaveReq, &wire.LeaveReq{LeavingPeerID: other, OverlaySpecificData: []byte{1, 0, 0}}, me, nil, 100)
	add(wire.CodeAttachReq, &wire.AttachReqAns{Ufrag: []byte("x"), Password: []byte("y"), Role: []byte("active")}, me, nil, 100)
	add(wire.CodeAppAttachReq, &wire.AppAttachReq{Application: 5060}, me, nil, 100)
	return out
}

// FuzzReceive feeds arbitrary bytes to a joined node as if a neighbour sent them: it must
// never panic (errors become ErrorResponses or drops).
func FuzzReceive(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	nw := newNet()
	ep, err := nw.Endpoint(idOf(0), "10.0.0.1:6084")
	if err != nil {
		f.Fatal(err)
	}
	n, err := node.New(node.Settings{NodeID: idOf(0), OverlayName: "test", Connector: ep, Topology: newChord(), Logger: discard()})
	if err != nil {
		f.Fatal(err)
	}
	defer n.Close()
	if err := n.Join(context.Background()); err != nil {
		f.Fatal(err)
	}
	from := &fakeLink{id: idOf(3), done: make(chan struct{})}
	f.Fuzz(func(t *testing.T, b []byte) {
		n.Receive(from, b)
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus (CHORDPHONE_WRITE_SEEDS=1).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CHORDPHONE_WRITE_SEEDS") == "" {
		t.Skip("set CHORDPHONE_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzReceive")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReceive")
	os.MkdirAll(dir, 0o755)
	for i, b := range seedMessages(t) {
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, "seed"+strconv.Itoa(i)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
