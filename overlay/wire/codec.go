package wire

import (
	"encoding/binary"
	"fmt"
)

// enc is an append-only encoder with a sticky error.
type enc struct {
	b   []byte
	err error
}

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u24(v uint32) { e.b = append(e.b, byte(v>>16), byte(v>>8), byte(v)) }
func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) raw(p []byte) { e.b = append(e.b, p...) }
func (e *enc) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *enc) fail(format string, a ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("wire: encode: "+format, a...)
	}
}

// vec writes an opaque<0..max> with an n-byte length prefix (RFC 6940 §6.3.1.1).
func (e *enc) vec(n int, p []byte, what string) {
	if uint64(len(p)) > maxFor(n) {
		e.fail("%s: %d bytes exceed %d-byte length prefix", what, len(p), n)
		return
	}
	e.putLen(n, uint64(len(p)))
	e.raw(p)
}
func (e *enc) vec8(p []byte, what string)  { e.vec(1, p, what) }
func (e *enc) vec16(p []byte, what string) { e.vec(2, p, what) }
func (e *enc) vec32(p []byte, what string) { e.vec(4, p, what) }

func maxFor(n int) uint64 { return 1<<(8*uint(n)) - 1 }

func (e *enc) putLen(n int, v uint64) {
	switch n {
	case 1:
		e.u8(uint8(v))
	case 2:
		e.u16(uint16(v))
	case 3:
		e.u24(uint32(v))
	case 4:
		e.u32(uint32(v))
	}
}

// begin reserves an n-byte length prefix; end fills it with the number of
// bytes written since.
func (e *enc) begin(n int) int {
	e.putLen(n, 0)
	return len(e.b)
}

func (e *enc) end(n, start int, what string) {
	l := uint64(len(e.b) - start)
	if l > maxFor(n) {
		e.fail("%s: %d bytes exceed %d-byte length prefix", what, l, n)
		return
	}
	p := e.b[start-n : start]
	switch n {
	case 1:
		p[0] = byte(l)
	case 2:
		binary.BigEndian.PutUint16(p, uint16(l))
	case 3:
		p[0], p[1], p[2] = byte(l>>16), byte(l>>8), byte(l)
	case 4:
		binary.BigEndian.PutUint32(p, uint32(l))
	}
}

// dec is a strict bounds-checked decoder with a sticky *Error. Every length
// prefix is checked against the remaining input before it is used, so no
// allocation is ever sized by an unchecked length field.
type dec struct {
	b   []byte
	err *Error
	op  string
	// own is set when b is a private copy: opaque values then alias it
	// (capacity-limited) instead of being copied one by one.
	own bool
}

func newDec(b []byte, op string) *dec { return &dec{b: b, op: op} }

// newOwnDec copies b once; all decoded opaque values share that copy, so
// callers may reuse b (encoding.BinaryUnmarshaler contract).
func newOwnDec(b []byte, op string) *dec {
	return &dec{b: append([]byte(nil), b...), op: op, own: true}
}

func (d *dec) failCode(code ErrorCode, format string, a ...any) {
	if d.err == nil {
		d.err = errorf(code, d.op, format, a...)
	}
}

func (d *dec) fail(format string, a ...any) { d.failCode(ErrInvalidMessage, format, a...) }

func (d *dec) ok() bool    { return d.err == nil }
func (d *dec) empty() bool { return d.err != nil || len(d.b) == 0 }
func (d *dec) remain() int { return len(d.b) }

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("%s: need %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u8(what string) uint8 {
	p := d.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *dec) u16(what string) uint16 {
	p := d.take(2, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *dec) u24(what string) uint32 {
	p := d.take(3, what)
	if p == nil {
		return 0
	}
	return uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
}

func (d *dec) u32(what string) uint32 {
	p := d.take(4, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *dec) u64(what string) uint64 {
	p := d.take(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// boolean reads a Boolean; values other than 0 and 1 are invalid (RFC 6940 §6.3.1.1).
func (d *dec) boolean(what string) bool {
	v := d.u8(what)
	if v > 1 {
		d.fail("%s: boolean value %d", what, v)
	}
	return v == 1
}

func (d *dec) length(n int, what string) int {
	switch n {
	case 1:
		return int(d.u8(what))
	case 2:
		return int(d.u16(what))
	case 3:
		return int(d.u24(what))
	default:
		v := d.u32(what)
		if uint64(v) > uint64(len(d.b)) {
			d.fail("%s: length %d exceeds %d remaining bytes", what, v, len(d.b))
			return 0
		}
		return int(v)
	}
}

// vecRaw returns the bytes of an n-byte-length-prefixed vector, aliasing the input.
func (d *dec) vecRaw(n int, what string) []byte {
	l := d.length(n, what)
	if d.err != nil {
		return nil
	}
	if l > len(d.b) {
		d.fail("%s: length %d exceeds %d remaining bytes", what, l, len(d.b))
		return nil
	}
	return d.take(l, what)
}

// vec returns a copy of an n-byte-length-prefixed opaque vector.
// The copy is sized by a length already checked against the input.
func (d *dec) vec(n int, what string) []byte {
	p := d.vecRaw(n, what)
	if p == nil {
		return nil
	}
	if len(p) == 0 {
		return []byte{}
	}
	if d.own {
		return p // capacity-limited by take
	}
	return append([]byte(nil), p...)
}

// sub returns a decoder over an n-byte-length-prefixed vector.
func (d *dec) sub(n int, what string) *dec {
	p := d.vecRaw(n, what)
	return &dec{b: p, err: d.err, op: d.op, own: d.own}
}

// fixed returns a decoder over the next n bytes.
func (d *dec) fixed(n int, what string) *dec {
	p := d.take(n, what)
	return &dec{b: p, err: d.err, op: d.op, own: d.own}
}

// join propagates a sub-decoder's error and checks it was fully consumed.
func (d *dec) join(s *dec, what string) {
	if d.err != nil {
		return
	}
	if s.err != nil {
		d.err = s.err
		return
	}
	if len(s.b) != 0 {
		d.fail("%s: %d trailing bytes", what, len(s.b))
	}
}

// done reports the final error, requiring all input consumed.
func (d *dec) done(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%s: %d trailing bytes", what, len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	return nil
}
