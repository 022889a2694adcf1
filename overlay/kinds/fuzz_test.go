package kinds

import (
	"testing"

	"github.com/chordphone/chordphone/overlay/wire"
)

// FuzzParseSipRegistration: SIP-REGISTRATION values from the network never
// panic the parser, and what parses re-encodes to a value that parses.
func FuzzParseSipRegistration(f *testing.F) {
	route, _ := RouteRegistration(wire.NodeID{1, 2, 3}, "(sip.schemes=SIP)")
	uri, _ := URIRegistration("sip:bob@example.org")
	f.Add(route)
	f.Add(uri)
	f.Add([]byte{3, 0, 2, 0xaa, 0xbb})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseSipRegistration(b)
		if err != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed value does not encode: %v", err)
		}
		if _, err := ParseSipRegistration(again); err != nil {
			t.Fatalf("re-encoded value does not parse: %v", err)
		}
	})
}

// FuzzNormalizeAoR: AoRs never panic, and normalizing is idempotent.
func FuzzNormalizeAoR(f *testing.F) {
	for _, s := range []string{"sip:alice@example.org", "<sips:Al%69ce@EXAMPLE.org;gr=x>", "bob@b", "tel:+1", "%zz@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeAoR(s)
		if err != nil {
			return
		}
		m, err := NormalizeAoR(n)
		if err != nil {
			// A decoded escape may produce characters that change the parse.
			return
		}
		if m2, err := NormalizeAoR(m); err != nil || m2 != m {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, m, err)
		}
	})
}
