package link

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// NetworkChanged tells the transport that the host's addresses changed (overlay/netwatch):
// links whose local address was removed die at once (nothing can reach them there any
// more; for links on the listener's wildcard socket, the address they sent from), and STUN servers held back after failed handshakes are tried again (they failed,
// most likely, because of the network that is gone). New addresses need nothing here:
// every ICE gathering enumerates the interfaces afresh (RFC 6940 §6.5.1.5), and the
// listener is bound to the wildcard address.
func (t *Transport) NetworkChanged(removed []netip.Addr) {
	t.mu.Lock()
	t.stunDown = nil
	var gone []*Link
	for l := range t.links {
		if l.src.IsValid() && slices.Contains(removed, l.src) {
			gone = append(gone, l)
		}
	}
	t.mu.Unlock()
	for _, l := range gone {
		l.fail(fmt.Errorf("%w: local address %v removed", ErrLinkDead, l.src))
	}
}

// sourceAddr is the address conn sends from: its local address, or, bound to the wildcard
// address, the one the kernel's routing picks for its remote address now (a connected UDP
// socket asks the route without sending anything). Invalid when neither is known.
func sourceAddr(conn net.Conn) netip.Addr {
	if a, ok := localIP(conn.LocalAddr()); ok {
		return a
	}
	ra, ok := conn.RemoteAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	c, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	a, _ := localIP(c.LocalAddr())
	return a
}

func localIP(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch v := a.(type) {
	case *net.UDPAddr:
		ip = v.IP
	case *net.TCPAddr:
		ip = v.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || addr.Unmap().IsUnspecified() {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}
