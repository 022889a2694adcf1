package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/stun"

	"github.com/chordphone/chordphone/internal/pionslog"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Transport is the link layer of one node: it makes bootstrap and ICE links, accepts links
// on its listen address and delivers what every link receives to the node.Receiver.
// It implements node.Connector.
type Transport struct {
	s      Settings
	recv   node.Receiver
	log    *slog.Logger
	keylog io.Writer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mux   *udpMux
	tcpLn net.Listener

	mu     sync.Mutex
	links  map[*Link]struct{}
	agents map[*attachment]struct{}
	stun   []string
	// stunDown holds STUN servers whose bootstrap handshake failed lately: ICE skips them
	// until then, so that one dead bootstrap address does not hold every gathering until
	// its timeout.
	stunDown map[string]time.Time
	turn     []*stun.URI
	closed   bool
	onLink   func(node.Link)
}

var _ node.Connector = (*Transport)(nil)

// New starts a Transport. With settings.ListenAddr it listens at once (UDP and TCP, same
// port); links it accepts deliver to receiver like the ones it makes.
func New(settings Settings, receiver node.Receiver) (*Transport, error) {
	s, err := settings.withDefaults()
	if err != nil {
		return nil, err
	}
	if receiver == nil {
		return nil, errors.New("link: nil receiver")
	}
	t := &Transport{s: s, recv: receiver, log: s.Logger.With("node", s.NodeID.String()[:8]),
		links: map[*Link]struct{}{}, agents: map[*attachment]struct{}{}}
	if s.KeyLog != nil {
		t.keylog = &lockedWriter{w: s.KeyLog}
	}
	t.stun = append(t.stun, s.STUNServers...)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if s.ListenAddr != "" {
		if err := t.listen(s.ListenAddr); err != nil {
			t.cancel()
			return nil, err
		}
	}
	return t, nil
}

// OnLink sets a function called with every link the listener accepts (bootstrap links made
// by other nodes); links are also announced by their first message to the Receiver.
func (t *Transport) OnLink(f func(node.Link)) {
	t.mu.Lock()
	t.onLink = f
	t.mu.Unlock()
}

// NodeID is this node's Node-ID.
func (t *Transport) NodeID() wire.NodeID { return t.s.NodeID }

// Addr is the UDP (and TCP) listen address, or an invalid AddrPort without a listener.
func (t *Transport) Addr() netip.AddrPort {
	if t.mux == nil {
		return netip.AddrPort{}
	}
	return t.mux.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// AddSTUNServer adds the address of a known peer that answers STUN (its listen address); ICE
// gathers server-reflexive candidates through it (RFC 6940 §6.5.1.4).
func (t *Transport) AddSTUNServer(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.stun {
		if a == addr {
			return
		}
	}
	t.stun = append(t.stun, addr)
}

// RemoveSTUNServer forgets a STUN server (a peer whose connection was lost).
func (t *Transport) RemoveSTUNServer(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, a := range t.stun {
		if a == addr {
			t.stun = append(t.stun[:i], t.stun[i+1:]...)
			return
		}
	}
}

// SetTURNServers sets the TURN servers (turn: URIs with Username and Password) that ICE
// allocates relayed candidates on (RFC 6940 §9, TURN-SERVICE). With none, ICE offers host and
// server-reflexive candidates only.
func (t *Transport) SetTURNServers(urls []*stun.URI) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.turn = append([]*stun.URI(nil), urls...)
}

// dropSTUNServer forgets a STUN server learnt from a link that is gone, unless it was
// configured or another link to it is up (RFC 6940 §6.5.1.4).
func (t *Transport) dropSTUNServer(addr string) {
	for _, a := range t.s.STUNServers {
		if a == addr {
			return
		}
	}
	t.mu.Lock()
	for l := range t.links {
		if l.datagram && l.Err() == nil && l.conn.RemoteAddr().String() == addr {
			t.mu.Unlock()
			return
		}
	}
	t.mu.Unlock()
	t.RemoveSTUNServer(addr)
}

func (t *Transport) turnServers() []*stun.URI {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*stun.URI(nil), t.turn...)
}

func (t *Transport) stunServers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	out := make([]string, 0, len(t.stun))
	for _, a := range t.stun {
		if until, down := t.stunDown[a]; down && now.Before(until) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// stunServerDown notes that addr did not answer a bootstrap handshake: gathering leaves it
// out for a minute (or until a handshake with it succeeds).
func (t *Transport) stunServerDown(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stunDown == nil {
		t.stunDown = map[string]time.Time{}
	}
	t.stunDown[addr] = time.Now().Add(time.Minute)
}

// Links returns the links that are up.
func (t *Transport) Links() []*Link {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Link, 0, len(t.links))
	for l := range t.links {
		out = append(out, l)
	}
	return out
}

// Close closes every link, attachment and listener and waits for their goroutines.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	links := make([]*Link, 0, len(t.links))
	for l := range t.links {
		links = append(links, l)
	}
	agents := make([]*attachment, 0, len(t.agents))
	for a := range t.agents {
		agents = append(agents, a)
	}
	t.mu.Unlock()
	t.cancel()
	for _, l := range links {
		_ = l.Close()
	}
	for _, a := range agents {
		_ = a.Close()
	}
	if t.tcpLn != nil {
		_ = t.tcpLn.Close()
	}
	if t.mux != nil {
		t.mux.close()
	}
	t.wg.Wait()
	return nil
}

func (t *Transport) addLink(l *Link) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.fail(ErrLinkClosed)
		return fmt.Errorf("link: transport closed: %w", ErrLinkClosed)
	}
	t.links[l] = struct{}{}
	t.mu.Unlock()
	l.start()
	return nil
}

func (t *Transport) removeLink(l *Link) {
	t.mu.Lock()
	delete(t.links, l)
	t.mu.Unlock()
}

// ---- security configuration

func (t *Transport) dtlsConfig(pc *peerCheck, alpn bool) *dtls.Config {
	c := &dtls.Config{
		Certificates:          []tls.Certificate{t.s.Certificate},
		ClientAuth:            dtls.RequireAnyClientCert, // RFC 6940 §6.5.1.13: mutual authentication
		InsecureSkipVerify:    true,                      // verified by VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { return pc.check(raw) },
		ExtendedMasterSecret:  dtls.RequireExtendedMasterSecret,
		KeyLogWriter:          t.keylog,
		LoggerFactory:         pionslog.New(t.log),
		MTU:                   t.s.MTU,
		ConnectContextMaker: func() (context.Context, func()) {
			return context.WithTimeout(t.ctx, t.s.HandshakeTimeout)
		},
	}
	if alpn {
		c.SupportedProtocols = []string{alpnInOrder}
	}
	return c
}

func (t *Transport) tlsConfig(pc *peerCheck) *tls.Config {
	return &tls.Config{
		Certificates:          []tls.Certificate{t.s.Certificate},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, //nolint:gosec // verified by VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { return pc.check(raw) },
		KeyLogWriter:          t.keylog,
		// TLS 1.2 (RFC 6940 §6.6.5 cites RFC 5246): the client's handshake completes only
		// after the server has accepted the client certificate.
		MinVersion: tls.VersionTLS12,
		MaxVersion: tls.VersionTLS12,
		NextProtos: []string{alpnTLS},
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// ---- listener (RFC 6940 §11.4: bootstrap nodes accept DTLS and TLS)

func (t *Transport) listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("link: listen address %q: %w", addr, err)
	}
	var lastErr error
	for try := 0; try < 20; try++ {
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("link: listen %q: %w", addr, err)
		}
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return fmt.Errorf("link: listen udp %q: %w", addr, err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = pc.Close()
			lastErr = err
			if port == "0" {
				continue // another process holds this TCP port: pick another UDP port
			}
			return fmt.Errorf("link: listen tcp %q: %w", addr, err)
		}
		t.tcpLn = ln
		t.mux = newUDPMux(pc, t.log, &t.wg, t.acceptDTLS)
		t.wg.Add(1)
		go func() { defer t.wg.Done(); t.acceptTCP() }()
		t.log.Info("listening", "udp", pc.LocalAddr().String(), "tcp", ln.Addr().String())
		return nil
	}
	return fmt.Errorf("link: listen %q: %w", addr, lastErr)
}

func (t *Transport) acceptDTLS(c *muxConn) {
	pc := &peerCheck{verify: t.s.VerifyPeer, under: newNotifyConn(c)}
	dc, err := dtls.ServerWithContext(t.ctx, pc.under, t.dtlsConfig(pc, true))
	if err != nil {
		_ = c.Close()
		t.log.Info("bootstrap DTLS handshake refused", "from", c.remote.String(), "err", err)
		return
	}
	c.m.promote(c)
	l := newLink(t, dc, wire.LinkDTLSUDPSRNoICE, pc, negotiatedProtocol(dc), func() { _ = c.Close() })
	if t.addLink(l) == nil {
		t.announce(l)
	}
}

func (t *Transport) acceptTCP() {
	for {
		c, err := t.tcpLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Debug("tcp accept", "err", err)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			pc := &peerCheck{verify: t.s.VerifyPeer}
			tc := tls.Server(c, t.tlsConfig(pc))
			ctx, cancel := context.WithTimeout(t.ctx, t.s.HandshakeTimeout)
			defer cancel()
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				t.log.Info("bootstrap TLS handshake refused", "from", c.RemoteAddr().String(), "err", err)
				return
			}
			l := newLink(t, tc, wire.LinkTLSTCPFHNoICE, pc, tc.ConnectionState().NegotiatedProtocol, nil)
			if t.addLink(l) == nil {
				t.announce(l)
			}
		}()
	}
}

func (t *Transport) announce(l *Link) {
	t.mu.Lock()
	f := t.onLink
	t.mu.Unlock()
	if f != nil {
		f(l)
	}
}

// ---- bootstrap (RFC 6940 §11.4)

// Bootstrap connects straight to a bootstrap node, without ICE (RFC 6940 §11.4): DTLS over
// UDP for "host:port" (or "dtls://host:port"), TLS over TCP for "tls://host:port". The peer
// may have any Node-ID its certificate proves; the link's RemoteNodeID is the first.
func (t *Transport) Bootstrap(ctx context.Context, addr string) (node.Link, error) {
	return t.Dial(ctx, addr, wire.NodeID{})
}

// Dial is Bootstrap that also requires the peer to prove Node-ID expect (zero: any).
func (t *Transport) Dial(ctx context.Context, addr string, expect wire.NodeID) (*Link, error) {
	return t.dial(ctx, addr, expect, true)
}

// dial connects without ICE; a bootstrap node (not a No-ICE Attach candidate) also becomes
// a STUN server.
func (t *Transport) dial(ctx context.Context, addr string, expect wire.NodeID, bootstrap bool) (*Link, error) {
	useTLS := false
	switch {
	case strings.HasPrefix(addr, "tls://"):
		useTLS, addr = true, strings.TrimPrefix(addr, "tls://")
	case strings.HasPrefix(addr, "dtls://"):
		addr = strings.TrimPrefix(addr, "dtls://")
	}
	pc := &peerCheck{verify: t.s.VerifyPeer, expect: expect}
	if useTLS {
		return t.dialTLS(ctx, addr, pc)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("link: bootstrap %s: %w", addr, err)
	}
	var conn net.Conn
	var onClose func()
	var mc *muxConn
	if t.muxCanReach(ua.AddrPort()) {
		// From the listen port when it has no association with that address yet (then the
		// peer sees the address it can reach us at); else from a socket of its own.
		mc, _ = t.mux.dial(ua.AddrPort())
	}
	if mc != nil {
		conn, onClose = mc, func() { _ = mc.Close() }
	} else {
		uc, err := net.DialUDP("udp", nil, ua)
		if err != nil {
			return nil, fmt.Errorf("link: bootstrap %s: %w", addr, err)
		}
		conn = uc
	}
	pc.under = newNotifyConn(conn)
	dc, err := dtls.ClientWithContext(ctx, pc.under, t.dtlsConfig(pc, true))
	if err != nil {
		if onClose != nil {
			onClose()
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(ctx.Err(), context.Canceled) {
			t.stunServerDown(ua.String())
		}
		_ = conn.Close()
		return nil, fmt.Errorf("link: bootstrap DTLS %s: %w", addr, err)
	}
	if mc != nil {
		mc.m.promote(mc)
	}
	l := newLink(t, dc, wire.LinkDTLSUDPSRNoICE, pc, negotiatedProtocol(dc), onClose)
	if err := t.addLink(l); err != nil {
		return nil, err
	}
	if !bootstrap {
		return l, nil
	}
	t.followSTUNServer(ua.String(), l)
	return l, nil
}

// followSTUNServer makes the bootstrap node at addr a STUN server (it answers STUN on that
// address, RFC 6940 §6.5.1.4) until the link l to it is lost.
func (t *Transport) followSTUNServer(addr string, l *Link) {
	t.AddSTUNServer(addr)
	t.mu.Lock()
	delete(t.stunDown, addr)
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		<-l.Done()
		t.dropSTUNServer(addr)
	}()
}

// dialTLS connects to a bootstrap node over TLS/TCP (RFC 6940 §6.6.1, TLS-TCP-FH-NO-ICE).
func (t *Transport) dialTLS(ctx context.Context, addr string, pc *peerCheck) (*Link, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("link: bootstrap %s: %w", addr, err)
	}
	tc := tls.Client(c, t.tlsConfig(pc))
	hctx, cancel := context.WithTimeout(ctx, t.s.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("link: bootstrap TLS %s: %w", addr, err)
	}
	l := newLink(t, tc, wire.LinkTLSTCPFHNoICE, pc, tc.ConnectionState().NegotiatedProtocol, nil)
	if err := t.addLink(l); err != nil {
		return nil, err
	}
	return l, nil
}

// muxCanReach reports whether the listen socket can send to remote (bootstrap links then share
// the listen port, which the peer also answers STUN on).
func (t *Transport) muxCanReach(remote netip.AddrPort) bool {
	if t.mux == nil {
		return false
	}
	local := t.Addr().Addr()
	r := remote.Addr().Unmap()
	if local.IsUnspecified() {
		return local.Is6() || r.Is4()
	}
	return local.Unmap().Is4() == r.Is4() && local.IsLoopback() == r.IsLoopback()
}
