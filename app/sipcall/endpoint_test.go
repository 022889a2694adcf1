package sipcall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCallOverDTLSCallerHangsUp(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := dtlsPair(t, nil)
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if in.From != "alice" || in.FromURI != "sip:alice@"+testOverlay || string(in.OfferSDP) != offerSDP {
		t.Fatalf("incoming From=%q FromURI=%q offer=%q", in.From, in.FromURI, in.OfferSDP)
	}
	if in.Peer() != "alice-node" || in.CallID() != out.CallID() {
		t.Fatalf("peer %q, call IDs %q / %q", in.Peer(), in.CallID(), out.CallID())
	}
	if err := in.Ringing(); err != nil {
		t.Fatal(err)
	}
	var codes []int
	for r := range out.Responses() {
		codes = append(codes, r.StatusCode)
		if r.StatusCode == 180 {
			go func() {
				if err := in.Answer(ctx, []byte(answerSDP)); err != nil {
					t.Errorf("Answer: %v", err)
				}
			}()
		}
	}
	// Usually [100 180 200]; sipgo may reorder the 100 behind the 180, and then it is stale.
	if got := fmt.Sprint(codes); got != "[100 180 200]" && got != "[180 200]" {
		t.Fatalf("responses %v, want [100 180 200]", codes)
	}
	ans, err := out.Wait(ctx)
	if err != nil || string(ans) != answerSDP {
		t.Fatalf("Wait = %q, %v", ans, err)
	}
	if err := out.Bye(ctx); err != nil {
		t.Fatalf("Bye: %v", err)
	}
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseLocalHangup {
		t.Errorf("caller end reason %v", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRemoteHangup || r.String() != "remote hangup" {
		t.Errorf("callee end reason %v", r)
	}
}

func TestCalleeHangsUpOverPipe(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := net.Pipe()
	out, in := establish(t, alice, bob, aConn, bConn)
	if err := in.Bye(context.Background()); err != nil {
		t.Fatalf("callee Bye: %v", err)
	}
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseRemoteHangup {
		t.Errorf("caller end reason %v", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseLocalHangup {
		t.Errorf("callee end reason %v", r)
	}
	if err := out.Bye(context.Background()); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Bye after end = %v, want ErrCallEnded", err)
	}
}

func TestCancelGives487(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := dtlsPair(t, nil)
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if err := in.Ringing(); err != nil {
		t.Fatal(err)
	}
	for r := range out.Responses() {
		if r.StatusCode == 180 {
			out.Cancel()
		}
	}
	if _, err := out.Wait(ctx); statusOf(err) != 487 {
		t.Fatalf("Wait after Cancel = %v, want 487", err)
	}
	select {
	case <-in.Cancelled():
	case <-time.After(wait):
		t.Fatal("callee did not see the CANCEL")
	}
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseCancelled {
		t.Errorf("caller end reason %v", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseCancelled || r.Status != 487 {
		t.Errorf("callee end reason %v", r)
	}
	if err := in.Answer(ctx, []byte(answerSDP)); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Answer after CANCEL = %v", err)
	}
}

func TestCancelBeforeAnyResponse(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	bob.ep.OnInvite(func(in *Incoming) { bob.incoming <- in }) // no Ringing: only 100 Trying
	aConn, bConn := net.Pipe()
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	out.Cancel() // RFC 3261 §9.1: held back until the 100 Trying
	in := bob.nextIncoming(t)
	if _, err := out.Wait(ctx); statusOf(err) != 487 {
		t.Fatalf("Wait = %v, want 487", err)
	}
	waitDone(t, "callee", in.Call)
}

func TestRejections(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
	}{{486, "busy"}, {603, "declined"}, {488, "rejected (488 Not Acceptable Here)"}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
			bob.ep.OnInvite(func(in *Incoming) {
				if err := in.Reject(tc.code); err != nil {
					t.Errorf("Reject: %v", err)
				}
				bob.incoming <- in
			})
			aConn, bConn := net.Pipe()
			if err := bob.ep.Serve(bConn, "n"); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := out.Wait(ctx); statusOf(err) != tc.code {
				t.Fatalf("Wait = %v, want %d", err, tc.code)
			}
			r := waitDone(t, "caller", out.Call)
			if r.Cause != CauseRejected || r.Status != tc.code || r.String() != tc.reason {
				t.Errorf("caller end reason %+v %q", r, r)
			}
			in := bob.nextIncoming(t)
			if r := waitDone(t, "callee", in.Call); r.Cause != CauseRejected || r.Status != tc.code {
				t.Errorf("callee end reason %+v", r)
			}
			if err := in.Answer(ctx, []byte(answerSDP)); err == nil {
				t.Error("Answer after Reject succeeded")
			}
		})
	}
}

func TestRingTimeoutGives480(t *testing.T) {
	alice := newPhone(t, "alice", nil)
	bob := newPhone(t, "bob", func(s *Settings) { s.RingTimeout = 300 * time.Millisecond })
	aConn, bConn := dtlsPair(t, nil)
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	_ = in.Ringing()
	if _, err := out.Wait(ctx); statusOf(err) != 480 {
		t.Fatalf("Wait = %v, want 480", err)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRingTimeout || r.String() != "no answer" {
		t.Errorf("callee end reason %+v", r)
	}
	if r := waitDone(t, "caller", out.Call); r.String() != "no answer" {
		t.Errorf("caller end reason %+v", r)
	}
}

func TestNoHandlerAndWrongUser(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := net.Pipe()
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := alice.ep.Invite(ctx, aConn, "carol", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Wait(ctx); statusOf(err) != 404 {
		t.Fatalf("INVITE for carol at bob's phone: %v, want 404", err)
	}
	bob.ep.OnInvite(nil)
	// The caller closes its connection once its last call is over; use a new one.
	aConn, bConn = net.Pipe()
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	out, err = alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Wait(ctx); statusOf(err) != 480 {
		t.Fatalf("INVITE without handler: %v, want 480", err)
	}
}

func TestReinviteHoldResumeBothWays(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := dtlsPair(t, nil)
	out, in := establish(t, alice, bob, aConn, bConn)
	hold := strings.Replace(offerSDP, "a=sendrecv", "a=sendonly", 1)
	held := strings.Replace(answerSDP, "a=sendrecv", "a=recvonly", 1)
	in.OnReinvite(func(offer []byte) ([]byte, error) {
		if strings.Contains(string(offer), "a=sendonly") {
			return []byte(held), nil
		}
		if strings.Contains(string(offer), "a=inactive") {
			return nil, &StatusError{Code: 488, Reason: "Not Acceptable Here"}
		}
		return []byte(answerSDP), nil
	})
	out.OnReinvite(func(offer []byte) ([]byte, error) { return []byte(offerSDP), nil })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	got, err := out.Reinvite(ctx, []byte(hold)) // caller holds
	if err != nil || string(got) != held {
		t.Fatalf("hold re-INVITE = %q, %v", got, err)
	}
	got, err = out.Reinvite(ctx, []byte(offerSDP)) // caller resumes
	if err != nil || string(got) != answerSDP {
		t.Fatalf("resume re-INVITE = %q, %v", got, err)
	}
	got, err = in.Reinvite(ctx, []byte(hold)) // callee holds and resumes
	if err != nil || string(got) != offerSDP {
		t.Fatalf("callee re-INVITE = %q, %v", got, err)
	}
	inactive := strings.Replace(offerSDP, "a=sendrecv", "a=inactive", 1)
	if _, err := out.Reinvite(ctx, []byte(inactive)); statusOf(err) != 488 {
		t.Fatalf("refused re-INVITE = %v, want 488", err)
	}
	// A refused re-INVITE leaves the call as it was (RFC 3261 §14.1).
	if _, err := out.Reinvite(ctx, []byte(offerSDP)); err != nil {
		t.Fatalf("re-INVITE after 488: %v", err)
	}
	if err := in.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "caller", out.Call)
}

func TestMalformedSIPGets400AndDialogStaysSane(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	p1, p2 := net.Pipe()
	aConn := &injectConn{Conn: p1}
	out, in := establish(t, alice, bob, aConn, p2)
	in.OnReinvite(func([]byte) ([]byte, error) { return []byte(answerSDP), nil })

	// Garbage, a request with a broken CSeq, one without Content-Length, then a re-INVITE:
	// bob must answer the bad ones with 400 and carry on.
	for _, raw := range []string{
		"\x00\x01\xfe garbage \x7f\r\n\r\n",
		"this is not SIP\r\n\r\n",
		"OPTIONS sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 198.19.0.1:5060;branch=z9hG4bKbad1\r\nFrom: <sip:alice@chord.test>;tag=x\r\nTo: <sip:bob@chord.test>\r\nCall-ID: bad1\r\nCSeq: abc OPTIONS\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 198.19.0.1:5060;branch=z9hG4bKbad2\r\nFrom: <sip:alice@chord.test>;tag=x\r\nTo: <sip:bob@chord.test>\r\nCall-ID: bad2\r\nCSeq: 1 OPTIONS\r\n\r\n",
	} {
		if err := aConn.inject(raw); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if got, err := out.Reinvite(ctx, []byte(offerSDP)); err != nil || string(got) != answerSDP {
		t.Fatalf("re-INVITE after malformed SIP = %q, %v", got, err)
	}
	if err := out.Bye(ctx); err != nil {
		t.Fatalf("Bye after malformed SIP: %v", err)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRemoteHangup {
		t.Errorf("callee end reason %+v", r)
	}
}

func TestMalformedRequestAnswered400OnTheWire(t *testing.T) {
	bob := newPhone(t, "bob", func(s *Settings) { s.Keepalive = -1 })
	raw, bConn := net.Pipe()
	t.Cleanup(func() { raw.Close() })
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	send := func(s string) {
		t.Helper()
		if _, err := raw.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	bad := "INVITE sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>\r\nCall-ID: broken-cseq\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
	send("garbage\x01\r\n" + bad)
	res := readResponse(t, raw, "broken-cseq")
	if !strings.HasPrefix(res, "SIP/2.0 400 ") || !strings.Contains(res, "CSeq: 1 BYE") || !strings.Contains(res, "Warning: 399") {
		t.Fatalf("response to malformed INVITE:\n%s", res)
	}
	send("OPTIONS sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK2\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>\r\nCall-ID: good\r\nCSeq: 2 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	if res := readResponse(t, raw, "good"); !strings.HasPrefix(res, "SIP/2.0 200 OK") {
		t.Fatalf("response to valid OPTIONS after malformed SIP:\n%s", res)
	}
	// A keepalive ping gets its pong (RFC 5626 §3.5.1).
	send("\r\n\r\n")
	buf := make([]byte, 16)
	_ = raw.SetReadDeadline(time.Now().Add(wait))
	if n, err := raw.Read(buf); err != nil || string(buf[:n]) != "\r\n" {
		t.Fatalf("pong = %q, %v", buf[:n], err)
	}
}

func TestDeadConnectionEndsCall(t *testing.T) {
	tune := func(s *Settings) { s.Keepalive = 250 * time.Millisecond }
	alice, bob := newPhone(t, "alice", tune), newPhone(t, "bob", tune)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	out, in := establish(t, alice, bob, aConn, bConn)
	relay.cut.Store(true) // the network between them vanishes silently
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseConnectionLost || r.String() != "connection lost" {
		t.Errorf("caller end reason %+v", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseConnectionLost {
		t.Errorf("callee end reason %+v", r)
	}
}

func TestClosedConnectionEndsCall(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := net.Pipe()
	out, in := establish(t, alice, bob, aConn, bConn)
	bConn.Close() // bob's process dies: no BYE
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseConnectionLost {
		t.Errorf("caller end reason %+v", r)
	}
	waitDone(t, "callee", in.Call)
}

func TestCloseSaysBye(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := dtlsPair(t, nil)
	out, in := establish(t, alice, bob, aConn, bConn)
	if err := bob.ep.Close(); err != nil {
		t.Fatal(err)
	}
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseRemoteHangup {
		t.Errorf("caller end reason %+v", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseClosed {
		t.Errorf("callee end reason %+v", r)
	}
	if _, err := bob.ep.Invite(context.Background(), aConn, "alice", []byte(offerSDP)); !errors.Is(err, ErrClosed) {
		t.Errorf("Invite after Close = %v", err)
	}
}

func TestTwoCallsOneEndpoint(t *testing.T) {
	alice, bob, carol := newPhone(t, "alice", nil), newPhone(t, "bob", nil), newPhone(t, "carol", nil)
	a1, b1 := net.Pipe()
	out1, in1 := establish(t, alice, bob, a1, b1)
	a2, c2 := net.Pipe()
	if err := carol.ep.Serve(c2, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out2, err := alice.ep.Invite(ctx, a2, "carol", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in2 := carol.nextIncoming(t)
	if err := in2.Reject(486); err != nil {
		t.Fatal(err)
	}
	if _, err := out2.Wait(ctx); statusOf(err) != 486 {
		t.Fatalf("second call = %v, want 486", err)
	}
	// The first call is untouched.
	if err := out1.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "first callee", in1.Call)
}

func TestSettingsValidation(t *testing.T) {
	for _, s := range []Settings{
		{User: "", Overlay: testOverlay},
		{User: "a b", Overlay: testOverlay},
		{User: "alice", Overlay: ""},
		{User: "alice", Overlay: "x;y"},
		{User: "alice", Overlay: "host:5060"},
	} {
		if ep, err := NewEndpoint(s); err == nil {
			ep.Close()
			t.Errorf("NewEndpoint(%+v) accepted", s)
		}
	}
}

func TestCloseEndsAllGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
		aConn, bConn := net.Pipe()
		out, in := establish(t, alice, bob, aConn, bConn)
		a2, b2 := net.Pipe() // a second call, left ringing
		if err := bob.ep.Serve(b2, "n"); err != nil {
			t.Fatal(err)
		}
		ringing, err := alice.ep.Invite(context.Background(), a2, "bob", []byte(offerSDP))
		if err != nil {
			t.Fatal(err)
		}
		in2 := bob.nextIncoming(t)
		alice.ep.Close()
		bob.ep.Close()
		for _, c := range []*Call{out.Call, in.Call, ringing.Call, in2.Call} {
			waitDone(t, "call", c)
		}
	}()
	// Goroutine exit has no event to wait for: poll, with a generous bound.
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestRawRequestsGetTheRightStatus(t *testing.T) {
	bob := newPhone(t, "bob", func(s *Settings) { s.Keepalive = -1 })
	bob.ep.OnInvite(func(in *Incoming) { _ = in.Reject(603) })
	raw, bConn := net.Pipe()
	t.Cleanup(func() { raw.Close() })
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	invite := func(callID, extra, body string) string {
		return "INVITE sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK" + callID + "\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@chord.test>\r\nMax-Forwards: 70\r\n" + extra + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	}
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"require", invite("req", "Require: 100rel\r\nContent-Type: application/sdp\r\n", offerSDP), "SIP/2.0 420 "},
		{"no offer", invite("nooffer", "", ""), "SIP/2.0 488 "},
		{"not sdp", invite("notsdp", "Content-Type: text/plain\r\n", "hello"), "SIP/2.0 415 "},
		{"bad from", strings.Replace(invite("badfrom", "Content-Type: application/sdp\r\n", offerSDP), "<sip:alice@chord.test>;tag=a", "<sip:chord.test>;tag=a", 1), "SIP/2.0 400 "},
		{"declined", invite("ok", "Content-Type: application/sdp\r\n", offerSDP), "SIP/2.0 603 "},
		{"bye outside dialog", strings.NewReplacer("INVITE sip", "BYE sip", "1 INVITE", "1 BYE", "To: <sip:bob@chord.test>", "To: <sip:bob@chord.test>;tag=zz").Replace(invite("bye", "", "")), "SIP/2.0 481 "},
		{"unknown method", strings.NewReplacer("INVITE sip", "MESSAGE sip", "1 INVITE", "1 MESSAGE").Replace(invite("msg", "", "")), "SIP/2.0 405 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := raw.Write([]byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			callID := tc.msg[strings.Index(tc.msg, "Call-ID: ")+9:]
			callID = callID[:strings.Index(callID, "\r\n")]
			var res string
			for { // skip 100 Trying
				res = readResponse(t, raw, callID)
				if !strings.HasPrefix(res, "SIP/2.0 100 ") {
					break
				}
			}
			if !strings.HasPrefix(res, tc.want) {
				t.Fatalf("got\n%s\nwant %s", res, tc.want)
			}
		})
	}
}

func TestLargeOfferOverDTLS(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := dtlsPair(t, nil)
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	// An offer with many ICE candidates: several DTLS records.
	big := offerSDP + strings.Repeat("a=candidate:1 1 udp 2130706431 192.168.100.100 50000 typ host generation 0\r\n", 100)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(big))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if string(in.OfferSDP) != big {
		t.Fatalf("offer of %d bytes arrived as %d bytes", len(big), len(in.OfferSDP))
	}
	go func() { _ = in.Answer(ctx, []byte(big)) }()
	if ans, err := out.Wait(ctx); err != nil || string(ans) != big {
		t.Fatalf("Wait: %d bytes, %v", len(ans), err)
	}
}

// The AppAttach connection is DTLS over UDP: lost datagrams are retransmitted as over UDP.
func TestLostDatagramsAreRetransmitted(t *testing.T) {
	quiet := func(s *Settings) { s.Keepalive = -1 } // no other datagrams than the call's
	alice, bob := newPhone(t, "alice", quiet), newPhone(t, "bob", quiet)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay) // alice is the DTLS client: toServer is alice -> bob
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// A big offer spans records; losing its second record must not corrupt it.
	offer := offerSDP + strings.Repeat("a=candidate:1 1 udp 2130706431 192.168.100.100 50000 typ host generation 0\r\n", 30)
	relay.toServer.Store(1)
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t) // the INVITE's first record was lost: Timer A resent it
	if string(in.OfferSDP) != offer {
		t.Fatal("offer corrupted")
	}
	relay.toClient.Store(1) // the 200 OK
	answered := make(chan error, 1)
	go func() { answered <- in.Answer(ctx, []byte(answerSDP)) }()
	if ans, err := out.Wait(ctx); err != nil || string(ans) != answerSDP {
		t.Fatalf("Wait = %q, %v", ans, err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("Answer: %v", err)
	}
	relay.toServer.Store(1) // the re-INVITE
	if _, err := out.Reinvite(ctx, []byte(offerSDP)); err == nil {
		t.Fatal("re-INVITE answered without OnReinvite")
	} else if statusOf(err) != 488 {
		t.Fatalf("re-INVITE: %v", err)
	}
	relay.toServer.Store(1) // the BYE
	if err := out.Bye(ctx); err != nil {
		t.Fatalf("Bye: %v", err)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRemoteHangup {
		t.Errorf("callee end reason %+v", r)
	}
}

func TestLostRejectionIsRetransmitted(t *testing.T) {
	quiet := func(s *Settings) { s.Keepalive = -1 }
	alice, bob := newPhone(t, "alice", quiet), newPhone(t, "bob", quiet)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if err := in.Ringing(); err != nil {
		t.Fatal(err)
	}
	for r := range out.Responses() { // wait for the 180: after it nothing resends the INVITE
		if r.StatusCode == 180 {
			break
		}
	}
	relay.toClient.Store(1) // the 486
	if err := in.Reject(486); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Wait(ctx); statusOf(err) != 486 {
		t.Fatalf("Wait = %v, want 486", err)
	}
}

func TestRetransmittedInviteIsNotASecondCall(t *testing.T) {
	bob := newPhone(t, "bob", func(s *Settings) { s.Keepalive = -1 })
	answered := make(chan error, 4)
	bob.ep.OnInvite(func(in *Incoming) {
		bob.incoming <- in
		answered <- in.Answer(context.Background(), []byte(answerSDP))
	})
	raw, bConn := net.Pipe()
	t.Cleanup(func() { raw.Close() })
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	invite := "INVITE sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKdup\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>\r\nCall-ID: dup\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@chord.test>\r\nContent-Type: application/sdp\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(offerSDP)) + offerSDP
	ok := func() string {
		for {
			res := readResponse(t, raw, "dup")
			if strings.HasPrefix(res, "SIP/2.0 200 ") {
				return res
			}
		}
	}
	if _, err := raw.Write([]byte(invite)); err != nil {
		t.Fatal(err)
	}
	first := ok()
	bob.nextIncoming(t)
	if _, err := raw.Write([]byte(invite)); err != nil { // as if the 200 had been lost
		t.Fatal(err)
	}
	if again := ok(); again != first {
		t.Fatalf("retransmitted INVITE got\n%s\nnot the same 200 as\n%s", again, first)
	}
	toTag := first[strings.Index(first, "To: "):]
	toTag = toTag[:strings.Index(toTag, "\r\n")]
	ack := strings.NewReplacer("INVITE sip", "ACK sip", "1 INVITE", "1 ACK", "z9hG4bKdup", "z9hG4bKack", "To: <sip:bob@chord.test>", toTag).Replace(invite)
	ack = ack[:strings.Index(ack, "Content-Type")] + "Content-Length: 0\r\n\r\n"
	if _, err := raw.Write([]byte(ack)); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("Answer: %v", err)
	}
	select {
	case in := <-bob.incoming:
		t.Fatalf("the retransmission became a second call %s", in.CallID())
	default:
	}
}

// closeNotifyConn reports when the Endpoint closes it.
type closeNotifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	alice := newPhone(t, "alice", func(s *Settings) { s.Keepalive = 50 * time.Millisecond })
	bob := newPhone(t, "bob", func(s *Settings) { s.Keepalive = 50 * time.Millisecond; s.IdleTimeout = 200 * time.Millisecond })
	p1, p2 := net.Pipe()
	aConn := &closeNotifyConn{Conn: p1, closed: make(chan struct{})}
	bConn := &closeNotifyConn{Conn: p2, closed: make(chan struct{})}
	if err := bob.ep.Serve(bConn, "n"); err != nil {
		t.Fatal(err)
	}
	// Alice serves her end too (SIP both ways over one connection, RFC 7904 §5.1), so she
	// keeps it after her call: only bob's idle timeout can close it.
	if err := alice.ep.Serve(aConn, "bob-node"); err != nil {
		t.Fatal(err)
	}
	// A call, then silence but for keepalives: bob closes the connection once idle.
	ctx := context.Background()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	if err := in.Reject(603); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Wait(ctx); statusOf(err) != 603 {
		t.Fatal(err)
	}
	for name, c := range map[string]*closeNotifyConn{"callee (idle)": bConn, "caller (EOF)": aConn} {
		select {
		case <-c.closed:
		case <-time.After(wait):
			t.Fatalf("%s connection not closed after the call", name)
		}
	}
}

// RFC 3261 §14.1: no new re-INVITE while one is in progress in either direction.
func TestReinviteWhileOneIsPending(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aConn, bConn := net.Pipe()
	out, in := establish(t, alice, bob, aConn, bConn)
	inHandler, release := make(chan struct{}), make(chan struct{})
	in.OnReinvite(func([]byte) ([]byte, error) {
		close(inHandler)
		<-release
		return []byte(answerSDP), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	first := make(chan error, 1)
	go func() { _, err := out.Reinvite(ctx, []byte(offerSDP)); first <- err }()
	<-inHandler
	if _, err := out.Reinvite(ctx, []byte(offerSDP)); !errors.Is(err, ErrPending) {
		t.Errorf("caller's second re-INVITE = %v, want ErrPending", err)
	}
	if _, err := in.Reinvite(ctx, []byte(offerSDP)); !errors.Is(err, ErrPending) {
		t.Errorf("callee's re-INVITE during the caller's = %v, want ErrPending", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first re-INVITE: %v", err)
	}
	if _, err := in.Reinvite(ctx, []byte(offerSDP)); statusOf(err) != 488 { // alice has no OnReinvite
		t.Fatalf("re-INVITE afterwards = %v, want 488 from a peer without OnReinvite", err)
	}
}
