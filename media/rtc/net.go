package rtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"

	"github.com/chordphone/chordphone/internal/onlink"
)

// liveNet is the network ICE gathers candidates on. pion's stdnet.Net lists the host's
// interfaces once, when it is made; liveNet lists them again at every refresh (each offer
// and answer), so an ICE restart after an address change gathers on the new address
// instead of the removed one. It also leaves out the session's STUN servers that are on
// one of the host's networks at the time (package onlink).
type liveNet struct {
	*stdnet.Net // listening and dialling (stateless); its own interface list is not used
	stun        map[netip.AddrPort]bool
	mu          sync.Mutex
	ifs         []*transport.Interface
}

// errOnLink is why a STUN server is not asked.
var errOnLink = errors.New("rtc: STUN server on a directly connected network: no reflexive address to learn")

func newLiveNet(servers []ICEServer) (*liveNet, error) {
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("rtc: listing network interfaces: %w", err)
	}
	n := &liveNet{Net: std, stun: map[netip.AddrPort]bool{}}
	for _, s := range servers {
		for _, u := range s.URLs {
			if hp, ok := strings.CutPrefix(u, "stun:"); ok {
				if ap, err := netip.ParseAddrPort(hp); err == nil {
					n.stun[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
				}
			}
		}
	}
	if err := n.refresh(); err != nil {
		return nil, err
	}
	return n, nil
}

// refresh lists the host's interfaces and addresses again.
func (n *liveNet) refresh() error {
	fresh, err := stdnet.NewNet()
	if err != nil {
		return fmt.Errorf("rtc: listing network interfaces: %w", err)
	}
	ifs, _ := fresh.Interfaces()
	n.mu.Lock()
	n.ifs = ifs
	n.mu.Unlock()
	return nil
}

// ResolveUDPAddr implements transport.Net. ICE resolves each STUN server before it asks
// it; one on the host's own network (now: gathering again after an address change) is
// refused, so gathering neither asks it nor waits for it (RFC 8445 §5.1.3: its answer
// would be the host candidate again).
func (n *liveNet) ResolveUDPAddr(network, address string) (*net.UDPAddr, error) {
	a, err := n.Net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, err
	}
	ap := a.AddrPort()
	if ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()); n.stun[ap] && onlink.SkipSTUN(ap.Addr()) {
		return nil, fmt.Errorf("%w: %v", errOnLink, ap)
	}
	return a, nil
}

// Interfaces implements transport.Net.
func (n *liveNet) Interfaces() ([]*transport.Interface, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ifs, nil
}

// InterfaceByIndex implements transport.Net.
func (n *liveNet) InterfaceByIndex(index int) (*transport.Interface, error) {
	ifs, _ := n.Interfaces()
	for _, ifc := range ifs {
		if ifc.Index == index {
			return ifc, nil
		}
	}
	return nil, fmt.Errorf("%w: index=%d", transport.ErrInterfaceNotFound, index)
}

// InterfaceByName implements transport.Net.
func (n *liveNet) InterfaceByName(name string) (*transport.Interface, error) {
	ifs, _ := n.Interfaces()
	for _, ifc := range ifs {
		if ifc.Name == name {
			return ifc, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", transport.ErrInterfaceNotFound, name)
}
