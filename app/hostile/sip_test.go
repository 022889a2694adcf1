package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/overlay/storage"
)

// startPhone runs a phone (the GUI's and headless mode's API) for user with WAV audio and
// returns it with its events once it is registered.
func startPhone(t *testing.T, user string, boot []string, autoAnswer bool) (*phone.Phone, <-chan phone.Event) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	if err := audio.SaveWAV(in, analysis.TestSignal(audio.SampleRate, audio.SampleRate, 1)); err != nil {
		t.Fatal(err)
	}
	p, err := phone.New(phone.Config{Profile: filepath.Join(dir, "profile"), User: user, Overlay: overlayName, Bootstrap: boot,
		Listen: "127.0.0.1:0", AudioIn: in, AudioOut: filepath.Join(dir, "out.wav"), AutoAnswer: autoAnswer, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ev, unsub := p.Subscribe(256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // owner: this test; ends when the cleanup cancels ctx
		defer close(done)
		_ = p.Run(ctx)
	}()
	t.Cleanup(func() { unsub(); cancel(); <-done })
	waitEvent(t, user, ev, phone.EventRegistered, 60*time.Second)
	return p, ev
}

func waitEvent(t *testing.T, who string, ev <-chan phone.Event, kind phone.EventKind, d time.Duration) phone.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ev:
			if !ok {
				t.Fatalf("%s: events ended while waiting for %s", who, kind)
			}
			if e.Kind == kind {
				return e
			}
			if e.Kind == phone.EventError {
				t.Logf("%s: error event: %s", who, e.Message)
			}
		case <-timer.C:
			t.Fatalf("%s: no %s event within %v", who, kind, d)
		}
	}
}

// sipConn is a raw SIP connection: an AppAttach connection (DTLS) to a phone, RFC 7904 §5.1.
type sipConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// send writes one message in one DTLS record, as a peer does.
func (c *sipConn) send(msg string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatalf("writing SIP: %v", err)
	}
}

// response reads the next SIP response (skipping keepalive CRLFs and requests the phone
// sends, e.g. OPTIONS keepalives) and returns its status code and text.
func (c *sipConn) response(d time.Duration) (int, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		msg, err := readSIP(c.r)
		if err != nil {
			c.t.Fatalf("reading SIP: %v", err)
		}
		if !strings.HasPrefix(msg, "SIP/2.0 ") {
			continue
		}
		var code int
		fmt.Sscanf(msg, "SIP/2.0 %d", &code)
		return code, msg
	}
}

// readSIP reads one message (headers and Content-Length body) from a stream.
func readSIP(r *bufio.Reader) (string, error) {
	var b strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if b.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keepalive CRLFs
		}
		b.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok {
			if k = strings.ToLower(strings.TrimSpace(k)); k == "content-length" || k == "l" {
				fmt.Sscanf(strings.TrimSpace(v), "%d", &length)
			}
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	return b.String() + string(body), nil
}

// request builds a SIP request from mallory to bob over the AppAttach connection.
func request(method, branch, cseqMethod, extra, body string) string {
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	return method + " sip:bob@" + overlayName + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP 10.0.0.66:5060" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:mallory@" + overlayName + ">;tag=m1\r\n" +
		"To: <sip:bob@" + overlayName + ">\r\n" +
		"Call-ID: hostile-" + method + branch + "\r\n" +
		"CSeq: 1 " + cseqMethod + "\r\n" +
		"Contact: <sip:mallory@10.0.0.66:5060;transport=tcp>\r\n" +
		extra + ct +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// TestMalformedSIPAndSDP: over an AppAttach connection to a phone (RFC 7904 §5.1), malformed
// SIP requests get 400 Bad Request, garbage is skipped, an INVITE whose SDP is not SDP gets 488
// Not Acceptable Here, the connection keeps working (OPTIONS answered 200), and afterwards a
// real call to the same phone is answered.
func TestMalformedSIPAndSDP(t *testing.T) {
	bob, bobEv := startPhone(t, "bob", nil, true)
	boot := []string{bob.Status().Listen}
	alice, aliceEv := startPhone(t, "alice", boot, false)
	ctx := testCtx(t, 120*time.Second)

	mal, err := peer.New(peer.Config{Profile: t.TempDir(), User: "mallory", Overlay: overlayName, Listen: "127.0.0.1:0", Bootstrap: boot, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = mal.Close(cctx)
	})
	if err := mal.Join(ctx); err != nil {
		t.Fatal(err)
	}
	// Right after mallory joined, responsibility for bob's AoR may be moving (RFC 6940
	// §10.5 step 6): look up until found, as a phone retries.
	var regs []storage.Registration
	for deadline := time.Now().Add(30 * time.Second); ; {
		regs, err = mal.Lookup(ctx, "bob")
		if err == nil && len(regs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup bob: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling: no event tells an outsider the data moved
	}
	conn, err := mal.AppAttach(ctx, regs[0])
	if err != nil {
		t.Fatalf("AppAttach to bob: %v", err)
	}
	defer conn.Close()
	c := &sipConn{t: t, conn: conn, r: bufio.NewReader(conn)}

	for _, bad := range []struct{ name, msg string }{
		{"CSeq method not the request's", request("OPTIONS", ";branch=z9hG4bKh1", "BYE", "", "")},
		{"Via without branch", request("OPTIONS", "", "OPTIONS", "", "")},
		{"Request-URI not SIP", strings.Replace(request("OPTIONS", ";branch=z9hG4bKh3", "OPTIONS", "", ""), "OPTIONS sip:", "OPTIONS mailto:", 1)},
		{"CSeq not a number", strings.Replace(request("OPTIONS", ";branch=z9hG4bKh4", "OPTIONS", "", ""), "CSeq: 1", "CSeq: one", 1)},
	} {
		c.send(bad.msg)
		code, resp := c.response(10 * time.Second)
		if code != 400 {
			t.Errorf("%s: answered %d, want 400\n%s", bad.name, code, resp)
			continue
		}
		t.Logf("%s: %s", bad.name, strings.SplitN(resp, "\r\n", 2)[0])
	}
	// Garbage is skipped; the next request is answered.
	c.send("\x00\x01 this is not SIP at all\r\n\r\n")
	c.send(request("OPTIONS", ";branch=z9hG4bKh5", "OPTIONS", "", ""))
	if code, resp := c.response(10 * time.Second); code != 200 {
		t.Errorf("OPTIONS after garbage: %d\n%s", code, resp)
	}

	// INVITEs whose offers are not usable SDP: 488 (after 100 Trying).
	for i, sdp := range []string{
		"v=0\r\nthis is not SDP\r\n",
		"v=1\r\no=- 1 1 IN IP4 10.0.0.66\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 10.0.0.66\r\ns=-\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\nc=IN IP4 10.0.0.66\r\n",
	} {
		branch := fmt.Sprintf(";branch=z9hG4bKsdp%d", i)
		inv := request("INVITE", branch, "INVITE", "", sdp)
		c.send(inv)
		code, resp := c.response(15 * time.Second)
		for code < 200 {
			code, resp = c.response(15 * time.Second)
		}
		if code != 488 {
			t.Errorf("INVITE with bad SDP %d: final %d, want 488\n%s", i, code, resp)
		} else {
			t.Logf("INVITE with bad SDP %d: %s", i, strings.SplitN(resp, "\r\n", 2)[0])
		}
		// ACK the failure (RFC 3261 §17.1.1.3: same branch, To with the response's tag).
		to := headerLine(resp, "To")
		ack := request("ACK", branch, "ACK", "", "")
		ack = strings.Replace(ack, "To: <sip:bob@"+overlayName+">\r\n", to+"\r\n", 1)
		ack = strings.Replace(ack, "Call-ID: hostile-ACK"+branch, "Call-ID: hostile-INVITE"+branch, 1)
		c.send(ack)
	}
	c.send(request("OPTIONS", ";branch=z9hG4bKh6", "OPTIONS", "", ""))
	if code, resp := c.response(10 * time.Second); code != 200 {
		t.Errorf("OPTIONS after the bad INVITEs: %d\n%s", code, resp)
	}

	// The phone is still usable: alice calls bob, bob answers automatically.
	if err := alice.Call(ctx, "bob"); err != nil {
		t.Fatalf("alice calls bob: %v", err)
	}
	waitEvent(t, "alice", aliceEv, phone.EventAnswered, 30*time.Second)
	waitEvent(t, "bob", bobEv, phone.EventAnswered, 30*time.Second)
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, "bob", bobEv, phone.EventHangup, 30*time.Second)
}

func headerLine(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && (strings.EqualFold(strings.TrimSpace(k), name) || (name == "To" && strings.TrimSpace(k) == "t")) {
			return l
		}
	}
	return ""
}
