package sipcall

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// TestMessage: alice sends pages to bob over a DTLS connection (RFC 3428): bob's handler sees
// sender, id, type and body; its code is alice's outcome; a second page reuses the
// connection; bob answers over the same connection in the other direction; a lost datagram
// is retransmitted.
func TestMessage(t *testing.T) {
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	got := make(chan *Message, 4)
	code := atomic.Int32{}
	code.Store(200)
	bob.ep.OnMessage(func(m *Message) int { got <- m; return int(code.Load()) })
	alice.ep.OnMessage(func(m *Message) int { got <- m; return 200 })
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dials := atomic.Int32{}
	dial := func(context.Context) (net.Conn, error) { dials.Add(1); return aConn, nil }

	if err := alice.ep.SendMessage(ctx, "bob-node", dial, "bob", "id-1", "text/plain;charset=utf-8", []byte("hello bob")); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if m.From != "alice" || m.ID != "id-1" || string(m.Body) != "hello bob" || MediaType(m.ContentType) != "text/plain" || m.Peer != "alice-node" || m.Date.IsZero() {
		t.Fatalf("bob got %+v", m)
	}
	relay.toServer.Store(1) // the next MESSAGE's first datagram is lost: Timer E resends it
	code.Store(415)
	err := alice.ep.SendMessage(ctx, "bob-node", dial, "bob", "id-2", "image/png", []byte("x"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 415 {
		t.Fatalf("second page: %v, want 415", err)
	}
	<-got
	if n := dials.Load(); n != 1 {
		t.Errorf("alice dialled %d times, want 1 (the connection is reused)", n)
	}
	// bob answers over the connection alice opened (no dial possible).
	noDial := func(context.Context) (net.Conn, error) { return nil, errors.New("must not dial") }
	if err := bob.ep.SendMessage(ctx, "alice-node", noDial, "alice", "id-3", "text/plain", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.From != "bob" || string(m.Body) != "hi" {
		t.Fatalf("alice got %+v", m)
	}
}

// TestMessageBadRequests: a MESSAGE without Content-Type, and one without a user in From,
// get 400; a body over MaxMessageBody gets 413; none reaches the handler.
func TestMessageBadRequests(t *testing.T) {
	aConn, bConn := dtlsPair(t, nil)
	bob := newPhone(t, "bob", nil)
	bob.ep.OnMessage(func(m *Message) int { t.Errorf("handler got %+v", m); return 200 })
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	msg := func(callID, from, extra, body string) string {
		return "MESSAGE sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 198.19.0.1:5060;branch=z9hG4bK" + callID + "\r\n" +
			"From: <" + from + ">;tag=1\r\nTo: <sip:bob@chord.test>\r\nCall-ID: " + callID + "\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n" +
			extra + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	for _, c := range []struct{ id, from, extra, body, want string }{
		{"nobody-type", "sip:alice@chord.test", "", "hello", "400"},
		{"nobody-user", "sip:chord.test", "Content-Type: text/plain\r\n", "hello", "400"},
		{"too-big", "sip:alice@chord.test", "Content-Type: text/plain\r\n", strings.Repeat("x", MaxMessageBody+1), "413"},
	} {
		for b := []byte(msg(c.id, c.from, c.extra, c.body)); len(b) > 0; { // records below the MTU
			n := min(len(b), maxRecord)
			if _, err := aConn.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
		if res := readResponse(t, aConn, c.id); !strings.HasPrefix(res, "SIP/2.0 "+c.want) {
			t.Errorf("%s: %q, want %s", c.id, firstLine([]byte(res)), c.want)
		}
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}
