package node_test

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

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
// checks that a request signed with the wrong key is dropped unanswered.
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
	// §6.3.4: a request whose signature fails is dropped silently (no answer to a
	// sender that cannot be trusted), not answered with Error_Forbidden.
	drops := r.peers[0].n.Stats().DropReasons["request signature"]
	_, err = n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(r.peers[0].n.ID())}, node.WithReliabilityTimer(100*time.Millisecond))
	if !errors.Is(err, node.ErrTimeout) {
		t.Fatalf("badly signed ping: got %v, want no answer (ErrTimeout)", err)
	}
	if got := r.peers[0].n.Stats().DropReasons["request signature"]; got <= drops {
		t.Fatalf("badly signed ping not counted as dropped for its signature")
	}
}

// TestSignerIdentityInteroperates: a certificate with one Node-ID signs with cert_hash, the
// identity other RELOAD implementations look up; only a certificate with several Node-IDs
// uses cert_hash_node_id, naming the one that signs (RFC 6940 §6.3.4). A ring of RSA-2048
// (RSASSA-PKCS1-v1_5 with SHA-256, which every implementation must support) and ECDSA P-256
// peers verifies each other's messages.
func TestSignerIdentityInteroperates(t *testing.T) {
	single := newIdentity(t)
	m, err := wire.NewMessage(wire.CodePingReq, &wire.PingReq{})
	if err != nil {
		t.Fatal(err)
	}
	sec := &node.CertSecurity{NodeID: single.NodeID(), Key: single.Key, Chain: single.Chain}
	if err := sec.Sign(m); err != nil {
		t.Fatal(err)
	}
	if got := m.Security.Signature.Identity.Type; got != wire.IdentityCertHash {
		t.Fatalf("single-Node-ID certificate signs with identity type %d, want cert_hash (%d)", got, wire.IdentityCertHash)
	}
	if _, err := sec.Verify(m); err != nil {
		t.Fatalf("cert_hash signature: %v", err)
	}
	// A certificate with two Node-IDs (as an enrollment server may issue).
	key, _ := identity.GenerateKey(identity.KeyECDSAP256)
	ids := []wire.NodeID{{1, 2, 3}, {4, 5, 6}}
	tmpl, err := identity.CertTemplate(ids, "multi@test", "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	multi := &node.CertSecurity{NodeID: ids[1], Key: key, Chain: []*x509.Certificate{cert}}
	m2, _ := wire.NewMessage(wire.CodePingReq, &wire.PingReq{})
	if err := multi.Sign(m2); err != nil {
		t.Fatal(err)
	}
	if got, want := m2.Security.Signature.Identity, wire.CertHashNodeIDIdentity(ids[1], cert); got.Type != want.Type || string(got.Hash) != string(want.Hash) {
		t.Fatalf("multi-Node-ID certificate: identity %+v, want cert_hash_node_id of the signing Node-ID", got)
	}
	if _, err := multi.Verify(m2); err != nil {
		t.Fatalf("cert_hash_node_id signature: %v", err)
	}

	// Mixed ring: RSA-2048 and ECDSA P-256.
	r := &ring{t: t, nw: newNet()}
	t.Cleanup(r.close)
	for i, kt := range []identity.KeyType{identity.KeyRSA2048, identity.KeyECDSAP256, identity.KeyRSA2048} {
		k, err := identity.GenerateKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		id, err := identity.NewSelfSigned(k, "u", "test", identity.DigestSHA256)
		if err != nil {
			t.Fatal(err)
		}
		sec := &node.CertSecurity{NodeID: id.NodeID(), Key: id.Key, Chain: id.Chain}
		r.add(id.NodeID(), func(_ int, s *node.Settings) { s.Security = sec }, i)
	}
	for _, p := range r.peers {
		for _, q := range r.peers {
			resp, err := p.n.Ping(ctx(t), []wire.Destination{wire.NodeDestination(q.n.ID())})
			if err != nil || resp.From != q.n.ID() {
				t.Fatalf("signed ping between RSA and ECDSA peers: %v", err)
			}
		}
	}
}
