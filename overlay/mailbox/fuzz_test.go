package mailbox

import (
	"bytes"
	"crypto/x509"
	"testing"

	"github.com/chordphone/chordphone/overlay/identity"
)

// FuzzOpen: envelopes from the network never panic Parse or Open; what parses re-encodes
// to the same bytes; nothing but the sealed original opens.
func FuzzOpen(f *testing.F) {
	bob := ident(f, "bob", identity.KeyECDSAP256)
	good, err := Seal(textMessage("alice", "bob", "hello"), []*x509.Certificate{bob.Cert()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("CPM1"))
	f.Add(append([]byte("CPM1\x01a\x01b"), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("parsed envelope does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded envelope differs")
		}
		if m, err := Open(b, bob.Key, bob.Cert()); err == nil && !bytes.Equal(b, good) {
			t.Fatalf("an envelope other than the sealed one opened: %+v", m)
		}
	})
}
