package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MinFragmentPayload is the least message data every fragment must carry
// (RFC 6940 §6.7: at least 256 bytes of the message body).
const MinFragmentPayload = 256

// Fragment splits an encoded message (or fragment) so that every piece is
// at most mtu bytes (RFC 6940 §6.7). Each piece carries a full copy of the
// forwarding header with fragment offset, last-fragment bit and length set;
// the data after the header is split into equal-sized chunks. Callers
// should pass the path MTU minus 32 to leave room for the via list to grow.
// If the message fits, or the header leaves room for fewer than 256 bytes
// of data, the message is returned unchanged as the only piece (RFC 6940
// §6.7: IP-layer fragmentation then applies).
func Fragment(msg []byte, mtu int) ([][]byte, error) {
	h, hdrLen, err := DecodeHeader(msg)
	if err != nil {
		return nil, fmt.Errorf("wire: fragment: %w", err)
	}
	if len(msg) <= mtu || mtu-hdrLen < MinFragmentPayload {
		return [][]byte{msg}, nil
	}
	payload := msg[hdrLen:]
	room := mtu - hdrLen
	n := (len(payload) + room - 1) / room
	size := (len(payload) + n - 1) / n // equal-sized chunks
	base := h.FragmentOffset()
	if uint64(base)+uint64(len(payload)) > uint64(FragmentOffsetMask)+1 {
		return nil, fmt.Errorf("wire: fragment: offset %d + %d bytes exceeds 24 bits", base, len(payload))
	}
	out := make([][]byte, 0, n)
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		f := make([]byte, hdrLen+end-off)
		copy(f, msg[:hdrLen])
		copy(f[hdrLen:], payload[off:end])
		field := FragmentHighBit | (base + uint32(off))
		if end == len(payload) && h.IsLastFragment() {
			field |= FragmentLastBit
		}
		binary.BigEndian.PutUint32(f[offFragment:], field)
		binary.BigEndian.PutUint32(f[offLength:], uint32(len(f)))
		out = append(out, f)
	}
	return out, nil
}

// DefaultReassemblyTimeout is the maximum request lifetime after which
// incomplete fragments are dropped (RFC 6940 §6.7: 15 seconds).
const DefaultReassemblyTimeout = 15 * time.Second

// Reassembler collects fragments (RFC 6940 §6.7) with bounded memory and a
// timeout. It is safe for concurrent use. Time is passed in by the caller
// so that expiry is deterministic.
type Reassembler struct {
	// MaxMessageSize bounds one reassembled message (0 = DefaultMaxMessageSize).
	MaxMessageSize int
	// MaxBytes bounds the data buffered for all incomplete messages
	// (0 = 64 * MaxMessageSize). When full, the oldest messages are dropped.
	MaxBytes int
	// Timeout drops incomplete messages this old (0 = DefaultReassemblyTimeout).
	Timeout time.Duration

	mu      sync.Mutex
	pending map[reasmKey]*partial
	// oversize marks messages found larger than MaxMessageSize: their other fragments are
	// dropped without buffering, and a late first fragment still yields the head.
	oversize map[reasmKey]time.Time
	swept    time.Time
	bytes    int
}

// maxOversize bounds the memory of messages found too large.
const maxOversize = 4096

type reasmKey struct {
	overlay uint32
	txid    uint64
}

type partial struct {
	started time.Time
	header  []byte // forwarding header of the offset-0 fragment
	chunks  map[uint32][]byte
	total   int // data length once the last fragment is seen, else -1
	bytes   int
}

func (r *Reassembler) limits() (maxMsg, maxBytes int, timeout time.Duration) {
	maxMsg = r.MaxMessageSize
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageSize
	}
	maxBytes = r.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 64 * maxMsg
	}
	timeout = r.Timeout
	if timeout <= 0 {
		timeout = DefaultReassemblyTimeout
	}
	return
}

// Add takes one received message or fragment. For an unfragmented message
// it returns msg itself. For a fragment it returns nil, nil until the
// message is complete, then the reassembled message (fragment field
// 0xC0000000, length updated). Errors are *Error.
//
// A fragment that makes its message exceed MaxMessageSize yields
// Error_Message_Too_Large and drops the partial message; the message's other
// fragments are then dropped unbuffered until the timeout. So that the
// receiver can answer the request with Error_Message_Too_Large (RFC 6940
// §6.6), Add then also returns, with the error, the head of the message once
// its first fragment is known: its first MaxMessageSize+1 bytes (never
// more; data not received is zero), unfragmented, length field set — a
// message that is still over the limit and carries the forwarding header and
// message code. The head comes with the fragment found over the limit if the
// first fragment came before, else with the first fragment.
//
// A completed message is forgotten: fragments of the same transaction
// received later are reassembled again (RFC 6940 §6.2.1: an end-to-end
// retransmission keeps the transaction id; the receiver's transaction cache
// answers it again). A late duplicate fragment thus waits, bounded by
// MaxBytes, until the timeout.
func (r *Reassembler) Add(msg []byte, now time.Time) ([]byte, error) {
	h, hdrLen, err := DecodeHeader(msg)
	if err != nil {
		return nil, err
	}
	if !h.IsFragment() {
		return msg, nil
	}
	maxMsg, maxBytes, timeout := r.limits()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now, timeout)
	if r.pending == nil {
		r.pending = make(map[reasmKey]*partial)
	}
	k := reasmKey{h.OverlayHash, h.TransactionID}
	p := r.pending[k]
	off := h.FragmentOffset()
	data := msg[hdrLen:]
	end := int(off) + len(data)
	if _, big := r.oversize[k]; big || hdrLen+end > maxMsg || len(data) > maxBytes {
		// RFC 6940 §6.6: a message larger than max-message-size is answered with
		// Error_Message_Too_Large; it is never buffered beyond the limit.
		var head []byte
		switch {
		case p != nil && p.header != nil:
			head = p.head(maxMsg, off, data)
		case off == 0:
			head = (&partial{header: msg[:hdrLen]}).head(maxMsg, off, data)
		}
		if p != nil {
			r.dropLocked(k, p)
		}
		if big {
			return head, errorf(ErrMessageTooLarge, "reassembly", "fragment of a message over the limit %d", maxMsg)
		}
		if r.oversize == nil || len(r.oversize) >= maxOversize {
			r.oversize = make(map[reasmKey]time.Time)
		}
		r.oversize[k] = now
		return head, errorf(ErrMessageTooLarge, "reassembly", "fragment ends at %d, message limit %d", hdrLen+end, maxMsg)
	}
	if p == nil {
		p = &partial{started: now, chunks: make(map[uint32][]byte), total: -1}
		r.pending[k] = p
	}
	if p.total >= 0 && end > p.total || h.IsLastFragment() && p.total >= 0 && end != p.total {
		r.dropLocked(k, p)
		return nil, errorf(ErrInvalidMessage, "reassembly", "fragment [%d,%d) inconsistent with length %d", off, end, p.total)
	}
	if h.IsLastFragment() {
		p.total = end
	}
	if _, dup := p.chunks[off]; !dup && len(p.chunks) >= maxMsg/MinFragmentPayload+2 {
		// Fragments carry at least 256 bytes of data (RFC 6940 §6.7), so a
		// message has at most maxMsg/256+1 of them; more is an attack.
		r.dropLocked(k, p)
		return nil, errorf(ErrInvalidMessage, "reassembly", "too many fragments")
	}
	if !p.agrees(off, data) {
		// Fragments may overlap (a message refragmented differently on another path), but
		// never with other bytes: that is a forgery, and the message is dropped.
		r.dropLocked(k, p)
		return nil, errorf(ErrInvalidMessage, "reassembly", "fragment [%d,%d) overlaps another with different data", off, end)
	}
	if old, dup := p.chunks[off]; dup && len(old) >= len(data) {
		return nil, nil // duplicate
	} else if dup {
		p.bytes -= len(old)
		r.bytes -= len(old)
	}
	// Bound memory: drop the oldest other partials until this chunk fits.
	for r.bytes+len(data) > maxBytes {
		if !r.dropOldestLocked(k) {
			r.dropLocked(k, p)
			return nil, errorf(ErrMessageTooLarge, "reassembly", "reassembly buffer full")
		}
	}
	p.chunks[off] = append([]byte(nil), data...)
	p.bytes += len(data)
	r.bytes += len(data)
	if off == 0 {
		p.header = append([]byte(nil), msg[:hdrLen]...)
	}
	if p.total < 0 || p.header == nil {
		return nil, nil
	}
	// Check coverage of [0, total).
	offs := make([]uint32, 0, len(p.chunks))
	for o := range p.chunks {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	covered := 0
	for _, o := range offs {
		if int(o) > covered {
			return nil, nil // gap
		}
		covered = max(covered, int(o)+len(p.chunks[o]))
	}
	if covered < p.total {
		return nil, nil
	}
	out := make([]byte, len(p.header)+p.total)
	copy(out, p.header)
	for _, o := range offs {
		copy(out[len(p.header)+int(o):], p.chunks[o])
	}
	binary.BigEndian.PutUint32(out[offFragment:], FragmentUnfragmented)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)))
	r.dropLocked(k, p)
	return out, nil
}

// agrees reports whether data at offset off has the same bytes as every buffered chunk
// where they overlap.
func (p *partial) agrees(off uint32, data []byte) bool {
	lo, hi := int(off), int(off)+len(data)
	for o, c := range p.chunks {
		a, b := max(lo, int(o)), min(hi, int(o)+len(c))
		if a < b && !bytes.Equal(data[a-lo:b-lo], c[a-int(o):b-int(o)]) {
			return false
		}
	}
	return true
}

// head returns the first maxMsg+1 bytes of the message whose first fragment
// is known, from the buffered chunks and the chunk data at offset off (gaps
// and data not received are zero), marked unfragmented with the length field
// set: it stands for a message too large to reassemble, nil if the forwarding
// header alone exceeds maxMsg (RFC 6940 §6.6: no error then).
func (p *partial) head(maxMsg int, off uint32, data []byte) []byte {
	if len(p.header) > maxMsg {
		return nil
	}
	out := make([]byte, maxMsg+1)
	copy(out, p.header)
	body := out[len(p.header):]
	for o, c := range p.chunks {
		if int(o) < len(body) {
			copy(body[o:], c)
		}
	}
	if int(off) < len(body) {
		copy(body[off:], data)
	}
	binary.BigEndian.PutUint32(out[offFragment:], FragmentUnfragmented)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)))
	return out
}

// Expire drops incomplete messages older than the timeout at time now and
// returns how many were dropped.
func (r *Reassembler) Expire(now time.Time) int {
	_, _, timeout := r.limits()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expireLocked(now, timeout)
}

// Pending returns the number of incomplete messages and their buffered bytes.
func (r *Reassembler) Pending() (messages, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending), r.bytes
}

func (r *Reassembler) expireLocked(now time.Time, timeout time.Duration) int {
	if now.Sub(r.swept) >= time.Second || now.Before(r.swept) {
		r.swept = now
		for k, t := range r.oversize {
			if now.Sub(t) >= timeout {
				delete(r.oversize, k)
			}
		}
	}
	n := 0
	for k, p := range r.pending {
		if now.Sub(p.started) >= timeout {
			r.dropLocked(k, p)
			n++
		}
	}
	return n
}

func (r *Reassembler) dropLocked(k reasmKey, p *partial) {
	r.bytes -= p.bytes
	delete(r.pending, k)
}

func (r *Reassembler) dropOldestLocked(except reasmKey) bool {
	var ok bool
	var ok2 reasmKey
	var oldest *partial
	for k, p := range r.pending {
		if k == except {
			continue
		}
		if oldest == nil || p.started.Before(oldest.started) {
			oldest, ok2, ok = p, k, true
		}
	}
	if ok {
		r.dropLocked(ok2, oldest)
	}
	return ok
}
