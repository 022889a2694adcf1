package link

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/stun"
)

// udpMux shares one UDP socket between STUN (answered here) and DTLS associations with many
// remote addresses, demultiplexed by the first byte of each datagram (RFC 7983 §7).
type udpMux struct {
	pc     *net.UDPConn
	log    *slog.Logger
	accept func(*muxConn) // called in its own goroutine for a new remote sending a ClientHello
	wg     *sync.WaitGroup

	mu      sync.Mutex
	conns   map[netip.AddrPort]*muxConn
	pending map[netip.AddrPort]*muxConn // handshakes replacing an established association
	closed  bool
}

func newUDPMux(pc *net.UDPConn, log *slog.Logger, wg *sync.WaitGroup, accept func(*muxConn)) *udpMux {
	m := &udpMux{pc: pc, log: log, accept: accept, wg: wg, conns: map[netip.AddrPort]*muxConn{}, pending: map[netip.AddrPort]*muxConn{}}
	wg.Add(1)
	go func() { defer wg.Done(); m.readLoop() }()
	return m
}

func (m *udpMux) readLoop() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := m.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Debug("udp read", "err", err)
			continue
		}
		if n == 0 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		b := buf[:n]
		switch {
		case b[0] <= 3: // STUN (RFC 7983)
			m.answerSTUN(b, from)
		case b[0] >= 20 && b[0] <= 63: // DTLS
			if c := m.route(b, from); c != nil {
				c.push(append([]byte(nil), b...))
			}
		}
	}
}

// route picks the association a DTLS record from remote belongs to, creating one for a new
// remote's handshake. A ClientHello (epoch 0) from a remote whose association is established
// means the peer restarted on the same port: a new association handshakes beside the old one
// (handshake and change_cipher_spec records go to it) and replaces it once the peer has
// authenticated (promote); until then the old one keeps its traffic.
func (m *udpMux) route(b []byte, from netip.AddrPort) *muxConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, p := m.conns[from], m.pending[from]
	hello := b[0] == 22 && len(b) > 13 && b[3] == 0 && b[4] == 0 && b[13] == 1
	switch {
	case p != nil && (b[0] == 22 || b[0] == 20):
		return p
	case c == nil && b[0] == 22 && !m.closed && m.accept != nil:
		c = m.newConnLocked(from)
		m.startAccept(c)
		return c
	case c != nil && hello && c.established.Load() && !m.closed && m.accept != nil:
		p = &muxConn{m: m, remote: from, packetQueue: newPacketQueue(), pending: true}
		m.pending[from] = p
		m.startAccept(p)
		return p
	}
	return c
}

func (m *udpMux) startAccept(c *muxConn) {
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.accept(c) }()
}

// promote marks c established; a pending association replaces the old one, which is closed.
func (m *udpMux) promote(c *muxConn) {
	c.established.Store(true)
	if !c.pending {
		return
	}
	m.mu.Lock()
	if m.pending[c.remote] != c || m.closed {
		m.mu.Unlock()
		return
	}
	delete(m.pending, c.remote)
	old := m.conns[c.remote]
	m.conns[c.remote] = c
	c.pending = false
	m.mu.Unlock()
	if old != nil {
		m.log.Info("peer restarted: new association replaces the old one", "addr", c.remote.String())
		_ = old.Close()
	}
}

// answerSTUN answers a Binding request with the source address it came from, so that peers
// learn their server-reflexive address from each other (RFC 6940 §6.5.1.4).
func (m *udpMux) answerSTUN(b []byte, from netip.AddrPort) {
	if resp, ok := stunResponse(b, from); ok {
		_, _ = m.pc.WriteToUDPAddrPort(resp, from)
	}
}

// stunResponse builds the Binding success response to request b from address from; ok is
// false for anything that is not a well-formed Binding request.
func stunResponse(b []byte, from netip.AddrPort) (resp []byte, ok bool) {
	req := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := req.Decode(); err != nil || req.Type != stun.BindingRequest {
		return nil, false
	}
	r, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().Unmap().AsSlice(), Port: int(from.Port())},
		stun.NewSoftware("chordphone"), stun.Fingerprint)
	if err != nil {
		return nil, false
	}
	return r.Raw, true
}

// dial returns the association with remote, creating it.
func (m *udpMux) dial(remote netip.AddrPort) (*muxConn, error) {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, net.ErrClosed
	}
	if m.conns[remote] != nil {
		return nil, errors.New("an association with that address exists already")
	}
	return m.newConnLocked(remote), nil
}

func (m *udpMux) newConnLocked(remote netip.AddrPort) *muxConn {
	c := &muxConn{m: m, remote: remote, packetQueue: newPacketQueue()}
	m.conns[remote] = c
	return c
}

func (m *udpMux) remove(c *muxConn) {
	m.mu.Lock()
	if m.conns[c.remote] == c {
		delete(m.conns, c.remote)
	}
	if m.pending[c.remote] == c {
		delete(m.pending, c.remote)
	}
	m.mu.Unlock()
}

func (m *udpMux) close() {
	m.mu.Lock()
	m.closed = true
	cs := make([]*muxConn, 0, len(m.conns)+len(m.pending))
	for _, c := range m.conns {
		cs = append(cs, c)
	}
	for _, c := range m.pending {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	_ = m.pc.Close()
}

// muxConn is one remote address on the shared socket, as a packet-preserving net.Conn.
type muxConn struct {
	m           *udpMux
	remote      netip.AddrPort
	pending     bool        // replaces an established association once its handshake succeeds (under m.mu)
	established atomic.Bool // its DTLS handshake completed
	packetQueue             // Read and the deadlines; the socket's reader pushes
}

func (c *muxConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.m.pc.WriteToUDPAddrPort(p, c.remote)
}

func (c *muxConn) Close() error {
	if c.shut() {
		c.m.remove(c)
	}
	return nil
}

func (c *muxConn) LocalAddr() net.Addr  { return c.m.pc.LocalAddr() }
func (c *muxConn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.remote) }
