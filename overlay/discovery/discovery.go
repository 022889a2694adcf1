// Package discovery finds the peers of a zero-configuration LAN overlay by
// DNS-SD (RFC 6763) over multicast DNS (RFC 6762). RFC 7890 §2.5 notes this
// use; RFC 6940 itself has no multicast bootstrap.
//
// Each peer announces one service instance:
//
//	<node-id hex>._reload._udp.local.  PTR/SRV/TXT
//	<node-id hex>.reload.local.        A/AAAA (the peer's addresses)
//
// "reload" is the IANA service name of RELOAD (port 6084); "_udp" because
// overlay links are DTLS (use Proto "tcp" for TLS links). The SRV port is the
// peer's overlay link port. The TXT record carries
//
//	txtvers=1  overlay=<overlay name>  node-id=<32 hex>  [user=<user name>]
//
// Browsers filter on overlay=, so several overlays can share a LAN.
//
// Queries and announcements go to 224.0.0.251 and ff02::fb (port 5353) on each interface
// in each family it has an address of; A and AAAA records carry the peer's addresses
// (IPv6 link-local ones excepted: a record has no zone). Announce and Browse follow the host's
// interfaces and addresses (overlay/netwatch): they join the group on interfaces that
// come up later, announce new addresses and query again at once.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/chordphone/chordphone/overlay/netwatch"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ServiceName is the DNS-SD service name (IANA "reload").
const ServiceName = "_reload"

// DefaultTTL of announced records (RFC 6762 §10 suggests 120 s for records
// naming hosts).
const DefaultTTL = 120 * time.Second

var (
	mdnsGroup  = net.IPv4(224, 0, 0, 251)
	mdnsAddr   = &net.UDPAddr{IP: mdnsGroup, Port: 5353}
	mdnsGroup6 = net.ParseIP("ff02::fb") // RFC 6762 §3
)

// Service is what a peer announces.
type Service struct {
	Overlay string
	NodeID  wire.NodeID
	User    string // optional, e.g. alice@lan
	Port    int    // overlay link port
	// Proto is "udp" (DTLS links, default) or "tcp" (TLS links).
	Proto string
	// Addrs, when set, are announced instead of the addresses of the
	// interface a query arrives on.
	Addrs []netip.Addr
	// Interfaces to announce on; default every up, multicast-capable one, followed as
	// interfaces and addresses come and go (Watch).
	Interfaces []net.Interface
	// Watch reports changes of the host's networks (nil: a watcher of its own).
	Watch *netwatch.Watcher
	TTL   time.Duration
}

// Peer is a peer found on the LAN.
type Peer struct {
	Instance string
	Overlay  string
	NodeID   wire.NodeID
	User     string
	Addrs    []netip.AddrPort
	// Gone is set when the peer said goodbye (TTL 0).
	Gone bool
}

func serviceType(proto string) string {
	if proto == "" {
		proto = "udp"
	}
	return ServiceName + "._" + proto + ".local."
}

func (s *Service) instance() string { return s.NodeID.String() + "." + serviceType(s.Proto) }
func (s *Service) host() string     { return s.NodeID.String() + ".reload.local." }

// Interfaces returns the up, multicast-capable interfaces with an address (IPv4 or IPv6).
func Interfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if has4, has6 := families(&ifi); has4 || has6 {
			out = append(out, ifi)
		}
	}
	return out, nil
}

func ifaceAddrs(ifi *net.Interface) []netip.Addr {
	addrs, _ := ifi.Addrs()
	var out []netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue // no zone in an AAAA record
		}
		out = append(out, ip)
	}
	return out
}

func mustName(s string) (dnsmessage.Name, error) {
	n, err := dnsmessage.NewName(s)
	if err != nil {
		return n, fmt.Errorf("dns name %q: %w", s, err)
	}
	return n, nil
}

// response builds the answer to a query for the service: PTR (or the asked
// record) in answers, the rest in additionals (RFC 6763 §12).
// With legacy set it answers a legacy unicast query (RFC 6762 §6.7):
// same ID, question echoed, TTL at most 10 s, no cache-flush bits.
func (s *Service) response(id uint16, legacy bool, q *dnsmessage.Question, addrs []netip.Addr, ttl time.Duration) ([]byte, error) {
	typ, err := mustName(serviceType(s.Proto))
	if err != nil {
		return nil, err
	}
	inst, err := mustName(s.instance())
	if err != nil {
		return nil, err
	}
	host, err := mustName(s.host())
	if err != nil {
		return nil, err
	}
	secs := uint32(ttl / time.Second)
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, Authoritative: true})
	b.EnableCompression()
	if legacy && q != nil {
		if err := b.StartQuestions(); err != nil {
			return nil, err
		}
		if err := b.Question(*q); err != nil {
			return nil, err
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	const flush = dnsmessage.Class(0x8000) // cache-flush bit (RFC 6762 §10.2)
	in := dnsmessage.ClassINET
	if legacy && secs > 10 {
		secs = 10
	}
	hdr := func(n dnsmessage.Name, unique bool) dnsmessage.ResourceHeader {
		c := in
		if unique && !legacy {
			c |= flush
		}
		return dnsmessage.ResourceHeader{Name: n, Class: c, TTL: secs}
	}
	if err := b.PTRResource(hdr(typ, false), dnsmessage.PTRResource{PTR: inst}); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	if err := b.SRVResource(hdr(inst, true), dnsmessage.SRVResource{Port: uint16(s.Port), Target: host}); err != nil {
		return nil, err
	}
	txt := []string{"txtvers=1", "overlay=" + s.Overlay, "node-id=" + s.NodeID.String()}
	if s.User != "" {
		txt = append(txt, "user="+s.User)
	}
	if err := b.TXTResource(hdr(inst, true), dnsmessage.TXTResource{TXT: txt}); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.Is4() {
			err = b.AResource(hdr(host, true), dnsmessage.AResource{A: a.As4()})
		} else {
			err = b.AAAAResource(hdr(host, true), dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// matches reports whether question q asks for something of s.
func (s *Service) matches(q dnsmessage.Question) bool {
	name := strings.ToLower(q.Name.String())
	switch {
	case name == serviceType(s.Proto) && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL):
		return true
	case name == "_services._dns-sd._udp.local." && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL):
		return true
	case name == strings.ToLower(s.instance()) && (q.Type == dnsmessage.TypeSRV || q.Type == dnsmessage.TypeTXT || q.Type == dnsmessage.TypeALL):
		return true
	case name == strings.ToLower(s.host()) && (q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeAAAA || q.Type == dnsmessage.TypeALL):
		return true
	}
	return false
}

// Lookup browses for peers of overlay for the given time and returns those
// found (not gone).
func Lookup(ctx context.Context, overlay string, timeout time.Duration) ([]Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch, err := BrowseWith(ctx, overlay, BrowseOptions{once: true})
	if err != nil {
		return nil, err
	}
	found := map[string]Peer{}
	var order []string
	for p := range ch {
		if p.Gone {
			delete(found, p.Instance)
			continue
		}
		if _, ok := found[p.Instance]; !ok {
			order = append(order, p.Instance)
		}
		found[p.Instance] = p
	}
	var out []Peer
	for _, k := range order {
		if p, ok := found[k]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// ErrNoInterface is returned when no interface can do multicast.
var ErrNoInterface = errors.New("no multicast-capable network interface")
