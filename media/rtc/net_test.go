package rtc

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestOnLinkSTUNServerNotAsked: a STUN server on one of the host's own networks is refused
// when ICE resolves it (it would report the host address again, and one that stopped
// answering after an address change held gathering up); a loopback one, an off-link one
// and a TURN server are resolved as usual.
func TestOnLinkSTUNServerNotAsked(t *testing.T) {
	own := ownAddr(t)
	onLink := netip.AddrPortFrom(own, 3478).String()
	n, err := newLiveNet([]ICEServer{
		{URLs: []string{"stun:" + onLink, "stun:127.0.0.1:3478", "stun:198.51.100.7:3478"}},
		{URLs: []string{"turn:" + netip.AddrPortFrom(own, 3479).String() + "?transport=udp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ResolveUDPAddr("udp4", onLink); !errors.Is(err, errOnLink) {
		t.Fatalf("on-link STUN server %s resolved: %v", onLink, err)
	}
	for _, a := range []string{"127.0.0.1:3478", "198.51.100.7:3478", netip.AddrPortFrom(own, 3479).String()} {
		if _, err := n.ResolveUDPAddr("udp4", a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

// ownAddr is one of the host's IPv4 addresses that is not loopback (the test skips without).
func ownAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			ip, _ := netip.AddrFromSlice(ipn.IP.To4())
			return ip
		}
	}
	t.Skip("no IPv4 address but loopback")
	return netip.Addr{}
}
