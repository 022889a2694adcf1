package sipcall

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type presenceNote struct{ user, peer, state string }

// TestPresence: bob watches alice over the connection he opened (SUBSCRIBE, RFC 6665): the
// first NOTIFY says online, alice's call and her going offline follow; a SUBSCRIBE that
// alice refuses gets 403; when the connection dies bob hears that the state is unknown.
func TestPresence(t *testing.T) {
	bConn, aConn := dtlsPair(t, nil)
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	notes := make(chan presenceNote, 8)
	var deny atomic.Bool
	alice.ep.OnPresence(func(user, peer string) bool { return !deny.Load() && user == "bob" }, nil)
	bob.ep.OnPresence(nil, func(user, peer, state string) { notes <- presenceNote{user, peer, state} })
	if err := alice.ep.Serve(aConn, "bob-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := bob.ep.WatchPresence(ctx, "alice-node", "alice"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("watching without a connection: %v", err)
	}
	dial := func(context.Context) (net.Conn, error) { return bConn, nil }
	bob.ep.OnMessage(func(*Message) int { return 200 })
	alice.ep.OnMessage(func(*Message) int { return 200 })
	if err := bob.ep.SendMessage(ctx, "alice-node", dial, "alice", "m1", "text/plain", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := bob.ep.WatchPresence(ctx, "alice-node", "alice"); err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case n := <-notes:
			if n.user != "alice" || n.peer != "alice-node" || n.state != want {
				t.Fatalf("bob heard %+v, want %q", n, want)
			}
		case <-time.After(wait):
			t.Fatalf("bob heard nothing, want %q", want)
		}
	}
	next(PresenceOnline)
	alice.ep.SetPresence(ctx, PresenceInCall)
	next(PresenceInCall)
	alice.ep.SetPresence(ctx, PresenceOffline)
	next(PresenceOffline)

	deny.Store(true)
	var se *StatusError
	if err := bob.ep.WatchPresence(ctx, "alice-node", "alice"); !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("refused SUBSCRIBE: %v", err)
	}
	deny.Store(false)
	alice.ep.SetPresence(ctx, PresenceOnline)
	if err := bob.ep.WatchPresence(ctx, "alice-node", "alice"); err != nil {
		t.Fatal(err)
	}
	next(PresenceOnline)
	aConn.Close()
	next(PresenceUnknown)
}

// TestSubscribeOtherEvent: a SUBSCRIBE to an event package other than presence gets 489.
func TestSubscribeOtherEvent(t *testing.T) {
	aConn, bConn := dtlsPair(t, nil)
	bob := newPhone(t, "bob", nil)
	bob.ep.OnPresence(func(string, string) bool { return true }, nil)
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	req := "SUBSCRIBE sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 198.19.0.1:5060;branch=z9hG4bKsub1\r\n" +
		"From: <sip:alice@chord.test>;tag=1\r\nTo: <sip:bob@chord.test>\r\nCall-ID: sub-1\r\nCSeq: 1 SUBSCRIBE\r\n" +
		"Max-Forwards: 70\r\nEvent: dialog\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
	if _, err := aConn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if res := readResponse(t, aConn, "sub-1"); !strings.HasPrefix(res, "SIP/2.0 489") {
		t.Errorf("%q, want 489", firstLine([]byte(res)))
	}
}

// FuzzParsePIDF: presence documents from other phones never panic the parser, and what this
// phone writes reads back.
func FuzzParsePIDF(f *testing.F) {
	for _, s := range []string{PresenceOnline, PresenceInCall, PresenceOffline} {
		f.Add(PIDF("sip:alice@chord.test", s))
	}
	f.Add([]byte("<presence><tuple><status><basic>open"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParsePIDF(b)
	})
	for _, s := range []string{PresenceOnline, PresenceInCall, PresenceOffline} {
		if got, err := ParsePIDF(PIDF("sip:a@b", s)); err != nil || got != s {
			f.Errorf("%q reads back as %q, %v", s, got, err)
		}
	}
}
