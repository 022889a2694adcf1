package chord

import (
	"encoding/binary"
	"math/bits"

	"github.com/chordphone/chordphone/overlay/wire"
)

// u128 is an unsigned 128-bit integer: positions and distances on the ring, all
// arithmetic modulo 2^128 (RFC 6940 §10.1).
type u128 struct{ hi, lo uint64 }

func toU(n wire.NodeID) u128 {
	return u128{binary.BigEndian.Uint64(n[:8]), binary.BigEndian.Uint64(n[8:])}
}

func (u u128) id() wire.NodeID {
	var n wire.NodeID
	binary.BigEndian.PutUint64(n[:8], u.hi)
	binary.BigEndian.PutUint64(n[8:], u.lo)
	return n
}

func (u u128) add(v u128) u128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}
}

func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return u128{hi, lo}
}

func (u u128) less(v u128) bool { return u.hi < v.hi || u.hi == v.hi && u.lo < v.lo }

func (u u128) isZero() bool { return u.hi == 0 && u.lo == 0 }

// bitLen is the number of significant bits.
func (u u128) bitLen() int {
	if u.hi != 0 {
		return 64 + bits.Len64(u.hi)
	}
	return bits.Len64(u.lo)
}

// pow2 returns 2^k for 0 <= k < 128.
func pow2(k int) u128 {
	if k >= 64 {
		return u128{1 << uint(k-64), 0}
	}
	return u128{0, 1 << uint(k)}
}

// float returns u / 2^128.
func (u u128) float() float64 {
	return (float64(u.hi) + float64(u.lo)/18446744073709551616.0) / 18446744073709551616.0
}

// dist is the clockwise distance from a to b.
func dist(a, b wire.NodeID) u128 { return toU(b).sub(toU(a)) }

// Between reports whether x lies in the ring interval (a, b] (RFC 6940 §10.1). When
// a == b the interval is the whole ring.
func Between(x, a, b wire.NodeID) bool {
	if a == b {
		return true
	}
	dx := dist(a, x)
	return !dx.isZero() && !dist(a, b).less(dx)
}

// AddPow2 returns id + 2^k mod 2^128.
func AddPow2(id wire.NodeID, k int) wire.NodeID { return toU(id).add(pow2(k)).id() }

// Next returns id + 1 mod 2^128 (RFC 6940 §10.5: the Resource-ID after a Node-ID).
func Next(id wire.NodeID) wire.NodeID { return toU(id).add(u128{0, 1}).id() }

// fingerIndex returns the finger index i (1-based) whose range
// [x+2^(128-i), x+2^(129-i)-1] contains a peer at clockwise distance d (RFC 6940 §10.7.4.2).
func fingerIndex(d u128) int { return 129 - d.bitLen() }

// fingerRange returns the start of finger i's range and its size, as distances.
func fingerRange(i int) (lo, size u128) { return pow2(128 - i), pow2(128 - i) }
