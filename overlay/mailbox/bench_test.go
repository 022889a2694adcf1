package mailbox

import (
	"crypto/x509"
	"testing"

	"github.com/chordphone/chordphone/overlay/identity"
)

// BenchmarkSeal and BenchmarkOpen: the cost of a 100-byte text message sealed to one
// recipient certificate, ECDSA P-256 and RSA-2048, and the envelope's size.
func BenchmarkSeal(b *testing.B) {
	for _, kt := range []identity.KeyType{identity.KeyECDSAP256, identity.KeyRSA2048} {
		bob := ident(b, "bob", kt)
		m := textMessage("alice", "bob", string(make([]byte, 100)))
		b.Run(kt.String(), func(b *testing.B) {
			var n int
			for b.Loop() {
				env, err := Seal(m, []*x509.Certificate{bob.Cert()})
				if err != nil {
					b.Fatal(err)
				}
				n = len(env)
			}
			b.ReportMetric(float64(n), "envelope-bytes")
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, kt := range []identity.KeyType{identity.KeyECDSAP256, identity.KeyRSA2048} {
		bob := ident(b, "bob", kt)
		env, err := Seal(textMessage("alice", "bob", string(make([]byte, 100))), []*x509.Certificate{bob.Cert()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kt.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(env, bob.Key, bob.Cert()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
