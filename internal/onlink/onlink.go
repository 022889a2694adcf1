// Package onlink tells whether a STUN server is on one of the host's directly connected
// networks. ICE (overlay links and call media) leaves such servers out of gathering: no NAT
// stands between the host and them, so the server-reflexive address they would report is
// the host address itself, a redundant candidate (RFC 8445 §5.1.3); and after an address
// change, the host's own or the server's, they are the ones that stop answering (an old
// bootstrap entry on the LAN), which held every gathering until its timeout.
package onlink

import (
	"net"
	"net/netip"
)

// SkipSTUN reports whether server is in the prefix of one of the host's interface
// addresses now. Loopback servers are not skipped: they answer at once, and tests on one
// host use them to get server-reflexive candidates at all.
func SkipSTUN(server netip.Addr) bool {
	server = server.Unmap()
	if !server.IsValid() || server.IsLoopback() {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	return contains(addrs, server)
}

// contains reports whether a is in one of the prefixes of addrs (*net.IPNet, as listed by
// net.InterfaceAddrs).
func contains(addrs []net.Addr, a netip.Addr) bool {
	for _, ad := range addrs {
		ipn, ok := ad.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, bits := ipn.Mask.Size()
		if ip.Is4In6() && bits == 128 {
			ones -= 96
		}
		ip = ip.Unmap()
		if p, err := ip.Prefix(ones); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}
