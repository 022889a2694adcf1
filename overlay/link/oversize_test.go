package link

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// TestOversizeMessageHandedOver: RFC 6940 §6.6: a request larger than max-message-size is
// answered with Error_Message_Too_Large. The receiving link hands the node (which answers)
// the first max-message-size+1 bytes of the message — whether it came in one datagram or in
// one TLS frame; fragments (DTLS, §6.7) go up as they are and the receiver's reassembly
// makes the head — buffers no more than that, and stays up.
func TestOversizeMessageHandedOver(t *testing.T) {
	const limit = 5000
	for _, tc := range []struct {
		name, scheme string
		mtu          int // sender's MTU: 9000 sends the message in one datagram
		size         int
	}{
		{"DTLS fragments", "", 0, 6000},
		{"DTLS datagram", "", 9000, 6000},
		{"TLS frame", "tls://", 0, 6000},
		{"TLS frame of 60 kB", "tls://", 0, 60000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newPeer(t, "alice", func(s *Settings) {
				if tc.mtu > 0 {
					s.MTU = tc.mtu
				}
			})
			b := newPeer(t, "bob", func(s *Settings) { s.MaxMessageSize = limit })
			la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), tc.scheme+addrOf(b))
			if err != nil {
				t.Fatal(err)
			}
			lb := b.accepted(t)
			big := testMessage(t, 77, tc.size)
			if err := la.Send(ctxT(t, 10*time.Second), big); err != nil {
				t.Fatal(err)
			}
			m := b.rx.next(t, 10*time.Second)
			if len(m.msg) != limit+1 {
				t.Fatalf("node got %d bytes of a %d-byte message, want the first %d", len(m.msg), len(big), limit+1)
			}
			h, hl, err := wire.DecodeHeader(m.msg)
			if err != nil {
				t.Fatalf("head of the oversize message: %v", err)
			}
			if h.TransactionID != 77 || h.IsFragment() || int(h.Length) != limit+1 {
				t.Fatalf("head header: transaction %d, fragment %#x, length %d", h.TransactionID, h.Fragment, h.Length)
			}
			if code := wire.MessageCode(binary.BigEndian.Uint16(m.msg[hl:])); code != wire.CodePingReq {
				t.Fatalf("head carries code %v", code)
			}
			if !bytes.Equal(m.msg[hl:], big[hl:limit+1]) {
				t.Fatal("head is not the beginning of the message")
			}
			// The link is still up and in step: the next message arrives whole, nothing else.
			small := testMessage(t, 78, 1000)
			if err := la.Send(ctxT(t, 10*time.Second), small); err != nil {
				t.Fatal(err)
			}
			if m := b.rx.next(t, 10*time.Second); !bytes.Equal(m.msg, small) {
				t.Fatalf("after the oversize message: got %d bytes (transaction %d), want the next message", len(m.msg), txID(m.msg))
			}
			if err := lb.(*Link).Err(); err != nil {
				t.Fatalf("link ended: %v", err)
			}
			if n, bytes := b.rx.reasm.Pending(); n != 0 || bytes != 0 {
				t.Fatalf("%d messages, %d bytes left in reassembly", n, bytes)
			}
		})
	}
}

// TestOversizeHeaderClosesLink: RFC 6940 §6.6: "If the forwarding header is larger than the
// max-message-size, the receiver SHOULD close the TLS or DTLS session without sending an
// error."
func TestOversizeHeaderClosesLink(t *testing.T) {
	for _, scheme := range []string{"", "tls://"} {
		a := newPeer(t, "alice", nil)
		b := newPeer(t, "bob", func(s *Settings) { s.MaxMessageSize = 40 })
		la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), scheme+addrOf(b))
		if err != nil {
			t.Fatal(err)
		}
		lb := b.accepted(t)
		msg := testMessage(t, 79, 0)
		if _, hl, _ := wire.DecodeHeader(msg); hl <= 40 {
			t.Fatalf("header of %d bytes fits the limit", hl)
		}
		if err := la.Send(ctxT(t, 10*time.Second), msg); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lb.Done():
		case m := <-b.rx.ch:
			t.Fatalf("%q: message of %d bytes delivered", scheme, len(m.msg))
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: link not closed", scheme)
		}
	}
}
