package node_test

import (
	"testing"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

func newIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, "u", "test", identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCertSecurity runs a ring whose messages are all signed (RFC 6940 §6.3.4) and
// checks that a request signed with the wrong key is refused with Error_Forbidden.
func TestCertSecurity(t *testing.T) {
	ids := []*identity.Identity{newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)}
	rogue := newIdentity(t)
	r := &ring{t: t, nw: newNet()}
	t.Cleanup(r.close)
	for i, id := range ids[:3] {
		sec := &node.CertSecurity{NodeID: id.NodeID(), Key: id.Key, Chain: id.Chain}
		r.add(id.NodeID(), func(_ int, s *node.Settings) { s.Security = sec }, i)
	}
	// Signed joins, updates and routed pings work.
	for _, p := range r.peers {
		for _, q := range r.peers {
			resp, err := p.n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(q.n.ID())})
			if err != nil || resp.From != q.n.ID() {
				t.Fatalf("signed ping: %v", err)
			}
		}
	}
	// The rogue peer presents its certificate but signs with another key: every
	// request it makes fails verification.
	id := ids[3]
	ep, err := r.nw.Endpoint(id.NodeID(), "10.0.0.99:6084")
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Settings{NodeID: id.NodeID(), OverlayName: "test", Connector: ep, Topology: newChord(),
		Security: &node.CertSecurity{NodeID: id.NodeID(), Key: rogue.Key, Chain: id.Chain}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	defer ep.Close()
	l, err := n.Bootstrap(ctx(t), []string{r.peers[0].ep.Addr()})
	if err != nil || len(l) != 1 {
		t.Fatal(err)
	}
	_, err = n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[0].n.ID())})
	if !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("badly signed ping: got %v, want Error_Forbidden", err)
	}
}
