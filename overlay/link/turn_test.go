package link

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/pion/turn/v2"

	"github.com/chordphone/chordphone/overlay/wire"
)

// TestTURNRelayCandidate: with a TURN server set, an attachment offers a relayed candidate
// (the hook issue 13's TURN-SERVICE builds on) and the Attach still connects.
func TestTURNRelayCandidate(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := turn.GenerateAuthKey("user", "chordphone", "secret")
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "chordphone",
		AuthHandler: func(username, _ string, _ net.Addr) ([]byte, bool) {
			return key, username == "user"
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	a.t.SetTURNServers([]*stun.URI{{Scheme: stun.SchemeTypeTURN, Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port,
		Username: "user", Password: "secret", Proto: stun.ProtoTypeUDP}})
	ctx := ctxT(t, 20*time.Second)
	att, err := a.t.NewAttachment(ctx, b.id.NodeID(), 0, true)
	if err != nil {
		t.Fatal(err)
	}
	relay := 0
	for _, c := range att.Local().Candidates {
		if c.Type == wire.CandRelay {
			relay++
			t.Logf("relay candidate %v (rel %v)", c.AddrPort, c.RelAddrPort)
		}
	}
	_ = att.Close()
	if relay == 0 {
		t.Fatal("no relayed candidate")
	}
	ra, rb := attach(ctx, t, a, b, 0, b.id.NodeID(), a.id.NodeID())
	if ra.err != nil || rb.err != nil {
		t.Fatalf("attach with TURN configured: %v / %v", ra.err, rb.err)
	}
	exchange(t, a, b, ra.link, rb.link, 10, 100, 10*time.Second)
}
