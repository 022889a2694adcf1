package sipcall

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/crypto/selfsign"
)

const (
	testOverlay = "chord.test"
	offerSDP    = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
	answerSDP   = "v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
)

// wait bounds waits for events that must happen; it is generous, not a timing assertion.
const wait = 10 * time.Second

// testLog is an slog handler target that writes to t.Log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newTestLogger(t testing.TB) *slog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// phone is one Endpoint under test with its incoming calls.
type phone struct {
	ep       *Endpoint
	incoming chan *Incoming
}

func newPhone(t testing.TB, user string, tune func(*Settings)) *phone {
	t.Helper()
	s := Settings{User: user, Overlay: testOverlay, Logger: newTestLogger(t).With("phone", user)}
	if tune != nil {
		tune(&s)
	}
	ep, err := NewEndpoint(s)
	if err != nil {
		t.Fatalf("NewEndpoint(%s): %v", user, err)
	}
	p := &phone{ep: ep, incoming: make(chan *Incoming, 4)}
	ep.OnInvite(func(in *Incoming) { p.incoming <- in })
	t.Cleanup(func() { ep.Close() })
	return p
}

func (p *phone) nextIncoming(t *testing.T) *Incoming {
	t.Helper()
	select {
	case in := <-p.incoming:
		return in
	case <-time.After(wait):
		t.Fatal("no incoming call")
		return nil
	}
}

// dtlsPair returns both ends of a DTLS connection over loopback UDP (self-signed
// certificates, as the overlay's AppAttach connections are): the client end dials through
// relay if relay is not nil.
func dtlsPair(t testing.TB, relay *udpRelay) (client, server net.Conn) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &dtls.Config{
		Certificates:         []tls.Certificate{cert},
		InsecureSkipVerify:   true,
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
	}
	ln, err := dtls.Listen("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	target := ln.Addr().(*net.UDPAddr)
	if relay != nil {
		target = relay.start(t, target)
	}
	cc, err := dtls.Dial("udp", target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	select {
	case sc := <-accepted:
		t.Cleanup(func() { sc.Close() })
		return cc, sc
	case err := <-acceptErr:
		t.Fatal(err)
	case <-time.After(wait):
		t.Fatal("DTLS accept timed out")
	}
	return nil, nil
}

// udpRelay forwards datagrams between a DTLS client and server until cut: then the
// connection goes silent, as when a peer's machine or network vanishes.
type udpRelay struct {
	cut atomic.Bool
	// toServer and toClient drop that many datagrams in that direction.
	toServer, toClient atomic.Int32
}

func take(n *atomic.Int32) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

func (r *udpRelay) start(t testing.TB, server *net.UDPAddr) *net.UDPAddr {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	var client atomic.Pointer[net.UDPAddr]
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			client.Store(from)
			if !r.cut.Load() && !take(&r.toServer) {
				_, _ = back.Write(buf[:n])
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			if to := client.Load(); to != nil && !r.cut.Load() && !take(&r.toClient) {
				_, _ = front.WriteToUDP(buf[:n], to)
			}
		}
	}()
	return front.LocalAddr().(*net.UDPAddr)
}

// injectConn lets a test write raw bytes into a connection an Endpoint also writes to.
type injectConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *injectConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *injectConn) inject(b string) error {
	_, err := c.Write([]byte(b))
	return err
}

// call sets up alice -> bob over the connection pair and returns both ends, answered.
func establish(t *testing.T, alice, bob *phone, aConn, bConn net.Conn) (*Outgoing, *Incoming) {
	t.Helper()
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.InviteVia(ctx, aConn, "bob-node", "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if err := in.Ringing(); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() { answered <- in.Answer(ctx, []byte(answerSDP)) }()
	ans, err := out.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if string(ans) != answerSDP {
		t.Fatalf("answer SDP = %q", ans)
	}
	if err := <-answered; err != nil {
		t.Fatalf("Answer: %v", err)
	}
	return out, in
}

func waitDone(t *testing.T, what string, c *Call) EndReason {
	t.Helper()
	select {
	case <-c.Done():
		return c.EndReason()
	case <-time.After(wait):
		t.Fatalf("%s: call did not end", what)
		return EndReason{}
	}
}

// readResponse reads raw SIP from c until a whole response with Call-ID callID arrives.
func readResponse(t *testing.T, c net.Conn, callID string) string {
	t.Helper()
	var fr framer
	buf := make([]byte, 65536)
	deadline := time.Now().Add(wait)
	for {
		for {
			ev, ok := fr.next()
			if !ok {
				break
			}
			if ev.kind == evMessage && strings.HasPrefix(string(ev.msg), "SIP/2.0") && strings.Contains(string(ev.msg), callID) {
				return string(ev.msg)
			}
		}
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				t.Fatalf("connection closed while waiting for a response to %s", callID)
			}
			t.Fatalf("read: %v", err)
		}
		fr.push(buf[:n])
	}
}
