package sipcall

import (
	"context"
	"testing"
	"time"
)

// A call whose connection dies silently (the caller's address changed) survives when the
// caller reconnects within Settings.Reconnect: the caller moves the dialog to a new DTLS
// connection and re-INVITEs over it; the callee takes the re-INVITE from the same Node-ID
// on the new connection as its dialog's, answers it, and the call goes on (BYE over the
// new connection). Without a move the wait ends the call as "connection lost".
func TestCallMovesToNewConnection(t *testing.T) {
	tune := func(s *Settings) { s.Keepalive = 250 * time.Millisecond; s.Reconnect = 20 * time.Second }
	alice, bob := newPhone(t, "alice", tune), newPhone(t, "bob", tune)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	out, in := establish(t, alice, bob, aConn, bConn)
	lost := make(chan error, 1)
	out.OnConnectionLost(func(err error) { lost <- err })
	in.OnReinvite(func(offer []byte) ([]byte, error) { return []byte(answerSDP), nil })

	relay.cut.Store(true) // the old path goes silent
	select {
	case err := <-lost:
		t.Logf("caller noticed: %v", err)
	case <-time.After(wait):
		t.Fatal("the caller never noticed its connection died")
	}
	select {
	case <-out.Done():
		t.Fatalf("the call ended instead of waiting: %v", out.EndReason())
	default:
	}

	a2, b2 := dtlsPair(t, nil) // a new AppAttach to bob's Node-ID
	if err := bob.ep.Serve(b2, "alice-node"); err != nil {
		t.Fatal(err)
	}
	if err := out.Move(a2, "bob-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ans, err := out.Reinvite(ctx, []byte(offerSDP))
	if err != nil || string(ans) != answerSDP {
		t.Fatalf("re-INVITE over the new connection: %q %v", ans, err)
	}
	if in.connNow().raw != b2 {
		t.Fatal("the callee's dialog did not move to the new connection")
	}
	// The old connection's death at bob (its keepalives go unanswered) must not end the
	// moved call.
	deadline := time.Now().Add(wait)
	for {
		bob.ep.mu.Lock()
		_, still := bob.ep.conns[bConn]
		bob.ep.mu.Unlock()
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob never noticed the old connection died")
		}
		time.Sleep(50 * time.Millisecond) // polling the endpoint's table
	}
	if in.ended() || out.ended() {
		t.Fatalf("call ended after the move: %v / %v", in.EndReason(), out.EndReason())
	}
	if err := out.Bye(ctx); err != nil {
		t.Fatalf("BYE over the new connection: %v", err)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRemoteHangup {
		t.Fatalf("callee end reason %+v", r)
	}
}

// A re-INVITE on another connection from a different Node-ID is not taken as the dialog's
// (481), and a call nobody moves ends when Reconnect runs out.
func TestMoveOnlyBySamePeerAndWaitRunsOut(t *testing.T) {
	tune := func(s *Settings) { s.Keepalive = 250 * time.Millisecond; s.Reconnect = 2 * time.Second }
	alice, bob := newPhone(t, "alice", tune), newPhone(t, "bob", tune)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	out, in := establish(t, alice, bob, aConn, bConn)

	a2, b2 := dtlsPair(t, nil)
	if err := bob.ep.Serve(b2, "mallory-node"); err != nil {
		t.Fatal(err)
	}
	if err := out.Move(a2, "bob-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := out.Reinvite(ctx, []byte(offerSDP)); statusOf(err) != 481 {
		t.Fatalf("re-INVITE from another Node-ID: %v, want 481", err)
	}
	relay.cut.Store(true)
	start := time.Now()
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseConnectionLost {
		t.Fatalf("callee end reason %+v", r)
	}
	t.Logf("the unmoved call ended %v after the cut", time.Since(start))
}

// TestCalleeMovesCall: the callee's address changed, so the callee reconnects: it opens a
// new connection to the caller's Node-ID, moves its side of the dialog onto it and
// re-INVITEs; the caller's dialog (made with InviteVia, so it knows the callee's Node-ID)
// moves to that connection and answers.
func TestCalleeMovesCall(t *testing.T) {
	tune := func(s *Settings) { s.Reconnect = 20 * time.Second }
	alice, bob := newPhone(t, "alice", tune), newPhone(t, "bob", tune)
	relay := &udpRelay{}
	aConn, bConn := dtlsPair(t, relay)
	out, in := establish(t, alice, bob, aConn, bConn)
	reinvited := make(chan []byte, 1)
	out.OnReinvite(func(offer []byte) ([]byte, error) { reinvited <- offer; return []byte(answerSDP), nil })
	relay.cut.Store(true)

	b2, a2 := dtlsPair(t, nil) // bob's new AppAttach to alice's Node-ID
	if err := alice.ep.Serve(a2, "bob-node"); err != nil {
		t.Fatal(err)
	}
	if err := in.Move(b2, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if ans, err := in.Reinvite(ctx, []byte(offerSDP)); err != nil || string(ans) != answerSDP {
		t.Fatalf("callee's re-INVITE over the new connection: %q %v", ans, err)
	}
	if got := <-reinvited; string(got) != offerSDP {
		t.Fatalf("caller got offer %q", got)
	}
	if out.connNow().raw != a2 {
		t.Fatal("the caller's dialog did not move to the new connection")
	}
	if err := out.Bye(ctx); err != nil {
		t.Fatalf("BYE over the new connection: %v", err)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseRemoteHangup {
		t.Fatalf("callee end: %v", r)
	}
}
