package config

import (
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// A TrustMemo gives VerifyPeer's answers: an accepted chain is accepted again, for the
// same configuration and within the validity periods only; refusals are checked anew.
func TestTrustMemo(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	cfg := New("overlay.test")
	cfg.RootCerts = append(cfg.RootCerts, ca.cert)
	alice, mallory := ca.issue(t, "alice", "overlay.test"), newTestCA(t, "Other CA").issue(t, "mallory", "overlay.test")
	var m TrustMemo
	now := time.Now()
	for range 2 {
		p, err := m.VerifyPeer(cfg, alice.Chain, now)
		if err != nil || p.User != "alice@overlay.test" || !p.Has(alice.NodeID()) || p.Cert != alice.Chain[0] {
			t.Fatalf("alice: %+v, %v", p, err)
		}
		if _, err := m.VerifyPeer(cfg, mallory.Chain, now); err == nil || !strings.Contains(err.Error(), "not issued by") {
			t.Fatalf("other CA: %v", err)
		}
	}
	// Outside the validity period the chain is checked again (and refused).
	if _, err := m.VerifyPeer(cfg, alice.Chain, alice.Chain[0].NotAfter.Add(time.Hour)); err == nil {
		t.Error("expired certificate accepted from memory")
	}
	// A new configuration revoking alice (bad-node) is not answered from memory.
	next := New("overlay.test")
	next.RootCerts = cfg.RootCerts
	next.BadNodes = []string{alice.NodeID().String()}
	if _, err := m.VerifyPeer(next, alice.Chain, now); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("bad-node in a new configuration: %v", err)
	}
	lan := SelfSigned("lan.test")
	me, _ := identity.NewSelfSigned(mustGen(t), "me", "lan.test", identity.DigestSHA256)
	if p, err := m.VerifyPeer(lan, me.Chain, time.Time{}); err != nil || !p.SelfSigned {
		t.Fatalf("self-signed: %+v, %v", p, err)
	}
	if _, err := m.VerifyPeer(cfg, me.Chain, now); err == nil {
		t.Error("a self-signed chain accepted by another configuration is accepted by one that refuses it")
	}
}
