package link

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/dtls/v2"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

type attachResult struct {
	link node.Link
	conn net.Conn
	err  error
}

// attach runs an Attach (app == 0) or AppAttach exchange between a (the request sender) and
// b, the way the node does: a gathers, b answers with its own parameters, both connect.
func attach(ctx context.Context, t testing.TB, a, b *peer, app uint16, expectB, expectA wire.NodeID) (ra, rb attachResult) {
	t.Helper()
	aa, err := a.t.NewAttachment(ctx, expectB, app, true)
	if err != nil {
		t.Fatal(err)
	}
	ab, err := b.t.NewAttachment(ctx, expectA, app, false)
	if err != nil {
		t.Fatal(err)
	}
	if aa.Local().Role != "passive" || ab.Local().Role != "active" {
		t.Fatalf("roles %q/%q, want passive/active (RFC 6940 §6.5.1.1)", aa.Local().Role, ab.Local().Role)
	}
	done := make(chan attachResult, 1)
	go func() {
		var r attachResult
		if app == 0 {
			r.link, r.err = ab.ConnectLink(ctx, aa.Local(), false)
		} else {
			r.conn, r.err = ab.ConnectApp(ctx, aa.Local(), false)
		}
		done <- r
	}()
	// RFC 6940 §6.5.1.13: the Attach sender is the DTLS server.
	if app == 0 {
		ra.link, ra.err = aa.ConnectLink(ctx, ab.Local(), true)
	} else {
		ra.conn, ra.err = aa.ConnectApp(ctx, ab.Local(), true)
	}
	rb = <-done
	return ra, rb
}

func TestICEAttach(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	// Each uses the other's listen port as STUN server (RFC 6940 §6.5.1.4).
	a.t.AddSTUNServer(addrOf(b))
	b.t.AddSTUNServer(addrOf(a))
	ctx := ctxT(t, 20*time.Second)
	start := time.Now()
	ra, rb := attach(ctx, t, a, b, 0, b.id.NodeID(), a.id.NodeID())
	if ra.err != nil || rb.err != nil {
		t.Fatalf("attach: %v / %v", ra.err, rb.err)
	}
	t.Logf("Attach to usable link: %v", time.Since(start))
	if ra.link.RemoteNodeID() != b.id.NodeID() || rb.link.RemoteNodeID() != a.id.NodeID() {
		t.Fatal("wrong remote Node-IDs")
	}
	if p := ra.link.(*Link).Protocol(); p != wire.LinkDTLSUDPSR {
		t.Fatalf("protocol %d", p)
	}
	exchange(t, a, b, ra.link, rb.link, 100, 500, 10*time.Second)
	_ = rb.link.Close()
	select {
	case <-ra.link.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("close not noticed")
	}
}

func TestICECandidates(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	a.t.AddSTUNServer(addrOf(b))
	at, err := a.t.NewAttachment(ctxT(t, 10*time.Second), b.id.NodeID(), 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	var host, srflx int
	for _, c := range at.Local().Candidates {
		t.Logf("candidate %v type %d prio %d rel %v", c.AddrPort, c.Type, c.Priority, c.RelAddrPort)
		switch c.Type {
		case wire.CandHost:
			host++
		case wire.CandSrflx:
			srflx++
		}
		if c.OverlayLink != wire.LinkDTLSUDPSR {
			t.Fatalf("overlay link %d", c.OverlayLink)
		}
	}
	if host == 0 {
		t.Fatal("no host candidate")
	}
	if srflx == 0 {
		t.Fatal("no server-reflexive candidate from the peer's STUN answer")
	}
}

func TestICEAttachWrongNodeID(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	c := testIdentity(t, "carol")
	ctx := ctxT(t, 20*time.Second)
	// alice expects carol, but bob answers.
	ra, rb := attach(ctx, t, a, b, 0, c.NodeID(), a.id.NodeID())
	if !errors.Is(ra.err, ErrWrongNodeID) {
		t.Fatalf("attach sender: %v, want ErrWrongNodeID", ra.err)
	}
	if rb.err == nil {
		t.Fatal("answerer's link came up although the sender refused it")
	}
	if len(a.t.Links()) != 0 || len(b.t.Links()) != 0 {
		t.Fatal("links left over")
	}
}

func TestAppAttach(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	ctx := ctxT(t, 20*time.Second)
	ra, rb := attach(ctx, t, a, b, 5060, b.id.NodeID(), a.id.NodeID())
	if ra.err != nil || rb.err != nil {
		t.Fatalf("appattach: %v / %v", ra.err, rb.err)
	}
	defer ra.conn.Close()
	defer rb.conn.Close()
	if id := ra.conn.(*AppConn).RemoteNodeID(); id != b.id.NodeID() {
		t.Fatalf("remote %s", id)
	}
	msgA := []byte("INVITE sip:bob@test.example SIP/2.0\r\n\r\n")
	msgB := []byte("SIP/2.0 200 OK\r\n\r\n")
	go func() { _, _ = ra.conn.Write(msgA) }()
	buf := make([]byte, 1500)
	n, err := rb.conn.Read(buf)
	if err != nil || string(buf[:n]) != string(msgA) {
		t.Fatalf("bob read %q, %v", buf[:n], err)
	}
	go func() { _, _ = rb.conn.Write(msgB) }()
	n, err = ra.conn.Read(buf)
	if err != nil || string(buf[:n]) != string(msgB) {
		t.Fatalf("alice read %q, %v", buf[:n], err)
	}
	_ = rb.conn.Close()
	_ = ra.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ra.conn.Read(buf); !errors.Is(err, io.EOF) && err == nil {
		t.Fatalf("read after peer close: %v", err)
	}
}

// TestDeadSTUNServerLeftOut: a configured STUN server (a bootstrap address) whose bootstrap
// handshake timed out is left out of gathering, so it does not hold every Attach until the
// gather timeout; a cancelled handshake says nothing about the server and leaves it in.
func TestDeadSTUNServerLeftOut(t *testing.T) {
	hole, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	dead := hole.LocalAddr().String()
	b := newPeer(t, "bob", nil)
	a := newPeer(t, "alice", func(s *Settings) { s.STUNServers = []string{dead, addrOf(b)} })
	if got := a.t.stunServers(); !slices.Equal(got, []string{dead, addrOf(b)}) {
		t.Fatalf("STUN servers %v", got)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.t.Bootstrap(cctx, dead); err == nil {
		t.Fatal("bootstrap with a cancelled context succeeded")
	}
	if got := a.t.stunServers(); !slices.Contains(got, dead) {
		t.Fatalf("a cancelled handshake took %s out: %v", dead, got)
	}
	if _, err := a.t.Bootstrap(ctxT(t, 500*time.Millisecond), dead); err == nil {
		t.Fatal("bootstrap to a silent address succeeded")
	}
	if got := a.t.stunServers(); !slices.Equal(got, []string{addrOf(b)}) {
		t.Fatalf("after the failed handshake, STUN servers %v, want only %s", got, addrOf(b))
	}
	at, err := a.t.NewAttachment(ctxT(t, 10*time.Second), b.id.NodeID(), 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
}

// TestNoICECandidates: RFC 6940 §6.5.1.11: a peer that offers only No-ICE candidates
// (DTLS-UDP-SR-NO-ICE, TLS-TCP-FH-NO-ICE) is connected to without ICE checks, the DTLS or TLS
// handshake being the connectivity check; a certificate other than the Node-ID that sent the
// Attach closes the connection. An AppAttach connects by DTLS to a No-ICE candidate too.
func TestNoICECandidates(t *testing.T) {
	a := newPeer(t, "alice", nil)
	b := newPeer(t, "bob", nil)
	c := newPeer(t, "carol", nil)
	noICE := func(typ wire.OverlayLinkType, p *peer) node.IceParams {
		return node.IceParams{Ufrag: "u", Password: "p", Role: "passive",
			Candidates: []wire.IceCandidate{{AddrPort: p.t.Addr(), OverlayLink: typ, Type: wire.CandHost, Priority: 1}}}
	}
	for _, typ := range []wire.OverlayLinkType{wire.LinkDTLSUDPSRNoICE, wire.LinkTLSTCPFHNoICE} {
		att, err := a.t.NewAttachment(ctxT(t, 10*time.Second), b.id.NodeID(), 0, false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := att.ConnectLink(ctxT(t, 10*time.Second), noICE(typ, b), false)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if l.RemoteNodeID() != b.id.NodeID() {
			t.Fatalf("%v: link to %s", typ, l.RemoteNodeID())
		}
		b.accepted(t)
		msg := testMessage(t, uint64(typ), 100)
		if err := l.Send(ctxT(t, 10*time.Second), msg); err != nil {
			t.Fatal(err)
		}
		if m := b.rx.next(t, 10*time.Second); !bytes.Equal(m.msg, msg) {
			t.Fatalf("%v: message altered", typ)
		}
		_ = l.Close()
	}

	// Carol's address given as bob's: her certificate is not bob's.
	att, err := a.t.NewAttachment(ctxT(t, 10*time.Second), b.id.NodeID(), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := att.ConnectLink(ctxT(t, 10*time.Second), noICE(wire.LinkDTLSUDPSRNoICE, c), false); !errors.Is(err, ErrWrongNodeID) {
		t.Fatalf("No-ICE candidate of another node: link %v, %v; want ErrWrongNodeID", l, err)
	}

	// AppAttach: bob's application listens for DTLS on a No-ICE candidate.
	pc := &peerCheck{verify: b.t.s.VerifyPeer, expect: a.id.NodeID()}
	ln, err := dtls.Listen("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, b.t.dtlsConfig(pc, false))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // owner: this test; ends when the listener closes
		conn, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(conn, conn)
			_ = conn.Close()
		}
	}()
	app := noICE(wire.LinkDTLSUDPSRNoICE, b)
	app.Candidates[0].AddrPort = ln.Addr().(*net.UDPAddr).AddrPort()
	att, err = a.t.NewAttachment(ctxT(t, 10*time.Second), b.id.NodeID(), 5060, true)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := att.ConnectApp(ctxT(t, 10*time.Second), app, true)
	if err != nil {
		t.Fatalf("AppAttach to a No-ICE candidate: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("OPTIONS")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "OPTIONS" {
		t.Fatalf("AppAttach echo: %q, %v", buf[:n], err)
	}
}
