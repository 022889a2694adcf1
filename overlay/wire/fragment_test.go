package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

func bigMessage(t testing.TB, size int, txid uint64) []byte {
	t.Helper()
	m := sampleMessage(sample{CodePingReq, &PingReq{Padding: bytes.Repeat([]byte{0x5a}, size)}}, txid)
	for i := range m.Header.ViaList[0].Node {
		m.Header.ViaList[0].Node[i] = byte(txid)
	}
	raw, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestFragmentReassemble(t *testing.T) {
	raw := bigMessage(t, 4000, 42)
	frags, err := Fragment(raw, 1200)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != 4 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, f := range frags {
		if len(f) > 1200 {
			t.Fatalf("fragment %d is %d bytes", i, len(f))
		}
		h, _, err := DecodeHeader(f)
		if err != nil {
			t.Fatalf("fragment %d header: %v", i, err)
		}
		if h.IsLastFragment() != (i == len(frags)-1) || !h.IsFragment() {
			t.Fatalf("fragment %d flags %#x", i, h.Fragment)
		}
		if _, err := Decode(f, 0); CodeOf(err) != ErrInvalidMessage {
			t.Fatalf("fragment decoded as message: %v", err)
		}
	}
	// Deliver in a shuffled order with a duplicate.
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(frags))
	order = append(order, order[1])
	order[len(frags)-1], order[len(frags)] = order[len(frags)], order[len(frags)-1]
	var r Reassembler
	now := time.Unix(1000, 0)
	var out []byte
	for i, j := range order {
		got, err := r.Add(frags[j], now)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			if out != nil || i != len(frags) {
				t.Fatalf("completed at step %d", i)
			}
			out = got
		}
	}
	if !bytes.Equal(out, raw) {
		t.Fatal("reassembled message differs")
	}
	if n, b := r.Pending(); n != 0 || b != 0 {
		t.Fatalf("pending %d/%d", n, b)
	}
	// Refragmenting a fragment on the path keeps offsets absolute.
	sub, err := Fragment(frags[1], 700)
	if err != nil || len(sub) != 2 {
		t.Fatalf("refragment: %d %v", len(sub), err)
	}
	var r2 Reassembler
	var done []byte
	for _, f := range append([][]byte{frags[0], frags[2], frags[3]}, sub...) {
		if got, err := r2.Add(f, now); err != nil {
			t.Fatal(err)
		} else if got != nil {
			done = got
		}
	}
	if !bytes.Equal(done, raw) {
		t.Fatal("refragmented reassembly differs")
	}
}

// TestReassemblerRetransmission: RFC 6940 §6.2.1: an end-to-end retransmission keeps the
// transaction id. Its fragments, arriving after the first transmission was reassembled, are
// reassembled again (the node's transaction cache answers it), while a lone late duplicate
// fragment is only buffered, bounded, until the timeout.
func TestReassemblerRetransmission(t *testing.T) {
	t0 := time.Unix(7000, 0)
	raw := bigMessage(t, 3000, 9)
	frags, err := Fragment(raw, 1000)
	if err != nil || len(frags) < 3 {
		t.Fatalf("fragment: %d %v", len(frags), err)
	}
	r := Reassembler{MaxMessageSize: 5000, MaxBytes: 8000}
	deliver := func(at time.Time, fs ...[]byte) (whole [][]byte) {
		t.Helper()
		for _, f := range fs {
			got, err := r.Add(f, at)
			if err != nil {
				t.Fatal(err)
			}
			if got != nil {
				whole = append(whole, got)
			}
		}
		return whole
	}
	for i, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(3 * time.Second), t0.Add(7 * time.Second)} {
		got := deliver(at, frags...)
		if len(got) != 1 || !bytes.Equal(got[0], raw) {
			t.Fatalf("transmission %d: %d messages reassembled, want the message once", i+1, len(got))
		}
		if n, b := r.Pending(); n != 0 || b != 0 {
			t.Fatalf("transmission %d: pending %d/%d after completion", i+1, n, b)
		}
	}
	// A late duplicate of one fragment (a lost link-layer ack) completes nothing; it waits
	// for the rest until the timeout, within MaxBytes.
	if got := deliver(t0.Add(8*time.Second), frags[1]); got != nil {
		t.Fatal("a lone duplicate fragment completed a message")
	}
	if n, b := r.Pending(); n != 1 || b != len(frags[1])-headerLenOf(t, frags[1]) {
		t.Fatalf("pending %d/%d after a late duplicate", n, b)
	}
	if r.Expire(t0.Add(8*time.Second+DefaultReassemblyTimeout)) != 1 {
		t.Fatal("late duplicate not expired")
	}
	// Retransmissions of many messages never buffer more than MaxBytes.
	for i := range 50 {
		m := bigMessage(t, 3000, uint64(500+i))
		fs, _ := Fragment(m, 1000)
		at := t0.Add(9 * time.Second)
		if got := deliver(at, fs...); len(got) != 1 {
			t.Fatalf("message %d not reassembled", i)
		}
		if got := deliver(at, fs[0]); got != nil {
			t.Fatal("duplicate first fragment completed a message")
		}
		if _, b := r.Pending(); b > 8000 {
			t.Fatalf("buffered %d bytes > bound", b)
		}
	}
}

// TestReassemblerOversizeHead: RFC 6940 §6.6: a request larger than max-message-size is
// answered with Error_Message_Too_Large. The reassembler never buffers more than the limit,
// but hands out the head of the message (header and message code) so the receiver can answer.
func TestReassemblerOversizeHead(t *testing.T) {
	t0 := time.Unix(9000, 0)
	const limit = 2000
	raw := bigMessage(t, 3000, 11)
	frags, err := Fragment(raw, 1000)
	if err != nil || len(frags) < 4 {
		t.Fatalf("fragment: %d %v", len(frags), err)
	}
	hl := headerLenOf(t, raw)
	checkHead := func(what string, head []byte, err error, prefix int) {
		t.Helper()
		wantCode(t, err, ErrMessageTooLarge)
		if len(head) != limit+1 {
			t.Fatalf("%s: head of %d bytes, want %d", what, len(head), limit+1)
		}
		h, n, err := DecodeHeader(head)
		if err != nil {
			t.Fatalf("%s: head header: %v", what, err)
		}
		if n != hl || h.IsFragment() || h.TransactionID != 11 || int(h.Length) != limit+1 {
			t.Fatalf("%s: head header %+v", what, h)
		}
		if !bytes.Equal(head[hl:hl+prefix], raw[hl:hl+prefix]) || !bytes.Equal(head[:offFragment], raw[:offFragment]) {
			t.Fatalf("%s: head is not the message's beginning", what)
		}
		if codeAt := CodePingReq; MessageCode(binary.BigEndian.Uint16(head[hl:])) != codeAt {
			t.Fatalf("%s: message code lost", what)
		}
	}
	r := Reassembler{MaxMessageSize: limit}
	var heads int
	for _, f := range frags {
		head, err := r.Add(f, t0)
		if err == nil {
			if head != nil {
				t.Fatal("oversize message reassembled")
			}
			continue
		}
		if head != nil {
			heads++
			checkHead("in order", head, err, limit+1-hl)
		} else {
			wantCode(t, err, ErrMessageTooLarge)
		}
		if n, b := r.Pending(); n != 0 || b != 0 {
			t.Fatalf("oversize message buffered: %d/%d", n, b)
		}
	}
	if heads != 1 {
		t.Fatalf("%d heads for one oversize message, want 1", heads)
	}
	// An end-to-end retransmission: its first fragment yields the head again, the rest nothing.
	heads = 0
	for _, f := range frags {
		head, err := r.Add(f, t0.Add(2*time.Second))
		wantCode(t, err, ErrMessageTooLarge)
		if head != nil {
			heads++
			checkHead("retransmitted", head, err, len(frags[0])-hl)
		}
	}
	if n, b := r.Pending(); heads != 1 || n != 0 || b != 0 {
		t.Fatalf("retransmission: %d heads, pending %d/%d", heads, n, b)
	}
	// Out of order: the last fragment first, the first fragment last still yields the head.
	r2 := Reassembler{MaxMessageSize: limit}
	head, err := r2.Add(frags[len(frags)-1], t0)
	if head != nil {
		t.Fatal("head without the first fragment")
	}
	wantCode(t, err, ErrMessageTooLarge)
	for _, f := range frags[1 : len(frags)-1] {
		if head, err := r2.Add(f, t0); head != nil || CodeOf(err) != ErrMessageTooLarge {
			t.Fatalf("fragment of an oversize message: %v %v", head != nil, err)
		}
	}
	head, err = r2.Add(frags[0], t0)
	checkHead("out of order", head, err, len(frags[0])-hl)
	// The mark lasts the reassembly timeout.
	r2.Expire(t0.Add(DefaultReassemblyTimeout))
	if head, err := r2.Add(frags[0], t0.Add(DefaultReassemblyTimeout+time.Second)); head != nil || err != nil {
		t.Fatalf("first fragment after the timeout: %v %v", head != nil, err)
	}
	// A forwarding header over the limit: no head (RFC 6940 §6.6: close without an error).
	r3 := Reassembler{MaxMessageSize: hl - 1}
	head, err = r3.Add(frags[0], t0)
	wantCode(t, err, ErrMessageTooLarge)
	if head != nil {
		t.Fatal("head of a message whose header exceeds the limit")
	}
}

func headerLenOf(t *testing.T, msg []byte) int {
	t.Helper()
	_, n, err := DecodeHeader(msg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFragmentSmallOrUnsplittable(t *testing.T) {
	raw := bigMessage(t, 100, 1)
	fs, err := Fragment(raw, 1500)
	if err != nil || len(fs) != 1 || !bytes.Equal(fs[0], raw) {
		t.Fatal("small message split")
	}
	// Less than 256 bytes of room after the header: not fragmented (§6.7).
	big := bigMessage(t, 3000, 1)
	fs, err = Fragment(big, 300)
	if err != nil || len(fs) != 1 {
		t.Fatalf("unsplittable: %d %v", len(fs), err)
	}
	var r Reassembler
	got, err := r.Add(raw, time.Now())
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatal("unfragmented message not passed through")
	}
}

func TestReassemblerTimeoutAndBounds(t *testing.T) {
	t0 := time.Unix(5000, 0)
	raw := bigMessage(t, 3000, 7)
	frags, _ := Fragment(raw, 1000)
	r := Reassembler{MaxMessageSize: 5000, Timeout: 15 * time.Second}
	if got, err := r.Add(frags[0], t0); got != nil || err != nil {
		t.Fatal(got, err)
	}
	if n, _ := r.Pending(); n != 1 {
		t.Fatal("not pending")
	}
	if r.Expire(t0.Add(14*time.Second)) != 0 {
		t.Fatal("expired early")
	}
	if r.Expire(t0.Add(15*time.Second)) != 1 {
		t.Fatal("not expired")
	}
	// After expiry the rest cannot complete the message.
	for _, f := range frags[1:] {
		if got, err := r.Add(f, t0.Add(16*time.Second)); got != nil || err != nil {
			t.Fatal("completed after expiry", err)
		}
	}

	// Too large a message is refused.
	small := Reassembler{MaxMessageSize: 2000}
	var err error
	for _, f := range frags {
		if _, err = small.Add(f, t0); err != nil {
			break
		}
	}
	wantCode(t, err, ErrMessageTooLarge)
	if n, b := small.Pending(); n != 0 || b != 0 {
		t.Fatalf("oversize partial kept: %d/%d", n, b)
	}

	// Memory bound: many partial messages evict the oldest.
	bounded := Reassembler{MaxMessageSize: 5000, MaxBytes: 4000}
	for i := range 20 {
		m := bigMessage(t, 3000, uint64(100+i))
		fs, _ := Fragment(m, 1000)
		if _, err := bounded.Add(fs[0], t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, b := bounded.Pending(); b > 4000 {
			t.Fatalf("buffered %d bytes > bound", b)
		}
	}
}

// TestReassemblerOverlap: fragments of one message may overlap (refragmented differently on
// two paths, RFC 6940 §6.7) and then reassemble; an overlapping fragment with other bytes
// drops the message (a forgery: Error_Invalid_Message), and a later complete set of the
// same transaction reassembles again.
func TestReassemblerOverlap(t *testing.T) {
	t0 := time.Unix(5000, 0)
	raw := bigMessage(t, 3000, 9)
	coarse, _ := Fragment(raw, 1600)
	fine, _ := Fragment(raw, 700)
	var r Reassembler
	if got, err := r.Add(coarse[0], t0); got != nil || err != nil {
		t.Fatal(got, err)
	}
	var got []byte
	for _, f := range fine[1:] {
		var err error
		if got, err = r.Add(f, t0); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("overlapping fragments with the same bytes did not reassemble the message")
	}

	_, hl, _ := DecodeHeader(fine[1])
	forged := append([]byte(nil), fine[1]...)
	forged[hl+10] ^= 0xff
	if got, err := r.Add(coarse[0], t0); got != nil || err != nil {
		t.Fatal(got, err)
	}
	got, err := r.Add(forged, t0)
	wantCode(t, err, ErrInvalidMessage)
	if n, b := r.Pending(); got != nil || n != 0 || b != 0 {
		t.Fatalf("after a conflicting overlap: message %d bytes, %d partial (%d bytes) kept", len(got), n, b)
	}
	for _, f := range coarse {
		got, _ = r.Add(f, t0)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("the genuine fragments did not reassemble after the forgery was dropped")
	}
}

func TestFramingStreamAndAcks(t *testing.T) {
	var buf bytes.Buffer
	msgs := [][]byte{bigMessage(t, 10, 1), bigMessage(t, 2000, 2)}
	for i, m := range msgs {
		f, err := DataFrame(uint32(i), m)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(f)
		buf.Write(AckFrame(uint32(i), 0xfffffffe))
	}
	stream := buf.Bytes()
	// FrameSize splits the stream.
	var sizes []int
	for b := stream; len(b) > 0; {
		n, ok, err := FrameSize(b)
		if err != nil || !ok {
			t.Fatal(err)
		}
		if _, err := ParseFrame(b[:n]); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
		b = b[n:]
	}
	if len(sizes) != 4 {
		t.Fatalf("%d frames", len(sizes))
	}
	r := bytes.NewReader(stream)
	for i := range msgs {
		f, err := ReadFrame(r, 5000)
		if err != nil || f.Type != FrameData || f.Sequence != uint32(i) || !bytes.Equal(f.Message, msgs[i]) {
			t.Fatalf("data frame %d: %v", i, err)
		}
		a, err := ReadFrame(r, 5000)
		if err != nil || a.Type != FrameAck || a.Received != 0xfffffffe {
			t.Fatalf("ack frame %d: %v", i, err)
		}
	}
	if _, err := ReadFrame(r, 5000); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	// Oversize frames are refused before reading the payload.
	big, _ := DataFrame(0, make([]byte, 6000))
	_, err := ReadFrame(bytes.NewReader(big), 5000)
	wantCode(t, err, ErrMessageTooLarge)
	// Malformed frames.
	for _, b := range [][]byte{{}, {0x80, 0, 0}, {0x81, 0, 0, 0, 0}, {0x7f}, append(AckFrame(1, 2), 0)} {
		if _, err := ParseFrame(b); err == nil {
			t.Fatalf("frame %x accepted", b)
		}
	}
	d, _ := DataFrame(1, []byte("x"))
	if _, err := ParseFrame(d[:len(d)-1]); err == nil {
		t.Fatal("short data frame accepted")
	}
}

func TestAckWindow(t *testing.T) {
	var w AckWindow
	for _, s := range []uint32{0, 1, 2, 4} {
		w.Receive(s)
	}
	seq, recv := w.Receive(5)
	// Received before 5: 4 (bit 1), 2 (bit 3), 1 (bit 4), 0 (bit 5); 3 missing (bit 2).
	if seq != 5 || recv != 1<<1|1<<3|1<<4|1<<5 {
		t.Fatalf("received %032b", recv)
	}
	for _, s := range []uint32{5, 4, 2, 1, 0} {
		if !AckedBefore(seq, recv, s) {
			t.Fatalf("%d not acked", s)
		}
	}
	if AckedBefore(seq, recv, 3) || AckedBefore(seq, recv, 6) {
		t.Fatal("3 or 6 acked")
	}
	// Wrap-around of the 32-bit sequence space.
	var w2 AckWindow
	w2.Receive(0xffffffff)
	if _, r := w2.Receive(0); r != 1<<1 {
		t.Fatalf("wrap: %032b", r)
	}
}
