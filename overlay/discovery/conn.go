package discovery

import (
	"context"
	"fmt"
	"net"
	"sync"

	"golang.org/x/net/ipv4"
)

// mconn is a socket on 0.0.0.0:5353 joined to 224.0.0.251 on some
// interfaces.
type mconn struct {
	pc     net.PacketConn
	p      *ipv4.PacketConn
	ifaces []net.Interface
	wmu    sync.Mutex
}

func listen(ctx context.Context, ifaces []net.Interface) (*mconn, error) {
	if len(ifaces) == 0 {
		var err error
		if ifaces, err = Interfaces(); err != nil {
			return nil, err
		}
	}
	lc := net.ListenConfig{Control: reuse}
	pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:5353")
	if err != nil {
		return nil, fmt.Errorf("mdns: %w", err)
	}
	p := ipv4.NewPacketConn(pc)
	var joined []net.Interface
	for i := range ifaces {
		if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: mdnsGroup}); err == nil {
			joined = append(joined, ifaces[i])
		}
	}
	if len(joined) == 0 {
		_ = pc.Close()
		return nil, ErrNoInterface
	}
	_ = p.SetControlMessage(ipv4.FlagInterface, true)
	_ = p.SetMulticastLoopback(true) // peers on the same host see each other
	_ = p.SetMulticastTTL(255)       // RFC 6762 §11
	return &mconn{pc: pc, p: p, ifaces: joined}, nil
}

func (c *mconn) iface(index int) *net.Interface {
	for i := range c.ifaces {
		if c.ifaces[i].Index == index {
			return &c.ifaces[i]
		}
	}
	return nil
}

// multicast sends b to the mDNS group on ifi.
func (c *mconn) multicast(b []byte, ifi *net.Interface) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	_, err := c.p.WriteTo(b, nil, mdnsAddr)
	return err
}

func (c *mconn) unicast(b []byte, to net.Addr) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.pc.WriteTo(b, to)
	return err
}

// read returns the next datagram and the interface index it came in on.
func (c *mconn) read(buf []byte) (int, int, net.Addr, error) {
	n, cm, src, err := c.p.ReadFrom(buf)
	idx := 0
	if cm != nil {
		idx = cm.IfIndex
	}
	return n, idx, src, err
}

func (c *mconn) close() error { return c.pc.Close() }
