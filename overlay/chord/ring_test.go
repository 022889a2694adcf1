package chord

import (
	"testing"

	"github.com/chordphone/chordphone/overlay/wire"
)

func nid(b0, b15 byte) wire.NodeID {
	var n wire.NodeID
	n[0], n[15] = b0, b15
	return n
}

func TestBetween(t *testing.T) {
	a, b, x := nid(0x10, 0), nid(0x20, 0), nid(0x18, 0)
	if !Between(x, a, b) || Between(a, a, b) || !Between(b, a, b) {
		t.Fatal("plain interval (a, b]")
	}
	// Wrapping interval (0xf0.., 0x10..]: contains 0xff.. and 0x00.., not 0x80...
	hi, lo := nid(0xf0, 0), nid(0x10, 0)
	if !Between(nid(0xff, 9), hi, lo) || !Between(nid(0, 0), hi, lo) || Between(nid(0x80, 0), hi, lo) {
		t.Fatal("wrapping interval")
	}
	if !Between(x, a, a) {
		t.Fatal("(a, a] is the whole ring")
	}
}

func TestFingerIndex(t *testing.T) {
	self := nid(0x00, 0)
	// Finger 1 is the peer half way round: [x+2^127, x+2^128-1] (RFC 6940 §10.7.4.2).
	if i := fingerIndex(dist(self, nid(0x80, 0))); i != 1 {
		t.Fatalf("half way: finger %d", i)
	}
	if i := fingerIndex(dist(self, nid(0x7f, 0xff))); i != 2 {
		t.Fatalf("just below half way: finger %d", i)
	}
	if i := fingerIndex(dist(self, nid(0, 1))); i != 128 {
		t.Fatalf("self+1: finger %d", i)
	}
	// Wrap-around: from 0xc0.. the peer at 0x40.. is half way round.
	if i := fingerIndex(dist(nid(0xc0, 0), nid(0x40, 0))); i != 1 {
		t.Fatalf("wrapped: finger %d", i)
	}
	for i := 1; i <= 128; i++ {
		lo, _ := fingerRange(i)
		if fingerIndex(lo) != i {
			t.Fatalf("range start of finger %d has index %d", i, fingerIndex(lo))
		}
	}
	r := randBits(5)
	if r.hi != 0 || r.lo >= 32 {
		t.Fatalf("randBits(5) = %v", r)
	}
	if Next(nid(0xff, 0xff)) != (wire.NodeID{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) && Next(nid(0xff, 0xff))[0] != 0xff {
		t.Fatal("Next")
	}
	var all wire.NodeID
	for i := range all {
		all[i] = 0xff
	}
	if Next(all) != (wire.NodeID{}) {
		t.Fatal("Next wraps to zero")
	}
}
