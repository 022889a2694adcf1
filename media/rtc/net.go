package rtc

import (
	"fmt"
	"sync"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// liveNet is the network ICE gathers candidates on. pion's stdnet.Net lists the host's
// interfaces once, when it is made; liveNet lists them again at every refresh (each offer
// and answer), so an ICE restart after an address change gathers on the new address
// instead of the removed one.
type liveNet struct {
	*stdnet.Net // listening and dialling (stateless); its own interface list is not used
	mu          sync.Mutex
	ifs         []*transport.Interface
}

func newLiveNet() (*liveNet, error) {
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("rtc: listing network interfaces: %w", err)
	}
	n := &liveNet{Net: std}
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
