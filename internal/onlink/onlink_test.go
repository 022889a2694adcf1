package onlink

import (
	"net"
	"net/netip"
	"testing"
)

func TestContains(t *testing.T) {
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("10.1.2.3").To4(), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("192.168.7.9"), Mask: net.CIDRMask(120, 128)}, // 16-byte IPv4
		&net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)},
		&net.IPAddr{IP: net.ParseIP("172.16.0.1")}, // no prefix: ignored
	}
	for s, want := range map[string]bool{
		"10.1.2.200":  true,
		"10.1.3.1":    false,
		"192.168.7.1": true,
		"192.168.8.1": false,
		"fd00::1234":  true,
		"fd00:1::1":   false,
		"172.16.0.1":  false,
	} {
		if got := contains(addrs, netip.MustParseAddr(s)); got != want {
			t.Errorf("contains(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestSkipSTUN: the host's own interface addresses are on-link; loopback never is skipped.
func TestSkipSTUN(t *testing.T) {
	if SkipSTUN(netip.MustParseAddr("127.0.0.1")) || SkipSTUN(netip.MustParseAddr("::1")) {
		t.Fatal("loopback skipped")
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP)
		if ip = ip.Unmap(); ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		if !SkipSTUN(ip) {
			t.Errorf("own address %v not on-link", ip)
		}
	}
}
