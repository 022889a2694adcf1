package discovery

import (
	"net/netip"
	"strings"
	"testing"
	"time"

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

func secs(n int) (d time.Duration) { return time.Duration(n) * 1e9 }
