package config

import (
	"testing"
	"time"
)

// BenchmarkParseVerify: an operator's signed document (3 kinds, 1 root).
func BenchmarkParseVerify(b *testing.B) {
	ca := newTestCA(b, "Overlay CA")
	signer := ca.issue(b, "config-signer", "overlay.test")
	c := New("overlay.test")
	c.RootCerts = append(c.RootCerts, ca.cert)
	c.ConfigurationSigners = []string{nodeHex(signer)}
	c.KindSigners = []string{nodeHex(signer)}
	c.Kinds = []Kind{
		{Name: "SIP-REGISTRATION", DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 8, MaxSize: 1000},
		{Name: "CERTIFICATE_BY_NODE", DataModel: "ARRAY", AccessControl: "NODE-MATCH", MaxCount: 4, MaxSize: 4000},
		{Name: "CERTIFICATE_BY_USER", DataModel: "ARRAY", AccessControl: "USER-MATCH", MaxCount: 4, MaxSize: 4000},
	}
	doc, err := Encode(signer, c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pc, err := ParseOverlay(doc, "overlay.test")
		if err != nil {
			b.Fatal(err)
		}
		if err := pc.Verify(VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPeer: the check a link makes at each handshake.
func BenchmarkVerifyPeer(b *testing.B) {
	ca := newTestCA(b, "Overlay CA")
	cfg := New("overlay.test")
	cfg.RootCerts = append(cfg.RootCerts, ca.cert)
	peer := ca.issue(b, "alice", "overlay.test")
	now := time.Now()
	b.Run("enrolled", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := cfg.VerifyPeer(peer.Chain, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	lan := SelfSigned("lan")
	self, _ := selfSigned(b)
	b.Run("self-signed", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := lan.VerifyPeer(self.Chain, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A signer seen before (every signed message carries its certificate).
	var m TrustMemo
	b.Run("self-signed-remembered", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.VerifyPeer(lan, self.Chain, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
