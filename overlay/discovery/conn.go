package discovery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"

	"golang.org/x/net/ipv4"

	"github.com/chordphone/chordphone/overlay/netwatch"
)

// mconn is a socket on 0.0.0.0:5353 joined to 224.0.0.251 on some interfaces: the ones
// given, or (dynamic) every up, multicast-capable one, followed as they come and go.
type mconn struct {
	pc      net.PacketConn
	p       *ipv4.PacketConn
	dynamic bool
	wmu     sync.Mutex

	mu     sync.Mutex
	ifaces []net.Interface
	// owned is a watcher this socket started (none was given); closed with it.
	owned *netwatch.Watcher
}

// listen opens the socket. With no interfaces given it is dynamic: it joins the group on
// every interface able to multicast now, and on those that appear later (refresh), so a
// phone started before its network still finds its LAN; then no interface at all is no
// error.
func listen(ctx context.Context, ifaces []net.Interface, dynamic bool) (*mconn, error) {
	if len(ifaces) == 0 {
		var err error
		if ifaces, err = Interfaces(); err != nil {
			return nil, err
		}
	} else {
		dynamic = false
	}
	lc := net.ListenConfig{Control: reuse}
	pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:5353")
	if err != nil {
		return nil, fmt.Errorf("mdns: %w", err)
	}
	c := &mconn{pc: pc, p: ipv4.NewPacketConn(pc), dynamic: dynamic}
	c.join(ifaces)
	if len(c.ifaces) == 0 && !dynamic {
		_ = pc.Close()
		return nil, ErrNoInterface
	}
	_ = c.p.SetControlMessage(ipv4.FlagInterface, true)
	_ = c.p.SetMulticastLoopback(true) // peers on the same host see each other
	_ = c.p.SetMulticastTTL(255)       // RFC 6762 §11
	return c, nil
}

// join joins the group on the interfaces of ifaces not joined yet and returns those.
func (c *mconn) join(ifaces []net.Interface) []net.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	var added []net.Interface
	for i := range ifaces {
		if slices.ContainsFunc(c.ifaces, func(x net.Interface) bool { return x.Index == ifaces[i].Index }) {
			continue
		}
		if err := c.p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: mdnsGroup}); err == nil {
			c.ifaces = append(c.ifaces, ifaces[i])
			added = append(added, ifaces[i])
		}
	}
	return added
}

// refresh follows the host's interfaces (dynamic sockets only): it joins the group on
// new ones and forgets those gone (or no longer able to multicast). It reports whether
// the set changed.
func (c *mconn) refresh() bool {
	if !c.dynamic {
		return false
	}
	now, err := Interfaces()
	if err != nil {
		return false
	}
	c.mu.Lock()
	kept := c.ifaces[:0]
	changed := false
	for _, ifi := range c.ifaces {
		if slices.ContainsFunc(now, func(x net.Interface) bool { return x.Index == ifi.Index && x.Name == ifi.Name }) {
			kept = append(kept, ifi)
			continue
		}
		_ = c.p.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup}) // fails when it is gone
		changed = true
	}
	c.ifaces = kept
	c.mu.Unlock()
	return len(c.join(now)) > 0 || changed
}

// interfaces returns the interfaces the socket is joined on.
func (c *mconn) interfaces() []net.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ifaces)
}

// watch returns the changes of the host's networks a dynamic socket follows: from w, or
// from a watcher of its own (closed with the socket); nil for a static socket.
func (c *mconn) watch(ctx context.Context, w *netwatch.Watcher) (<-chan netwatch.Change, func()) {
	if !c.dynamic {
		return nil, func() {}
	}
	if w == nil {
		w = netwatch.Start(ctx, netwatch.Options{})
		c.mu.Lock()
		c.owned = w
		c.mu.Unlock()
	}
	return w.Subscribe()
}

func (c *mconn) iface(index int) *net.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ifaces {
		if c.ifaces[i].Index == index {
			ifi := c.ifaces[i]
			return &ifi
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

func (c *mconn) close() error {
	c.mu.Lock()
	w := c.owned
	c.owned = nil
	c.mu.Unlock()
	if w != nil {
		w.Close()
	}
	return c.pc.Close()
}
