package turn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/stun"
)

// IsPublic reports whether a may be a TURN server's address: a global unicast address that is
// not private (RFC 6940 §9 names RFC 1918; the IPv6 unique local and the shared address
// space of RFC 6598 are just as unreachable from outside).
func IsPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	return !netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}

// PublicAddrs returns this host's interface addresses that IsPublic accepts, IPv4 first
// (peers behind IPv4 NATs are the ones that need relays).
func PublicAddrs() []netip.Addr {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && IsPublic(p.Addr()) {
			out = append(out, p.Addr().Unmap())
		}
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int {
		switch {
		case a.Is4() && !b.Is4():
			return -1
		case b.Is4() && !a.Is4():
			return 1
		}
		return 0
	})
	return out
}

// Reflexive asks a STUN server ("host:port", e.g. a peer's link address, RFC 6940 §6.5.1.4)
// which address a UDP socket bound to local ("ip:0") is seen from.
func Reflexive(ctx context.Context, local, server string) (netip.AddrPort, error) {
	pc, err := net.ListenPacket("udp", local)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("turn: reflexive: %w", err)
	}
	defer pc.Close()
	ua, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("turn: reflexive: %w", err)
	}
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	for rto := 250 * time.Millisecond; rto <= 2*time.Second; rto *= 2 { // RFC 5389 §7.2.1
		if _, err := pc.WriteTo(req.Raw, ua); err != nil {
			return netip.AddrPort{}, fmt.Errorf("turn: reflexive: %w", err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(rto))
		for {
			if ctx.Err() != nil {
				return netip.AddrPort{}, ctx.Err()
			}
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break // timeout: send again
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.TransactionID != req.TransactionID {
				continue
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil {
				return netip.AddrPort{}, fmt.Errorf("turn: reflexive: %w", err)
			}
			a, _ := netip.AddrFromSlice(xa.IP)
			return netip.AddrPortFrom(a.Unmap(), uint16(xa.Port)), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("turn: reflexive: no STUN answer from %s", server)
}

// Publicly decides whether this host should serve TURN (RFC 6940 §9) and on which address:
// the first public interface address whose reflexive address, as a STUN server among
// stunServers sees it, is the same. With no STUN server known (the overlay's first peer),
// a public interface address is taken as it is. ok is false when the host is behind a NAT
// or has no public address.
func Publicly(ctx context.Context, stunServers []string) (addr netip.Addr, ok bool) {
	return publicly(ctx, PublicAddrs(), stunServers)
}

func publicly(ctx context.Context, addrs []netip.Addr, stunServers []string) (netip.Addr, bool) {
	for _, a := range addrs {
		if len(stunServers) == 0 {
			return a, true
		}
		for _, s := range stunServers {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			r, err := Reflexive(sctx, net.JoinHostPort(a.String(), "0"), s)
			cancel()
			if err != nil {
				continue
			}
			if r.Addr() == a {
				return a, true
			}
			break // seen from another address: behind a NAT
		}
	}
	return netip.Addr{}, false
}
