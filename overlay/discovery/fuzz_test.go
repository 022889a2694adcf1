package discovery

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/chordphone/chordphone/overlay/wire"
)

// FuzzHandle feeds arbitrary mDNS messages (anyone on the LAN can send
// them) to the browser: no panic, and every reported peer is complete.
func FuzzHandle(f *testing.F) {
	svc := Service{Overlay: "lan", NodeID: wire.NodeID{1, 2, 3}, User: "a@lan", Port: 6084}
	for _, ttl := range []int{120, 0} {
		if m, err := svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}, secs(ttl)); err == nil {
			f.Add(m)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		b := newBrowser("lan", "")
		now := time.Now()
		peers := b.handle(msg, 1, now)
		peers = append(peers, b.handle(msg, 2, now)...)
		peers = append(peers, b.sweep(now.Add(time.Hour))...)
		for _, p := range peers {
			// Overlay names are domain names: compared without regard to case.
			if !p.Gone && (len(p.Addrs) == 0 || !strings.EqualFold(p.Overlay, "lan")) {
				t.Fatalf("incomplete peer %+v", p)
			}
		}
	})
}

// FuzzQuery feeds arbitrary mDNS messages to the responder's parsing (questions and
// the Known-Answer list, RFC 6762 §7.1): no panic, and a question it answers is one of
// the service's, answered with a message that parses.
func FuzzQuery(f *testing.F) {
	svc := Service{Overlay: "lan", NodeID: wire.NodeID{1, 2, 3}, Port: 6084, TTL: DefaultTTL}
	b := newBrowser("lan", "")
	if m, err := svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, DefaultTTL); err == nil {
		b.handle(m, 1, time.Now())
	}
	for _, known := range []bool{false, true} {
		next := time.Second
		if !known {
			next = time.Hour // nothing outlasts it: an empty Known-Answer list
		}
		if m, err := b.queryMessage(time.Now(), next); err == nil {
			f.Add(m)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, q, ok := svc.toAnswer(msg)
		if !ok {
			return
		}
		if !svc.matches(q) {
			t.Fatalf("answers %v, not a question for the service", q)
		}
		q.Class &^= 0x8000
		out, err := svc.response(0, false, &q, nil, svc.TTL)
		if err != nil {
			return // e.g. an over-long name echoed: no answer
		}
		var p dnsmessage.Parser
		if _, err := p.Start(out); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
	})
}

func secs(n int) (d time.Duration) { return time.Duration(n) * 1e9 }
