package memnet

import (
	"context"
	"testing"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

type sink struct{ got chan string }

func (s *sink) Receive(from node.Link, msg []byte) {
	s.got <- from.RemoteNodeID().String()[:2] + ":" + string(msg)
}

func id(b byte) wire.NodeID { return wire.NodeID{b} }

func TestBootstrapLinkDeliversAndDies(t *testing.T) {
	nw := New()
	a, _ := nw.Endpoint(id(0xaa), "a:1")
	b, _ := nw.Endpoint(id(0xbb), "b:1")
	defer a.Close()
	sb := &sink{make(chan string, 4)}
	b.SetReceiver(sb)
	l, err := a.Bootstrap(context.Background(), "b:1")
	if err != nil {
		t.Fatal(err)
	}
	if l.RemoteNodeID() != id(0xbb) {
		t.Fatal("remote id")
	}
	buf := []byte("hello")
	l.Send(context.Background(), buf)
	buf[0] = 'X' // the receiver owns a copy
	if got := <-sb.got; got != "aa:hello" {
		t.Fatalf("got %q", got)
	}
	if _, err := a.Bootstrap(context.Background(), "nowhere:1"); err == nil {
		t.Fatal("bootstrap to unknown address")
	}
	b.Close() // the remote process dies: the link dies on this side too
	<-l.Done()
	if err := l.Send(context.Background(), []byte("x")); err == nil {
		t.Fatal("send on dead link")
	}
	if m, _ := nw.Counters(); m != 1 {
		t.Fatalf("%d messages counted", m)
	}
}

func TestAttachmentRendezvous(t *testing.T) {
	nw := New()
	a, _ := nw.Endpoint(id(0xaa), "10.0.0.1:1")
	b, _ := nw.Endpoint(id(0xbb), "10.0.0.2:1")
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	aa, _ := a.NewAttachment(ctx, id(0xbb), 0, true)
	ba, _ := b.NewAttachment(ctx, id(0xaa), 0, false)
	if aa.Local().Role != "active" || ba.Local().Role != "passive" || len(aa.Local().Candidates) != 1 {
		t.Fatal("ice params")
	}
	la, err := aa.ConnectLink(ctx, ba.Local(), true)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := ba.ConnectLink(ctx, aa.Local(), false)
	if err != nil {
		t.Fatal(err)
	}
	if la.RemoteNodeID() != id(0xbb) || lb.RemoteNodeID() != id(0xaa) {
		t.Fatal("link ends")
	}
	lb.Close()
	<-la.Done()
	// App connections are pipes.
	aa, _ = a.NewAttachment(ctx, id(0xbb), 5060, true)
	ba, _ = b.NewAttachment(ctx, id(0xaa), 5060, false)
	ca, err := aa.ConnectApp(ctx, ba.Local(), true)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ba.ConnectApp(ctx, aa.Local(), false)
	if err != nil {
		t.Fatal(err)
	}
	go ca.Write([]byte("sip"))
	p := make([]byte, 3)
	if _, err := cb.Read(p); err != nil || string(p) != "sip" {
		t.Fatalf("pipe: %q %v", p, err)
	}
	// Unknown remote ufrag: ICE fails.
	x, _ := a.NewAttachment(ctx, id(0xbb), 0, true)
	if _, err := x.ConnectLink(ctx, node.IceParams{Ufrag: "nope"}, true); err == nil {
		t.Fatal("connect to unknown ufrag")
	}
	x.Close()
}
