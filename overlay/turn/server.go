package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"
	pturn "github.com/pion/turn/v2"

	"github.com/chordphone/chordphone/internal/pionslog"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Defaults of ServerConfig.
const (
	DefaultRealm                  = "chordphone"
	DefaultMaxAllocationsPerUser  = 48 // every overlay link and call of a peer may hold one per relay
	DefaultMaxAllocations         = 1024
	DefaultBandwidthPerAllocation = 32000 // bytes per second each way: 256 kbit/s, several Opus calls
)

// ServerConfig configures a Server. Zero fields take the defaults in their comments.
type ServerConfig struct {
	// ListenAddr is the UDP address the server listens on ("0.0.0.0:3478"); ":0" picks a
	// port. Ignored when PacketConn is set.
	ListenAddr string
	// PacketConn, if set, is the socket the server answers on (the Server closes it).
	PacketConn net.PacketConn
	// RelayIP is the address put in relayed candidates: this host's public address.
	RelayIP netip.Addr
	// RelayBind is the address relay sockets bind to: "0.0.0.0" (or "::" for IPv6 RelayIP).
	RelayBind string
	// Realm of the long-term credentials (RFC 5389 §15.7): DefaultRealm.
	Realm string
	// Secret checks the credentials (see NewCredentials and OverlaySecret). Required.
	Secret []byte
	// MaxAllocationsPerUser caps the allocations one Node-ID holds at once (RFC 5766 §6.2
	// step 7): DefaultMaxAllocationsPerUser.
	MaxAllocationsPerUser int
	// MaxAllocations caps all allocations of the server: DefaultMaxAllocations.
	MaxAllocations int
	// BandwidthPerAllocation caps the bytes per second one allocation relays in each
	// direction; datagrams over the cap are dropped: DefaultBandwidthPerAllocation.
	// Negative: no cap.
	BandwidthPerAllocation int
	// Refuse, if set, refuses allocations for some Node-IDs (the configuration's bad-node).
	Refuse func(wire.NodeID) bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// now is the clock (tests).
	now func() time.Time
}

// Stats are a Server's counters.
type Stats struct {
	Allocations int    `json:"allocations"` // allocations now
	Users       int    `json:"users"`       // Node-IDs holding allocations now
	Allocated   uint64 `json:"allocated"`   // allocations made since start
	Refused     uint64 `json:"refused"`     // allocations refused by a cap
	AuthFailed  uint64 `json:"auth_failed"` // requests with bad or expired credentials
	Relayed     uint64 `json:"relayed"`     // bytes relayed, both directions
	Dropped     uint64 `json:"dropped"`     // bytes dropped by the bandwidth cap
}

// Server is a TURN server (RFC 5766) for the overlay's peers.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	conn *listenConn
	srv  *pturn.Server

	mu      sync.Mutex
	perUser map[wire.NodeID]int
	total   int
	changed chan struct{} // closed and replaced when the allocation count changes
	closed  bool

	allocated, refused, authFailed, relayed, dropped atomic.Uint64
}

// ErrQuota is the cause when an allocation would exceed a cap.
var ErrQuota = errors.New("turn: allocation quota reached")

// NewServer starts a TURN server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("turn: server: no secret")
	}
	if !cfg.RelayIP.IsValid() {
		return nil, errors.New("turn: server: no relay address")
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
		if cfg.RelayIP.Unmap().Is6() {
			cfg.RelayBind = "::"
		}
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.BandwidthPerAllocation == 0 {
		cfg.BandwidthPerAllocation = DefaultBandwidthPerAllocation
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	pc := cfg.PacketConn
	if pc == nil {
		addr := cfg.ListenAddr
		if addr == "" {
			addr = "0.0.0.0:3478"
		}
		var err error
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("turn: listen %s: %w", addr, err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("layer", "turn"), perUser: map[wire.NodeID]int{}, changed: make(chan struct{})}
	s.conn = &listenConn{PacketConn: pc}
	srv, err := pturn.NewServer(pturn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		LoggerFactory: pionslog.New(s.log),
		PacketConnConfigs: []pturn.PacketConnConfig{{
			PacketConn:            s.conn,
			RelayAddressGenerator: &relayGen{s: s},
		}},
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("turn: server: %w", err)
	}
	s.srv = srv
	s.log.Info("TURN server", "listen", pc.LocalAddr().String(), "relay", cfg.RelayIP.String(),
		"per_user", cfg.MaxAllocationsPerUser, "bandwidth_Bps", cfg.BandwidthPerAllocation)
	return s, nil
}

// Addr is the UDP address the server listens on.
func (s *Server) Addr() netip.AddrPort {
	if ua, ok := s.conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	return netip.AddrPort{}
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Allocations: s.total, Users: len(s.perUser)}
	s.mu.Unlock()
	st.Allocated = s.allocated.Load()
	st.Refused = s.refused.Load()
	st.AuthFailed = s.authFailed.Load()
	st.Relayed = s.relayed.Load()
	st.Dropped = s.dropped.Load()
	return st
}

// AllocationsOf is the number of allocations node holds.
func (s *Server) AllocationsOf(node wire.NodeID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perUser[node]
}

// WaitAllocations waits until the server holds exactly n allocations.
func (s *Server) WaitAllocations(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		total, ch := s.total, s.changed
		s.mu.Unlock()
		if total == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("turn: %d allocations, waiting for %d: %w", total, n, ctx.Err())
		}
	}
}

// Close stops the server and frees every allocation.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.srv.Close()
}

// auth is the long-term credential check (RFC 5389 §10.2.2) for REST API credentials.
func (s *Server) auth(username, realm string, src net.Addr) ([]byte, bool) {
	if realm != s.cfg.Realm {
		s.authFailed.Add(1)
		return nil, false
	}
	node, err := ParseUsername(username, s.cfg.now())
	if err == nil && s.cfg.Refuse != nil && s.cfg.Refuse(node) {
		err = fmt.Errorf("turn: node %s is refused", node)
	}
	if err != nil {
		s.authFailed.Add(1)
		s.log.Debug("TURN credentials refused", "from", src.String(), "err", err)
		return nil, false
	}
	return pturn.GenerateAuthKey(username, realm, credentialPassword(s.cfg.Secret, username)), true
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// reserve counts a new allocation for node, or refuses it (RFC 5766 §6.2 step 7).
func (s *Server) reserve(node wire.NodeID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[node] >= s.cfg.MaxAllocationsPerUser {
		s.refused.Add(1)
		return fmt.Errorf("%w: %s holds %d", ErrQuota, node, s.perUser[node])
	}
	if s.total >= s.cfg.MaxAllocations {
		s.refused.Add(1)
		return fmt.Errorf("%w: server holds %d", ErrQuota, s.total)
	}
	s.perUser[node]++
	s.total++
	s.allocated.Add(1)
	s.notifyLocked()
	return nil
}

func (s *Server) release(node wire.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[node]--; s.perUser[node] <= 0 {
		delete(s.perUser, node)
	}
	s.total--
	s.notifyLocked()
}

// listenConn is the server's socket. It notes the username of every Allocate request it
// reads: pion/turn handles a socket's datagrams one at a time, so the relay generator, which
// pion calls while handling that request, learns whose allocation it makes.
type listenConn struct {
	net.PacketConn
	mu   sync.Mutex
	user string
}

func (c *listenConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil && stun.IsMessage(b[:n]) {
		m := &stun.Message{Raw: append([]byte(nil), b[:n]...)}
		if m.Decode() == nil && m.Type.Method == stun.MethodAllocate && m.Type.Class == stun.ClassRequest {
			var u stun.Username
			user := ""
			if u.GetFrom(m) == nil {
				user = u.String()
			}
			c.mu.Lock()
			c.user = user
			c.mu.Unlock()
		}
	}
	return n, addr, err
}

func (c *listenConn) allocating() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// relayGen makes relay sockets, within the caps.
type relayGen struct{ s *Server }

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	s := g.s
	node, err := ParseUsername(s.conn.allocating(), s.cfg.now())
	if err != nil {
		return nil, nil, err
	}
	if err := s.reserve(node); err != nil {
		s.log.Info("TURN allocation refused", "node", node.String(), "err", err)
		return nil, nil, err
	}
	pc, err := net.ListenPacket(network, net.JoinHostPort(s.cfg.RelayBind, fmt.Sprint(requestedPort)))
	if err != nil {
		s.release(node)
		return nil, nil, fmt.Errorf("turn: relay socket: %w", err)
	}
	la := pc.LocalAddr().(*net.UDPAddr)
	relayAddr := &net.UDPAddr{IP: net.IP(s.cfg.RelayIP.Unmap().AsSlice()), Port: la.Port}
	rc := &relayConn{PacketConn: pc, s: s, node: node}
	if bw := s.cfg.BandwidthPerAllocation; bw > 0 {
		rc.in = newBucket(bw, s.cfg.now)
		rc.out = newBucket(bw, s.cfg.now)
	}
	s.log.Debug("TURN allocation", "node", node.String(), "relay", relayAddr.String())
	return rc, relayAddr, nil
}

func (g *relayGen) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errors.New("turn: TCP relays not supported")
}

// relayConn is an allocation's relay socket: it counts and caps what it relays and releases
// the allocation's quota when pion closes it (deallocation or expiry).
type relayConn struct {
	net.PacketConn
	s       *Server
	node    wire.NodeID
	in, out *bucket
	once    sync.Once
}

func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		if c.in != nil && !c.in.take(n) {
			c.s.dropped.Add(uint64(n))
			continue
		}
		c.s.relayed.Add(uint64(n))
		return n, addr, nil
	}
}

func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.out != nil && !c.out.take(len(b)) {
		c.s.dropped.Add(uint64(len(b)))
		return len(b), nil // dropped like a congested link
	}
	c.s.relayed.Add(uint64(len(b))) // before the write: the peer may have it before WriteTo returns
	return c.PacketConn.WriteTo(b, addr)
}

func (c *relayConn) Close() error {
	err := c.PacketConn.Close()
	c.once.Do(func() {
		c.s.release(c.node)
		c.s.log.Debug("TURN allocation freed", "node", c.node.String())
	})
	return err
}

// bucket is a token bucket of rate bytes per second holding at most half a second's worth
// (at least 4 KiB, so that one full-size datagram always fits).
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate int, now func() time.Time) *bucket {
	b := &bucket{rate: float64(rate), burst: max(float64(rate)/2, 4096), now: now}
	b.tokens, b.last = b.burst, now()
	return b
}

func (b *bucket) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
