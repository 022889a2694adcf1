package link

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// NetworkChanged tells the transport that the host's addresses changed (overlay/netwatch):
// links whose local address was removed die at once (nothing can reach them there any
// more), and STUN servers held back after failed handshakes are tried again (they failed,
// most likely, because of the network that is gone). New addresses need nothing here:
// every ICE gathering enumerates the interfaces afresh (RFC 6940 §6.5.1.5), and the
// listener is bound to the wildcard address.
func (t *Transport) NetworkChanged(removed []netip.Addr) {
	t.mu.Lock()
	t.stunDown = nil
	var gone []*Link
	for l := range t.links {
		if a, ok := localIP(l.conn.LocalAddr()); ok && slices.Contains(removed, a) {
			gone = append(gone, l)
		}
	}
	t.mu.Unlock()
	for _, l := range gone {
		l.fail(fmt.Errorf("%w: local address %v removed", ErrLinkDead, l.conn.LocalAddr()))
	}
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
