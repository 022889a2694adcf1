package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Forwarding header layout (RFC 6940 §6.3.2): fixed part of 38 bytes, fragment field at 12,
// length at 16, transaction id at 20, list lengths at 32, 34, 36.
const (
	hdrFixed    = 38
	offFragment = 12
	offLength   = 16
	offTxID     = 20
	// minFragmentBody is the least message body a fragment carries (RFC 6940 §6.7).
	minFragmentBody = 256
	// fragmentLifetime is how long incomplete fragments are kept (RFC 6940 §6.7: 15 s).
	fragmentLifetime = 15 * time.Second
)

func protoName(p wire.OverlayLinkType) string {
	switch p {
	case wire.LinkDTLSUDPSR:
		return "DTLS-UDP-SR"
	case wire.LinkDTLSUDPSRNoICE:
		return "DTLS-UDP-SR-NO-ICE"
	case wire.LinkTLSTCPFHNoICE:
		return "TLS-TCP-FH-NO-ICE"
	}
	return fmt.Sprintf("link-type-%d", p)
}

// headerLen returns the forwarding header length of msg, or 0 if msg has no valid header.
func headerLen(msg []byte) int {
	if len(msg) < hdrFixed || binary.BigEndian.Uint32(msg) != wire.Token {
		return 0
	}
	n := hdrFixed + int(binary.BigEndian.Uint16(msg[32:])) + int(binary.BigEndian.Uint16(msg[34:])) + int(binary.BigEndian.Uint16(msg[36:]))
	if n > len(msg) {
		return 0
	}
	return n
}

func isFragment(msg []byte) bool {
	return headerLen(msg) > 0 && binary.BigEndian.Uint32(msg[offFragment:]) != wire.FragmentUnfragmented
}

// fragment splits msg into RELOAD fragments of at most max bytes each (RFC 6940 §6.7): each
// carries a full copy of the forwarding header with the fragment offset and last bit set, and
// the body is split into equal-sized chunks. A message that fits, or whose header leaves less
// than 256 bytes of body per fragment, is returned whole (IP fragmentation then applies). The
// results are copies.
func fragment(msg []byte, max int) ([][]byte, error) {
	if len(msg) <= max {
		return [][]byte{append([]byte(nil), msg...)}, nil
	}
	h := headerLen(msg)
	if h == 0 {
		return nil, errors.New("not a RELOAD message")
	}
	chunk := max - h
	if chunk < minFragmentBody {
		return [][]byte{append([]byte(nil), msg...)}, nil
	}
	field := binary.BigEndian.Uint32(msg[offFragment:])
	base := field & wire.FragmentOffsetMask
	last := field&wire.FragmentLastBit != 0
	body := msg[h:]
	n := (len(body) + chunk - 1) / chunk
	size := (len(body) + n - 1) / n
	if int(base)+len(body) > int(wire.FragmentOffsetMask) {
		return nil, fmt.Errorf("message body of %d bytes too large to fragment", len(body))
	}
	out := make([][]byte, 0, n)
	for off := 0; off < len(body); off += size {
		end := min(off+size, len(body))
		f := make([]byte, h+end-off)
		copy(f, msg[:h])
		copy(f[h:], body[off:end])
		v := wire.FragmentHighBit | (base + uint32(off))
		if end == len(body) && last {
			v |= wire.FragmentLastBit
		}
		binary.BigEndian.PutUint32(f[offFragment:], v)
		binary.BigEndian.PutUint32(f[offLength:], uint32(len(f)))
		out = append(out, f)
	}
	return out, nil
}

// reassembler holds fragments until a message is whole (RFC 6940 §6.7).
type reassembler struct {
	limit   int // largest message, and bound on buffered bytes
	held    int
	entries map[uint64]*partial
}

type partial struct {
	header  []byte
	pieces  map[uint32][]byte
	total   int // body length, -1 until the last fragment arrives
	have    int
	started time.Time
}

func newReassembler(limit int) *reassembler {
	return &reassembler{limit: limit, entries: map[uint64]*partial{}}
}

// add takes one fragment; it returns the whole message when the fragment completes one.
func (r *reassembler) add(frag []byte, now time.Time) ([]byte, error) {
	for id, p := range r.entries { // RFC 6940 §6.7: time out incomplete fragments
		if now.Sub(p.started) > fragmentLifetime {
			r.held -= p.have
			delete(r.entries, id)
		}
	}
	h := headerLen(frag)
	if h == 0 {
		return nil, errors.New("fragment without a valid forwarding header")
	}
	field := binary.BigEndian.Uint32(frag[offFragment:])
	off := field & wire.FragmentOffsetMask
	body := frag[h:]
	id := binary.BigEndian.Uint64(frag[offTxID:])
	p := r.entries[id]
	if p == nil {
		p = &partial{pieces: map[uint32][]byte{}, total: -1, started: now}
		r.entries[id] = p
	}
	if off == 0 || p.header == nil {
		p.header = append([]byte(nil), frag[:h]...)
	}
	if _, dup := p.pieces[off]; dup {
		return nil, nil
	}
	if int(off)+len(body) > r.limit || r.held+len(body) > 2*r.limit {
		// RFC 6940 §6.7: out of buffer space: drop the message.
		r.held -= p.have
		delete(r.entries, id)
		return nil, fmt.Errorf("fragmented message %x exceeds %d bytes", id, r.limit)
	}
	p.pieces[off] = body
	p.have += len(body)
	r.held += len(body)
	if field&wire.FragmentLastBit != 0 {
		p.total = int(off) + len(body)
	}
	if p.total < 0 || p.have < p.total {
		return nil, nil
	}
	// Check contiguous coverage 0..total.
	msg := make([]byte, len(p.header), len(p.header)+p.total)
	copy(msg, p.header)
	for pos := 0; pos < p.total; {
		piece, ok := p.pieces[uint32(pos)]
		if !ok {
			return nil, nil // overlapping or missing pieces: wait (or time out)
		}
		msg = append(msg, piece...)
		pos += len(piece)
	}
	if len(msg)-len(p.header) != p.total {
		r.held -= p.have
		delete(r.entries, id)
		return nil, fmt.Errorf("fragments of %x overlap", id)
	}
	r.held -= p.have
	delete(r.entries, id)
	binary.BigEndian.PutUint32(msg[offFragment:], wire.FragmentUnfragmented)
	binary.BigEndian.PutUint32(msg[offLength:], uint32(len(msg)))
	return msg, nil
}
