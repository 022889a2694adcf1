package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/chordphone/chordphone/overlay/netwatch"
)

// mconn is a pair of sockets on port 5353, 0.0.0.0 joined to 224.0.0.251 and [::]
// joined to ff02::fb (RFC 6762 §3), on some interfaces: the ones given, or (dynamic) every
// up, multicast-capable one, followed as they come and go. An interface is joined in each
// family it has an address of; without IPv6 on the host there is no IPv6 socket.
type mconn struct {
	pc4     net.PacketConn
	p4      *ipv4.PacketConn
	pc6     net.PacketConn // nil without IPv6
	p6      *ipv6.PacketConn
	dynamic bool
	wmu     sync.Mutex
	in      chan packet   // what the sockets' readers received
	done    chan struct{} // closed by close
	readers sync.WaitGroup

	mu     sync.Mutex
	ifaces []net.Interface
	v4, v6 map[int]bool // interface indexes joined in each family
	// owned is a watcher this socket started (none was given); closed with it.
	owned *netwatch.Watcher
}

type packet struct {
	b       []byte
	ifIndex int
	src     net.Addr
}

// listen opens the sockets. With no interfaces given it is dynamic: it joins the groups on
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
	c := &mconn{pc4: pc, p4: ipv4.NewPacketConn(pc), dynamic: dynamic, in: make(chan packet, 16),
		done: make(chan struct{}), v4: map[int]bool{}, v6: map[int]bool{}}
	if pc6, err := lc.ListenPacket(ctx, "udp6", "[::]:5353"); err == nil {
		c.pc6, c.p6 = pc6, ipv6.NewPacketConn(pc6)
		_ = c.p6.SetControlMessage(ipv6.FlagInterface, true)
		_ = c.p6.SetMulticastLoopback(true)
		_ = c.p6.SetMulticastHopLimit(255) // RFC 6762 §11
	}
	c.join(ifaces)
	if len(c.ifaces) == 0 && !dynamic {
		_ = c.closeSockets()
		return nil, ErrNoInterface
	}
	_ = c.p4.SetControlMessage(ipv4.FlagInterface, true)
	_ = c.p4.SetMulticastLoopback(true) // peers on the same host see each other
	_ = c.p4.SetMulticastTTL(255)       // RFC 6762 §11
	c.readers.Add(1)
	go func() { defer c.readers.Done(); c.readLoop(c.read4) }() // owner: mconn (close)
	if c.p6 != nil {
		c.readers.Add(1)
		go func() { defer c.readers.Done(); c.readLoop(c.read6) }() // owner: mconn (close)
	}
	return c, nil
}

// families reports whether ifi has an IPv4 and an IPv6 address.
func families(ifi *net.Interface) (has4, has6 bool) {
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ipn.IP.To4() != nil {
				has4 = true
			} else {
				has6 = true
			}
		}
	}
	return has4, has6
}

// join joins the groups on the interfaces of ifaces, in each family they have an address
// of and that is not joined yet, and returns those newly joined in some family.
func (c *mconn) join(ifaces []net.Interface) []net.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	var added []net.Interface
	for i := range ifaces {
		ifi := &ifaces[i]
		has4, has6 := families(ifi)
		joined := false
		if has4 && !c.v4[ifi.Index] && c.p4.JoinGroup(ifi, &net.UDPAddr{IP: mdnsGroup}) == nil {
			c.v4[ifi.Index], joined = true, true
		}
		if has6 && c.p6 != nil && !c.v6[ifi.Index] && c.p6.JoinGroup(ifi, &net.UDPAddr{IP: mdnsGroup6}) == nil {
			c.v6[ifi.Index], joined = true, true
		}
		if !joined {
			continue
		}
		added = append(added, *ifi)
		if !slices.ContainsFunc(c.ifaces, func(x net.Interface) bool { return x.Index == ifi.Index }) {
			c.ifaces = append(c.ifaces, *ifi)
		}
	}
	return added
}

// refresh follows the host's interfaces (dynamic sockets only): it joins the groups on
// new ones (and in families they gained) and forgets those gone (or no longer able to
// multicast). It reports whether anything changed.
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
		// Leaving fails when the interface is gone, which is fine.
		if c.v4[ifi.Index] {
			_ = c.p4.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup})
		}
		if c.v6[ifi.Index] {
			_ = c.p6.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup6})
		}
		delete(c.v4, ifi.Index)
		delete(c.v6, ifi.Index)
		changed = true
	}
	c.ifaces = kept
	c.mu.Unlock()
	return len(c.join(now)) > 0 || changed
}

// interfaces returns the interfaces the sockets are joined on.
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

// multicast sends b to the mDNS groups on ifi, in each family it is joined in.
func (c *mconn) multicast(b []byte, ifi *net.Interface) error {
	c.mu.Lock()
	in4, in6 := c.v4[ifi.Index], c.v6[ifi.Index]
	c.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var errs []error
	if in4 {
		err := c.p4.SetMulticastInterface(ifi)
		if err == nil {
			_, err = c.p4.WriteTo(b, nil, mdnsAddr)
		}
		errs = append(errs, err)
	}
	if in6 {
		err := c.p6.SetMulticastInterface(ifi)
		if err == nil {
			_, err = c.p6.WriteTo(b, nil, &net.UDPAddr{IP: mdnsGroup6, Port: 5353, Zone: ifi.Name})
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *mconn) unicast(b []byte, to net.Addr) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if u, ok := to.(*net.UDPAddr); ok && u.IP.To4() == nil && c.pc6 != nil {
		_, err := c.pc6.WriteTo(b, to)
		return err
	}
	_, err := c.pc4.WriteTo(b, to)
	return err
}

func (c *mconn) read4(buf []byte) (int, int, net.Addr, error) {
	n, cm, src, err := c.p4.ReadFrom(buf)
	idx := 0
	if cm != nil {
		idx = cm.IfIndex
	}
	return n, idx, src, err
}

func (c *mconn) read6(buf []byte) (int, int, net.Addr, error) {
	n, cm, src, err := c.p6.ReadFrom(buf)
	idx := 0
	if cm != nil {
		idx = cm.IfIndex
	}
	return n, idx, src, err
}

// readLoop hands what one socket receives to read, until the socket is closed.
func (c *mconn) readLoop(rd func([]byte) (int, int, net.Addr, error)) {
	buf := make([]byte, 9000)
	for {
		n, idx, src, err := rd(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case c.in <- packet{b: append([]byte(nil), buf[:n]...), ifIndex: idx, src: src}:
		case <-c.done:
			return
		}
	}
}

// read returns the next datagram, from either family, and the interface index it came in
// on; net.ErrClosed once the sockets are closed.
func (c *mconn) read(buf []byte) (int, int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(buf, p.b), p.ifIndex, p.src, nil
	case <-c.done:
		return 0, 0, nil, net.ErrClosed
	}
}

func (c *mconn) closeSockets() error {
	var err error
	if c.pc6 != nil {
		err = c.pc6.Close()
	}
	return errors.Join(c.pc4.Close(), err)
}

func (c *mconn) close() error {
	c.mu.Lock()
	w := c.owned
	c.owned = nil
	c.mu.Unlock()
	if w != nil {
		w.Close()
	}
	select {
	case <-c.done:
		return nil // closed already
	default:
	}
	close(c.done)
	err := c.closeSockets()
	c.readers.Wait()
	return err
}
