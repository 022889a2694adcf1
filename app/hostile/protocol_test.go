package hostile

import (
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ping returns a PingReq to dest with padding such that the signed, encoded message is
// between lo and hi bytes (the ECDSA signature varies by a byte or two), with its bytes.
func ping(t *testing.T, u *user, lo, hi int, dest ...wire.Destination) (*wire.Message, []byte) {
	t.Helper()
	pad := 0
	for i := 0; i < 20; i++ {
		m := u.Request(wire.CodePingReq, &wire.PingReq{Padding: make([]byte, pad)}, dest...)
		b := u.Encode(m)
		if len(b) >= lo && len(b) <= hi {
			return m, b
		}
		pad += (lo+hi)/2 - len(b)
		if pad < 0 {
			t.Fatalf("a Ping is already %d bytes, more than %d", len(b), hi)
		}
	}
	t.Fatalf("no Ping of %d..%d bytes", lo, hi)
	return nil, nil
}

func exchange(t *testing.T, u *user, l *link.Link, m *wire.Message, raw []byte) *wire.Message {
	t.Helper()
	ans, err := u.Exchange(testCtx(t, 20*time.Second), l, raw, m.Header.TransactionID)
	if err != nil {
		t.Fatalf("%v: %v", m.Code, err)
	}
	return ans
}

func responder(ans *wire.Message) wire.NodeID {
	if len(ans.Header.ViaList) > 0 {
		return ans.Header.ViaList[0].Node
	}
	return wire.NodeID{}
}

// TestTTL: a request with a TTL above initial-ttl is refused with Error_TTL_Exceeded
// (RFC 6940 §6.3.2: "MUST discard the message and send an Error_TTL_Exceeded error"), and a
// request whose TTL runs out at a peer that would forward it gets Error_TTL_Exceeded from
// that peer.
func TestTTL(t *testing.T) {
	ps := startPeers(t, 2)
	target, other := ps[0], ps[1]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)

	for _, c := range []struct {
		ttl  uint8
		want wire.ErrorCode // 0: answered
	}{{100, 0}, {101, wire.ErrTTLExceeded}, {255, wire.ErrTTLExceeded}} {
		m := mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))
		m.Header.TTL = c.ttl
		ans := call(t, mallory, l, m)
		if c.want == 0 {
			expectOK(t, "ttl 100", ans, wire.CodePingAns)
		} else {
			expectCode(t, "ttl above initial-ttl", ans, c.want)
		}
	}
	// Forwarding: TTL 0 stops at the target, TTL 1 reaches the other peer.
	m := mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(other.NodeID()))
	m.Header.TTL = 0
	ans := call(t, mallory, l, m)
	expectCode(t, "ttl 0 at a forwarding peer", ans, wire.ErrTTLExceeded)
	if r := responder(ans); r != target.NodeID() {
		t.Errorf("TTL error from %s, want the forwarding peer %s", r, target.NodeID())
	}
	m = mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(other.NodeID()))
	m.Header.TTL = 1
	ans = call(t, mallory, l, m)
	expectOK(t, "ttl 1 through one peer", ans, wire.CodePingAns)
	if r := responder(ans); r != other.NodeID() {
		t.Errorf("Ping answered by %s, want %s", r, other.NodeID())
	}
}

// TestUnknownCriticalExtension: a message with an unknown critical extension gets
// Error_Unknown_Extension (RFC 6940 §6.3.3); a non-critical one is ignored.
func TestUnknownCriticalExtension(t *testing.T) {
	ps := startPeers(t, 1)
	target := ps[0]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	for _, critical := range []bool{false, true} {
		m := mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))
		m.Extensions = []wire.MessageExtension{{Type: 0x7a7a, Critical: critical, Contents: []byte("hostile")}}
		ans := call(t, mallory, l, m)
		if critical {
			expectCode(t, "unknown critical extension", ans, wire.ErrUnknownExtension)
		} else {
			expectOK(t, "unknown non-critical extension", ans, wire.CodePingAns)
		}
	}
	// A Store with an unknown critical extension changes nothing.
	sd := mallory.registration(t, mallory.aor(), mallory.NodeID, time.Now())
	m := mallory.storeMsg(mallory.aor(), wire.KindSIPRegistration, sd)
	m.Extensions = []wire.MessageExtension{{Type: 0x7a7b, Critical: true}}
	expectCode(t, "store with an unknown critical extension", call(t, mallory, l, m), wire.ErrUnknownExtension)
	if s := snapshot(t, mallory, l, mallory.aor(), wire.KindSIPRegistration); values(s) != 0 {
		t.Errorf("the refused store was applied:\n%s", s)
	}
}

// TestUnknownForwardingOptions: RFC 6940 §6.3.2.3: an unknown option flagged
// DESTINATION_CRITICAL is refused by the destination, one flagged FORWARD_CRITICAL by a peer
// that would forward it, both with Error_Unsupported_Forwarding_Option; an unknown option
// without those flags is carried along.
func TestUnknownForwardingOptions(t *testing.T) {
	ps := startPeers(t, 2)
	target, other := ps[0], ps[1]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	opt := func(flags uint8) []wire.ForwardingOption {
		return []wire.ForwardingOption{{Type: 0x42, Flags: flags, Data: []byte{1, 2, 3}}}
	}
	for _, c := range []struct {
		name  string
		dest  wire.NodeID
		flags uint8
		want  wire.ErrorCode // 0: answered
		by    wire.NodeID
	}{
		{"destination-critical at the destination", target.NodeID(), wire.DestinationCritical, wire.ErrUnsupportedForwardingOption, target.NodeID()},
		{"forward-critical at the destination", target.NodeID(), wire.ForwardCritical, 0, target.NodeID()},
		{"forward-critical at a forwarding peer", other.NodeID(), wire.ForwardCritical, wire.ErrUnsupportedForwardingOption, target.NodeID()},
		{"destination-critical forwarded to its destination", other.NodeID(), wire.DestinationCritical, wire.ErrUnsupportedForwardingOption, other.NodeID()},
		{"not critical, forwarded", other.NodeID(), 0, 0, other.NodeID()},
	} {
		m := mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(c.dest))
		m.Header.Options = opt(c.flags)
		ans := call(t, mallory, l, m)
		if c.want == 0 {
			expectOK(t, c.name, ans, wire.CodePingAns)
		} else {
			expectCode(t, c.name, ans, c.want)
		}
		if r := responder(ans); r != c.by {
			t.Errorf("%s: answered by %s, want %s", c.name, r, c.by)
		}
	}
}

// TestOversizedForwarded: a request that a forwarding peer's via-list entry pushes over
// max-message-size (5000) gets Error_Message_Too_Large (RFC 6940 §6.6). It travels in
// fragments, which the forwarding peer passes on as they are (§6.7): the destination, which
// reassembles it with the via entry, finds it over the limit and answers.
func TestOversizedForwarded(t *testing.T) {
	ps := startPeers(t, 2)
	target, other := ps[0], ps[1]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	m, raw := ping(t, mallory, 4990, 5000, wire.NodeDestination(other.NodeID()))
	ans := exchange(t, mallory, l, m, raw)
	expectCode(t, "request of 5000 bytes through a forwarding peer", ans, wire.ErrMessageTooLarge)
	if r := responder(ans); r != other.NodeID() {
		t.Errorf("answered by %s, want the destination %s", r, other.NodeID())
	}
	// Below the limit with room for the via entry: delivered.
	m, raw = ping(t, mallory, 4900, 4950, wire.NodeDestination(other.NodeID()))
	expectOK(t, "request of 4950 bytes through a forwarding peer", exchange(t, mallory, l, m, raw), wire.CodePingAns)
}

// TestOversizedDirect: a request larger than max-message-size sent straight to a peer.
// RFC 6940 §6.6: "the peer SHOULD send an Error_Message_Too_Large error and then close the
// TLS or DTLS session". The peer must stay usable afterwards.
func TestOversizedDirect(t *testing.T) {
	ps := startPeers(t, 1)
	target := ps[0]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	m, raw := ping(t, mallory, 6000, 6010, wire.NodeDestination(target.NodeID()))
	ctx := testCtx(t, 8*time.Second)
	ans, err := mallory.Exchange(ctx, l, raw, m.Header.TransactionID)
	switch {
	case err != nil:
		// Before 2e47fc3 the link layer dropped the fragments (wire.Reassembler over
		// MaxMessageSize) and the node never saw the request.
		t.Errorf("a %d-byte request (max-message-size 5000) got no Error_Message_Too_Large: %v", len(raw), err)
	default:
		expectCode(t, "oversized request", ans, wire.ErrMessageTooLarge)
	}
	// Still usable: a new link, a normal request.
	l2 := mallory.dial(t, target)
	expectOK(t, "ping after the oversized request", call(t, mallory, l2, mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))), wire.CodePingAns)
}

// TestRetransmittedFragmentedRequest: RFC 6940 §6.2.1: a request retransmitted with the same
// transaction id is answered again from the transaction cache. A request larger than one
// datagram travels in fragments (§6.7); its retransmission must be answered too.
func TestRetransmittedFragmentedRequest(t *testing.T) {
	ps := startPeers(t, 1)
	target := ps[0]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	for _, size := range []int{600, 2500} {
		m, raw := ping(t, mallory, size, size+10, wire.NodeDestination(target.NodeID()))
		first := exchange(t, mallory, l, m, raw)
		expectOK(t, "first transmission", first, wire.CodePingAns)
		ans, err := mallory.Exchange(testCtx(t, 5*time.Second), l, raw, m.Header.TransactionID)
		if err != nil {
			// Before 8f35d00 wire.Reassembler dropped every fragment of a transaction id
			// it had completed in the last 15 s as a late duplicate.
			t.Errorf("retransmission of a %d-byte request not answered: %v", len(raw), err)
			continue
		}
		expectOK(t, "retransmission", ans, wire.CodePingAns)
		var a, b wire.PingAns
		if a.UnmarshalBinary(first.Body) != nil || b.UnmarshalBinary(ans.Body) != nil || a.ResponseID != b.ResponseID {
			t.Errorf("%d bytes: retransmission answered anew (response id %d, first %d), not from the transaction cache", len(raw), b.ResponseID, a.ResponseID)
		}
	}
}

// TestRetransmissionAnswerSigned: the answer a peer sends again from its transaction cache
// to a retransmitted request (RFC 6940 §6.2.1) must be signed like the first (§6.3.4:
// every message is signed; a requester drops answers that do not verify), else a request
// whose first answer was lost can never complete.
func TestRetransmissionAnswerSigned(t *testing.T) {
	ps := startPeers(t, 1)
	target := ps[0]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	m := mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))
	raw := mallory.Encode(m)
	for i := 1; i <= 3; i++ {
		ans := exchange(t, mallory, l, m, raw)
		expectOK(t, "ping", ans, wire.CodePingAns)
		ids, err := (&node.CertSecurity{}).Verify(ans)
		if err != nil || len(ids) == 0 || ids[0] != target.NodeID() {
			t.Errorf("BUG: transmission %d answered without a valid signature of %s: %v (signature algorithm %+v). "+
				"overlay/node/route.go serveRequest caches the answer before sendAnswer signs its copy, so answers from "+
				"the transaction cache go out unsigned and a node's deliver drops them (\"answer signature\"); fix: cache "+
				"the signed copy (sign, then set e.answer = &c); the signature covers overlay, transaction id and contents "+
				"only, so the cached copy stays valid with a new destination list",
				i, target.NodeID(), err, ans.Security.Signature.Algorithm)
		}
	}
}

// TestFragmentsReassembledOnlyAtTheDestination: RFC 6940 §6.7: "Any node along the path can
// fragment the message, but only the final destination reassembles the fragments." Mallory
// sends a Ping for carol (a node linked to the peer) in fragments through the peer: each
// fragment reaches carol as a fragment as soon as it is sent (the peer holds none back
// until the message is complete), carrying the peer's via entry for mallory, and carol
// reassembles the Ping. A Ping sent in fragments through the peer to a second peer is
// reassembled and answered there.
func TestFragmentsReassembledOnlyAtTheDestination(t *testing.T) {
	ps := startPeers(t, 2)
	relay, far := ps[0], ps[1]
	mallory, carol := newUser(t, "mallory"), newUser(t, "carol")
	frags := make(chan *wire.ForwardingHeader, 16)
	carol.Fragment = func(_ node.Link, h *wire.ForwardingHeader) { frags <- h }
	whole := make(chan *wire.Message, 4)
	carol.Intercept = func(_ node.Link, m *wire.Message) { whole <- m }
	lc := carol.dial(t, relay)
	expectOK(t, "carol's ping (the peer links her)", call(t, carol, lc, carol.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(relay.NodeID()))), wire.CodePingAns)

	lm := mallory.dial(t, relay)
	m, raw := ping(t, mallory, 1200, 1300, wire.NodeDestination(carol.NodeID))
	parts, err := wire.Fragment(raw, 500)
	if err != nil || len(parts) < 3 {
		t.Fatalf("%d fragments: %v", len(parts), err)
	}
	for i, p := range parts {
		if err := mallory.Send(testCtx(t, 10*time.Second), lm, p); err != nil {
			t.Fatal(err)
		}
		select {
		case h := <-frags:
			if h.TransactionID != m.Header.TransactionID || h.IsLastFragment() != (i == len(parts)-1) {
				t.Fatalf("fragment %d: transaction %x, fragment field %#x", i, h.TransactionID, h.Fragment)
			}
			if len(h.ViaList) != 1 || h.ViaList[0].Node != mallory.NodeID {
				t.Fatalf("fragment %d: via list %v, want mallory's entry from the peer (§6.1.2)", i, h.ViaList)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fragment %d of %d did not reach carol: the peer on the path holds fragments (reassembles them)", i+1, len(parts))
		}
	}
	for done := false; !done; {
		select {
		case got := <-whole: // and the peer's own requests (Update)
			done = got.Header.TransactionID == m.Header.TransactionID && got.Code == wire.CodePingReq
		case <-time.After(10 * time.Second):
			t.Fatal("carol did not reassemble the Ping")
		}
	}

	m, raw = ping(t, mallory, 1200, 1300, wire.NodeDestination(far.NodeID()))
	parts, _ = wire.Fragment(raw, 500)
	for _, p := range parts[:len(parts)-1] {
		if err := mallory.Send(testCtx(t, 10*time.Second), lm, p); err != nil {
			t.Fatal(err)
		}
	}
	ans, err := mallory.Exchange(testCtx(t, 20*time.Second), lm, parts[len(parts)-1], m.Header.TransactionID)
	if err != nil {
		t.Fatalf("Ping in fragments through the peer to another: %v", err)
	}
	expectOK(t, "Ping in fragments through the peer", ans, wire.CodePingAns)
}

// TestHostileFragmentsAtTheDestination: a peer's reassembly (RFC 6940 §6.7) is bounded and
// not poisoned. After 1000 fragment sets that never complete (the first fragment of each of
// 1000 Pings, more than its buffer holds: it drops the oldest, §6.7 "MUST drop the message"),
// the peer still answers a Ping sent in fragments. A fragment that overlaps another of its
// message with other bytes drops the message; the genuine fragments sent again are
// reassembled and answered (the forged bytes are not mixed into them).
func TestHostileFragmentsAtTheDestination(t *testing.T) {
	target := startPeers(t, 1)[0]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	dest := wire.NodeDestination(target.NodeID())
	for i := 0; i < 1000; i++ {
		_, raw := ping(t, mallory, 1200, 1300, dest)
		parts, err := wire.Fragment(raw, 500)
		if err != nil {
			t.Fatal(err)
		}
		if err := mallory.Send(testCtx(t, 10*time.Second), l, parts[0]); err != nil {
			t.Fatal(err)
		}
	}
	sendInParts := func(what string, m *wire.Message, parts [][]byte) {
		t.Helper()
		for _, p := range parts[:len(parts)-1] {
			if err := mallory.Send(testCtx(t, 10*time.Second), l, p); err != nil {
				t.Fatal(err)
			}
		}
		ans, err := mallory.Exchange(testCtx(t, 20*time.Second), l, parts[len(parts)-1], m.Header.TransactionID)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		expectOK(t, what, ans, wire.CodePingAns)
	}
	m, raw := ping(t, mallory, 1200, 1300, dest)
	parts, _ := wire.Fragment(raw, 500)
	sendInParts("Ping in fragments after 1000 incomplete ones", m, parts)

	m, raw = ping(t, mallory, 1200, 1300, dest)
	coarse, _ := wire.Fragment(raw, 700)
	fine, _ := wire.Fragment(raw, 450)
	_, hl, err := wire.DecodeHeader(fine[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := flip(fine[1], hl+20)
	if err := mallory.Send(testCtx(t, 10*time.Second), l, coarse[0]); err != nil {
		t.Fatal(err)
	}
	expectDropped(t, "a fragment overlapping another with other bytes", mallory.Client, l, forged, m.Header.TransactionID)
	sendInParts("the genuine fragments after a forged overlap", m, coarse)
}
