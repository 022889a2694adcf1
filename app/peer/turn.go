package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pion/stun"

	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/turn"
	"github.com/chordphone/chordphone/overlay/wire"
)

// RelayMode says whether a peer serves TURN to the overlay (RFC 6940 §9).
type RelayMode int

const (
	// RelayAuto serves when the peer finds it is publicly reachable: a public interface
	// address that a STUN answer from a known peer confirms (turn.Publicly). A peer that
	// listens on loopback never serves in this mode.
	RelayAuto RelayMode = iota
	// RelayOn serves (the user says this host is reachable; Relay.Addr may name the address).
	RelayOn
	// RelayOff never serves.
	RelayOff
)

// RelaySettings configure the peer's TURN service and its use of the overlay's relays.
type RelaySettings struct {
	Mode RelayMode
	// Addr is the public address to serve and advertise on (RelayOn; default: the first
	// public interface address).
	Addr netip.Addr
	// Port is the TURN server's UDP port: 3478, or any free port when that is taken.
	Port int
	// MaxAllocationsPerUser and BandwidthPerAllocation are the server's caps (see
	// turn.ServerConfig; zero: its defaults).
	MaxAllocationsPerUser  int
	BandwidthPerAllocation int
	// NoClient stops the peer from looking for relays in the overlay.
	NoClient bool
}

// ICEServer is a STUN or TURN server for the media's ICE agent (media/rtc.ICEServer).
type ICEServer struct {
	URLs       []string // "stun:host:port", "turn:host:port?transport=udp"
	Username   string
	Credential string
}

// RelayStatus is what the peer serves and uses.
type RelayStatus struct {
	Serving     bool       `json:"serving"`
	Addr        string     `json:"addr,omitempty"` // the TURN server's address when serving
	Server      turn.Stats `json:"server"`         // its counters
	Relays      []string   `json:"relays"`         // TURN servers this peer uses
	Advertised  int        `json:"advertised"`     // TURN-SERVICE records stored (turn-density)
	LastError   string     `json:"last_error,omitempty"`
	LastLookup  time.Time  `json:"last_lookup,omitzero"`
	LookupFound int        `json:"lookup_found"`
}

// relays is the peer's TURN state: its own server and advertiser, and the servers it uses.
type relays struct {
	serveMu  sync.Mutex // serialises starting and stopping the server
	mu       sync.Mutex
	settings RelaySettings
	server   *turn.Server
	adv      *turn.Advertiser
	using    []turn.Found
	expiry   time.Time
	status   RelayStatus
	cancel   context.CancelFunc
	done     chan struct{}
}

// startRelays runs after a successful Join: it starts serving TURN when this peer may (RFC
// 6940 §9), and looks for the overlay's relays once before returning (bounded), then keeps
// looking in the background so relayed candidates are ready for Attach, AppAttach and calls.
func (p *Peer) startRelays(ctx context.Context) {
	p.relay.mu.Lock()
	if p.relay.cancel != nil {
		p.relay.mu.Unlock()
		return
	}
	p.relay.settings = p.cfg.Relay
	s := p.relay.settings
	rctx, cancel := context.WithCancel(context.Background())
	p.relay.cancel, p.relay.done = cancel, make(chan struct{})
	p.relay.mu.Unlock()

	if err := p.serveRelay(ctx, s); err != nil {
		p.log.Warn("not serving TURN", "err", err)
		p.relay.mu.Lock()
		p.relay.status.LastError = err.Error()
		p.relay.mu.Unlock()
	}
	if s.NoClient {
		close(p.relay.done)
		return
	}
	found, wait := false, time.Duration(0)
	if !isLoopback(p.link.Addr().String()) {
		// Before the phone registers and calls: relays are what gets through symmetric NATs.
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		found = p.lookupRelays(fctx)
		fcancel()
		wait = 2 * time.Second
	}
	go func() { // owner: the Peer (stopRelays); refreshes the relays and their credentials
		defer close(p.relay.done)
		if found {
			wait = 10 * time.Minute
		}
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(wait):
			}
			lctx, lcancel := context.WithTimeout(rctx, 20*time.Second)
			if wait == 0 {
				wait = time.Second
			}
			if p.lookupRelays(lctx) {
				wait = 10 * time.Minute // well within the credentials' hour
			} else {
				wait = min(2*wait, 2*time.Minute)
			}
			lcancel()
		}
	}()
}

// SetRelayServing starts or stops serving TURN while running (the user's setting): stopping
// withdraws the TURN-SERVICE records and frees every allocation.
func (p *Peer) SetRelayServing(ctx context.Context, on bool) error {
	if on && p.client {
		return errors.New("a RELOAD client serves no TURN (RFC 6940 §4.2); run as a storing peer to relay")
	}
	p.relay.mu.Lock()
	if on {
		p.relay.settings.Mode = RelayOn
	} else {
		p.relay.settings.Mode = RelayOff
	}
	s := p.relay.settings
	p.relay.mu.Unlock()
	if !on {
		return p.stopServing(ctx)
	}
	return p.serveRelay(ctx, s)
}

func (p *Peer) serveRelay(ctx context.Context, s RelaySettings) error {
	p.relay.serveMu.Lock()
	defer p.relay.serveMu.Unlock()
	p.relay.mu.Lock()
	serving := p.relay.server != nil
	p.relay.mu.Unlock()
	if serving || s.Mode == RelayOff || p.document().TurnDensity <= 0 {
		return nil
	}
	addr := s.Addr
	if !addr.IsValid() {
		switch s.Mode {
		case RelayOn:
			if pub := turn.PublicAddrs(); len(pub) > 0 {
				addr = pub[0]
			} else if la := p.link.Addr().Addr(); la.IsValid() && !la.IsUnspecified() {
				addr = la
			}
		case RelayAuto:
			if isLoopback(p.link.Addr().String()) {
				return nil
			}
			var ok bool
			if addr, ok = turn.Publicly(ctx, p.bootstrapAddrs()); !ok {
				p.log.Info("not serving TURN: no publicly reachable address (RFC 6940 §9)")
				return nil
			}
		}
	}
	if !addr.IsValid() {
		return errors.New("no address to serve TURN on")
	}
	port := s.Port
	if port == 0 {
		port = 3478
	}
	cfg := turn.ServerConfig{
		ListenAddr: net.JoinHostPort(addr.String(), strconv.Itoa(port)),
		RelayIP:    addr, RelayBind: addr.String(),
		Secret:                 turn.OverlaySecret(p.document()),
		Refuse:                 func(n wire.NodeID) bool { return slices.Contains(p.document().BadNodes, n.String()) }, // RFC 6940 §11.1 bad-node
		MaxAllocationsPerUser:  s.MaxAllocationsPerUser,
		BandwidthPerAllocation: s.BandwidthPerAllocation,
		Logger:                 p.log,
	}
	srv, err := turn.NewServer(cfg)
	if err != nil && s.Port == 0 {
		cfg.ListenAddr = net.JoinHostPort(addr.String(), "0")
		srv, err = turn.NewServer(cfg)
	}
	if err != nil {
		return err
	}
	adv, err := turn.StartAdvertiser(ctx, turn.AdvertiserConfig{
		Storage:     p.storage,
		Credentials: &storage.Credentials{Key: p.id.Key, Chain: p.id.Chain},
		NodeID:      p.id.NodeID(), Addr: srv.Addr(), Density: p.document().TurnDensity,
		Logger: p.log,
	})
	if err != nil {
		p.log.Warn("storing the TURN-SERVICE records (will retry)", "err", err)
	}
	p.relay.mu.Lock()
	p.relay.server, p.relay.adv = srv, adv
	p.relay.status.Serving, p.relay.status.Addr = true, srv.Addr().String()
	p.relay.status.Advertised = len(turn.Resources(p.id.NodeID(), p.document().TurnDensity))
	p.relay.mu.Unlock()
	p.log.Info("serving TURN to the overlay", "addr", srv.Addr().String(), "turn_density", p.document().TurnDensity)
	return nil
}

func (p *Peer) stopServing(ctx context.Context) error {
	p.relay.serveMu.Lock()
	defer p.relay.serveMu.Unlock()
	p.relay.mu.Lock()
	srv, adv := p.relay.server, p.relay.adv
	p.relay.server, p.relay.adv = nil, nil
	p.relay.status.Serving, p.relay.status.Addr, p.relay.status.Advertised = false, "", 0
	p.relay.mu.Unlock()
	var errs []error
	if adv != nil {
		if err := adv.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("withdrawing the TURN-SERVICE records: %w", err))
		}
	}
	if srv != nil {
		errs = append(errs, srv.Close())
	}
	return errors.Join(errs...)
}

// stopRelays withdraws this peer's records and stops its server and its relay lookups; it
// runs before the peer leaves (RFC 6940 §9: a peer that leaves stops advertising).
func (p *Peer) stopRelays(ctx context.Context) error {
	p.relay.mu.Lock()
	cancel, done := p.relay.cancel, p.relay.done
	p.relay.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return p.stopServing(ctx)
}

// lookupRelays finds TURN servers in the overlay (RFC 6940 §9) and hands them, with fresh
// credentials, to the link layer; it reports whether any was found.
func (p *Peer) lookupRelays(ctx context.Context) bool {
	known := p.node.Links()
	found, err := turn.Discover(ctx, turn.DiscoverConfig{Overlay: p.storage, Known: known, Density: p.document().TurnDensity})
	p.relay.mu.Lock()
	own := ""
	if p.relay.server != nil {
		own = p.relay.server.Addr().String()
	}
	p.relay.mu.Unlock()
	var use []turn.Found
	for _, f := range found {
		if f.Addr.String() != own {
			use = append(use, f)
		}
	}
	expiry := time.Now().Add(turn.DefaultCredentialLifetime)
	user, pass := turn.NewCredentials(turn.OverlaySecret(p.document()), p.id.NodeID(), expiry)
	var urls []*stun.URI
	var names []string
	for _, f := range use {
		urls = append(urls, &stun.URI{Scheme: stun.SchemeTypeTURN, Host: f.Addr.Addr().String(), Port: int(f.Addr.Port()),
			Proto: stun.ProtoTypeUDP, Username: user, Password: pass})
		names = append(names, f.Addr.String())
	}
	gone := err == nil && len(use) == 0 // the relays used so far have withdrawn their records
	if len(use) > 0 || gone {
		p.link.SetTURNServers(urls)
	}
	p.relay.mu.Lock()
	defer p.relay.mu.Unlock()
	p.relay.status.LastLookup, p.relay.status.LookupFound = time.Now(), len(use)
	if err != nil {
		p.relay.status.LastError = err.Error()
	}
	if len(use) > 0 || gone {
		if len(p.relay.using) > 0 && gone {
			p.log.Info("the overlay's TURN relays are gone")
		}
		p.relay.using, p.relay.expiry = use, expiry
		p.relay.status.Relays = names
	}
	if len(use) > 0 {
		p.log.Info("using TURN relays from the overlay", "relays", names)
	}
	return len(use) > 0
}

// ICEServers returns the STUN and TURN servers for a call's media: the bootstrap peers
// (they answer STUN on their link ports) and the relays found in the overlay, with this
// peer's credentials. None when the peer listens on loopback.
func (p *Peer) ICEServers() []ICEServer {
	if isLoopback(p.link.Addr().String()) {
		return nil
	}
	var out []ICEServer
	for _, b := range p.bootstrapAddrs() {
		out = append(out, ICEServer{URLs: []string{"stun:" + b}})
	}
	p.relay.mu.Lock()
	using, expiry := p.relay.using, p.relay.expiry
	p.relay.mu.Unlock()
	if len(using) > 0 {
		user, pass := turn.NewCredentials(turn.OverlaySecret(p.document()), p.id.NodeID(), expiry)
		for _, f := range using {
			out = append(out, ICEServer{URLs: []string{"turn:" + f.Addr.String() + "?transport=udp"}, Username: user, Credential: pass})
		}
	}
	return out
}

// RelayStatus returns what the peer serves and uses.
func (p *Peer) RelayStatus() RelayStatus {
	p.relay.mu.Lock()
	defer p.relay.mu.Unlock()
	st := p.relay.status
	st.Relays = append([]string(nil), st.Relays...)
	if p.relay.server != nil {
		st.Server = p.relay.server.Stats()
	}
	return st
}

// bootstrapAddrs are the configured bootstrap peers' addresses.
func (p *Peer) bootstrapAddrs() []string {
	if len(p.cfg.Bootstrap) > 0 {
		return p.cfg.Bootstrap
	}
	var out []string
	for _, ap := range p.document().BootstrapNodes {
		out = append(out, ap.String())
	}
	return out
}
