// Package phone is Chordphone's one API for the GUI and headless mode: it composes the overlay
// peer and the media engine, keeps the call state machine, and reports what happens as Events.
package phone

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/app/version"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/dsp"
	"github.com/chordphone/chordphone/overlay/discovery"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/netwatch"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Config selects what the phone does; the command line (app/cli) sets it, one flag a field.
type Config struct {
	Profile    string
	User       string
	Overlay    string
	Config     string
	Bootstrap  []string
	Listen     string
	AudioIn    string
	AudioOut   string
	AutoAnswer bool
	// Client runs the phone as a RELOAD client (RFC 6940 §4.2) whatever the setting
	// "peer.store_for_others" says (--client).
	Client bool
	KeyLog string
	// NewIdentity: when the profile's identity cannot be read, set it aside and make a new
	// one (--new-identity; the person's choice made in advance, see NewIdentity).
	NewIdentity bool
	// Audio, when set, gives each call its microphone and speaker instead of files or
	// sound devices: the SIP adapter's bridge to an ordinary SIP phone (app/sipadapter).
	Audio  func() (audio.Source, audio.Sink, error)
	Logger *slog.Logger
}

// Errors a caller can test for.
var (
	ErrNotJoined  = errors.New("not joined to an overlay")
	ErrNoCall     = errors.New("no call")
	ErrBusy       = errors.New("already in a call")
	ErrBadUser    = errors.New("invalid user name")
	ErrNotRinging = errors.New("no incoming call to answer")
)

// Phone is a running Chordphone.
type Phone struct {
	cfg Config
	log *slog.Logger

	// Set by Run before any call can start.
	runCtx context.Context
	peer   *peer.Peer
	ep     *sipcall.Endpoint
	store  *store.Store
	wg     sync.WaitGroup // call goroutines

	mu      sync.Mutex
	state   PeerState
	call    *call // the current call, nil when idle
	callSeq int
	subs    map[chan Event]struct{}
	closed  bool

	audioMu sync.Mutex
	src     audio.Source
	sink    audio.Sink
	mic     *audio.Mic     // src when it is a sound device (not --audio-in)
	speaker *audio.Speaker // sink when it is a sound device (not --audio-out)
	proc    *dsp.Processor

	stopRing   context.CancelFunc
	pins       *identity.PinStore
	certs      map[string]*x509.Certificate // certificates of incoming SIP connections, by Node-ID
	keylog     io.Writer
	restartReq chan struct{} // SetUser, JoinOverlay, SetStoreForOthers -> runPeer
	restart    chan struct{} // runPeer -> Run: the peer ended for a restart
	runClient  bool          // the running peer was asked to be a client (guarded by mu)

	mailboxPoke chan string  // look into the mailbox now, for what this user left (offline.go)
	pres        presenceBook // contacts' presence (presence.go)
	notices     []Event      // what openProfile set right, said when Run starts (trouble.go)
	badIdentity error        // the identity cannot be read: waiting for NewIdentity (guarded by mu)
}

// New makes a phone from cfg. It does not touch the network until Run.
func New(cfg Config) (*Phone, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.User != "" {
		if err := ValidateUser(cfg.User); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.Profile, 0o700); err != nil {
		return nil, fmt.Errorf("creating the profile directory: %w", err)
	}
	st, pins, notices, err := openProfile(cfg.Profile, cfg.Logger)
	if err != nil {
		return nil, err
	}
	// What the command line leaves out comes from the profile (chosen in Settings).
	for key, v := range map[string]*string{settingUser: &cfg.User, settingOverlay: &cfg.Overlay, settingConfig: &cfg.Config} {
		if *v == "" {
			if saved, ok, _ := st.Setting(key); ok {
				*v = saved
			}
		}
	}
	return &Phone{cfg: cfg, log: cfg.Logger, state: NotJoined, subs: map[chan Event]struct{}{},
		runCtx: context.Background(), store: st, pins: pins, certs: map[string]*x509.Certificate{},
		restartReq: make(chan struct{}, 1), restart: make(chan struct{}, 1), notices: notices,
		mailboxPoke: make(chan string, 8)}, nil
}

// ValidateUser checks a user name: the user part of sip:NAME@OVERLAY.
func ValidateUser(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadUser)
	}
	if len(name) > 64 {
		return fmt.Errorf("%w: %q is longer than 64 characters", ErrBadUser, name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.!~*'+", r)
		if !ok {
			return fmt.Errorf("%w: %q may hold only letters, digits and -_.!~*'+", ErrBadUser, name)
		}
	}
	return nil
}

// Subscribe returns a channel of events and a function that ends the subscription. A slow
// subscriber loses events rather than stalling the phone; buf sets how many may queue.
func (p *Phone) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	p.mu.Lock()
	if p.closed {
		close(ch)
		p.mu.Unlock()
		return ch, func() {}
	}
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			p.mu.Lock()
			if _, ok := p.subs[ch]; ok {
				delete(p.subs, ch)
				close(ch)
			}
			p.mu.Unlock()
		})
	}
}

func (p *Phone) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	p.ownPresence(e) // subscribers hear of calls (presence.go)
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.subs {
		select {
		case ch <- e:
		default:
			p.log.Warn("event subscriber too slow; event dropped", "event", e.Kind)
		}
	}
}

// Settings keys in the profile's store.
const (
	settingUser    = "user"
	settingOverlay = "overlay"
	settingConfig  = "config"
)

// Run runs the phone until ctx ends: joins the overlay, registers the user and serves calls.
// SetUser and JoinOverlay restart the peer inside Run. A peer that cannot start is reported
// (an error event) and Run waits for a change of settings: it returns an error only when the
// phone cannot run at all (the key log cannot be opened).
func (p *Phone) Run(ctx context.Context) error {
	defer p.closeSubscribers()
	defer p.store.Close()
	p.emitNotices()
	if p.cfg.KeyLog != "" {
		f, err := os.OpenFile(p.cfg.KeyLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("opening the key log: %w", err)
		}
		p.keylog = f
		defer f.Close()
	}
	for {
		err := p.runPeer(ctx)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-p.restart: // SetUser or JoinOverlay: run again with the new configuration
			p.setState(NotJoined)
			p.emit(Event{Kind: EventLeft})
			continue
		default:
		}
		// The peer could not start (said in an error event): the window or the headless
		// commands stay; a change of settings (SetUser, JoinOverlay, ...) tries again.
		p.log.Error("the overlay peer could not start; waiting for a change of settings", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-p.restartReq:
		}
	}
}

// runPeer runs one peer until ctx ends or a restart is asked for.
func (p *Phone) runPeer(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // owner: runPeer; ends with ctx
		select {
		case <-p.restartReq:
			select {
			case p.restart <- struct{}{}:
			default:
			}
			cancel()
		case <-ctx.Done():
		}
	}()
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()

	pc, ok := p.peerConfig(ctx, cfg)
	if !ok {
		return nil // ctx ended
	}
	pr, err := peer.New(pc)
	if errors.Is(err, peer.ErrIdentityUnreadable) && cfg.NewIdentity {
		if err = p.setIdentityAside(); err == nil { // chosen in advance (--new-identity)
			pr, err = peer.New(pc)
		}
	}
	if errors.Is(err, peer.ErrIdentityUnreadable) {
		p.identityTrouble(ctx, err) // until NewIdentity restarts the peer, or the end
		return nil
	}
	if err != nil {
		code := CodePeerFailed
		if errors.Is(err, peer.ErrNeedsEnrollment) {
			code = join.CodeNeedsEnrollment
		}
		p.emit(Event{Kind: EventError, Code: code, Message: err.Error()})
		return err
	}
	p.listenMoved(pr)
	runCtx, stopCalls := context.WithCancel(ctx)
	defer stopCalls()
	var ep *sipcall.Endpoint
	if cfg.User != "" {
		if ep, err = p.startSIP(pr, cfg.User); err != nil {
			pr.Close(ctx)
			return err
		}
	}
	p.mu.Lock()
	p.peer, p.ep, p.runCtx, p.runClient = pr, ep, runCtx, pc.Client
	p.mu.Unlock()
	defer func() {
		// Calls first (BYE to the peer), then registrations and the overlay.
		stopCalls()
		if ep != nil {
			p.presenceGoodbye(ep) // subscribers hear "offline" (presence.go)
			ep.Close()
		}
		p.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := pr.Close(ctx); err != nil {
			p.log.Warn("closing the peer", "err", err)
		}
		p.mu.Lock()
		p.peer, p.ep = nil, nil
		p.mu.Unlock()
	}()

	// The host's networks as they come, change and go, and stalls such as a suspend
	// (network.go): mDNS, links and the registration follow them.
	nw := netwatch.Start(ctx, netwatch.Options{Logger: p.log.With("layer", "net")})
	defer nw.Close()
	var lanPoke func()
	if err := p.join(ctx, pr, nw); err != nil {
		if ctx.Err() == nil {
			p.emit(Event{Kind: EventError, Code: CodeRegisterFailed, Message: err.Error()})
		}
	} else if pc.Overlay == peer.DefaultOverlay && pr.Role() == peer.RolePeer {
		// Only peers are announced: a client routes nothing, so nobody can join through it.
		stop, err := discovery.Announce(ctx, discovery.Service{
			Overlay: pc.Overlay, NodeID: pr.NodeID(), User: pr.User(), Port: int(pr.Addr().Port()), Watch: nw,
		})
		if err != nil {
			p.log.Warn("announcing this peer on the local network", "err", err)
		} else {
			defer stop()
		}
		wait, poke := p.watchLAN(ctx, pr, pc.Overlay, nw) // rings formed apart merge (lanmerge.go)
		defer wait()
		lanPoke = poke
	}
	if p.registered() && ep != nil {
		p.spawn(func() { p.watchMailbox(runCtx, pr, ep) })  // messages left for us (offline.go)
		p.spawn(func() { p.watchPresence(runCtx, pr, ep) }) // presence.go
	}
	defer p.followNetwork(ctx, pr, nw, lanPoke)()
	if pr.Role() == peer.RoleClient {
		defer p.watchClient(ctx, pr)() // a client cut off for long starts again (client.go)
	}
	<-ctx.Done()
	return nil
}

// peerConfig is the configuration of the peer runPeer starts: the command line's, the
// settings', and the overlay's document; ok is false when ctx ended while fetching it.
func (p *Phone) peerConfig(ctx context.Context, cfg Config) (pc peer.Config, ok bool) {
	pc = peer.Config{
		Profile: cfg.Profile, User: cfg.User, Overlay: cfg.Overlay, Listen: cfg.Listen,
		Bootstrap: cfg.Bootstrap, KeyLog: p.keylog, Logger: p.log,
		StorageLimit: int64(p.intSetting(settingStorageMB)) << 20,
		Client:       p.wantClient(),
	}
	if port := p.intSetting(settingListenPort); pc.Listen == "" && port > 0 && port < 65536 {
		pc.Listen = fmt.Sprintf("0.0.0.0:%d", port)
	}
	if cfg.Config != "" {
		// The CA the person trusts for this overlay comes from the profile (join.Remember);
		// fetchConfig retries while the document cannot be read (trouble.go).
		t := join.Target{Overlay: cfg.Overlay, Config: cfg.Config}
		doc, err := p.fetchConfig(ctx, t)
		if err != nil {
			return pc, false
		}
		// The peer keeps the document in the profile (and a newer one a ConfigUpdate
		// brings), for starts when it cannot be fetched (configcache.go).
		pc.Document, pc.Overlay, pc.ConfigSource = doc, doc.InstanceName, t.Source()
	}
	if pc.Overlay == "" && pc.Document == nil && len(pc.Bootstrap) == 0 {
		// The local network's overlay: find its peers by mDNS (RFC 7890 §2.5).
		pc.Overlay = peer.DefaultOverlay
		pc.Bootstrap = p.discover(ctx, pc.Overlay)
	}
	return pc, true
}

// startSIP starts the SIP endpoint of user on pr: calls and messages over the AppAttach
// connections the peer accepts (RFC 7904 §5).
func (p *Phone) startSIP(pr *peer.Peer, user string) (*sipcall.Endpoint, error) {
	ep, err := sipcall.NewEndpoint(sipcall.Settings{User: user, Overlay: pr.Overlay(), Logger: p.log.With("layer", "sip"),
		Reconnect: reconnectWindow})
	if err != nil {
		return nil, fmt.Errorf("starting SIP: %w", err)
	}
	ep.OnInvite(p.incoming)
	ep.OnMessage(p.onMessage) // messages.go
	pr.HandleSIP(func(conn net.Conn, remote wire.NodeID) {
		conn = p.withCert(conn, remote.String())
		if err := ep.Serve(conn, remote.String()); err != nil {
			p.log.Info("incoming SIP connection refused", "peer", remote, "err", err)
			_ = conn.Close()
		}
	})
	return ep, nil
}

// discover looks for peers of the local network's overlay; none means this phone starts it.
func (p *Phone) discover(ctx context.Context, overlay string) []string {
	peers, err := discovery.Lookup(ctx, overlay, 1500*time.Millisecond)
	if err != nil {
		p.log.Info("no mDNS discovery", "err", err)
		return nil
	}
	var boot []string
	for _, dp := range peers {
		for _, a := range dp.Addrs {
			boot = append(boot, a.String())
		}
	}
	return boot
}

// join joins the overlay, retrying while the bootstrap peers cannot be reached (at once
// when the host's networks change, nw), then registers the user.
func (p *Phone) join(ctx context.Context, pr *peer.Peer, nw *netwatch.Watcher) error {
	changes, unsubscribe := nw.Subscribe() // a network that comes up: try again at once
	defer unsubscribe()
	for attempt := 0; ; attempt++ {
		err := pr.Join(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return err
		}
		p.log.Warn("joining failed; retrying", "err", err, "attempt", attempt+1)
		if attempt == 0 {
			p.emit(Event{Kind: EventError, Code: CodeJoinRetrying, Message: fmt.Sprintf("cannot join %s yet: %v (retrying)", pr.Overlay(), err)})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(min(attempt+1, 5)) * time.Second):
		case <-changes:
		}
	}
	first := pr.First()
	p.log.Info("joined the overlay", "overlay", pr.Overlay(), "node", pr.NodeID(), "listen", pr.Addr(), "first", first)
	p.setState(Joined)
	p.emit(Event{Kind: EventJoined, NodeID: pr.NodeID().String(), First: &first, Role: pr.Role()})
	if p.currentUser() == "" {
		return nil
	}
	if err := pr.Register(ctx); errors.Is(err, storage.ErrRetrying) {
		// The storing peer keeps trying in the background; the phone is reachable once it has.
		p.log.Warn("registration pending", "aor", pr.User(), "err", err)
	} else if err != nil {
		return fmt.Errorf("registering %s: %w", pr.User(), err)
	}
	p.setState(Registered)
	p.emit(Event{Kind: EventRegistered, AoR: "sip:" + pr.User()})
	return nil
}

func (p *Phone) currentUser() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.User
}

// requestRestart makes Run start the peer again with p.cfg.
func (p *Phone) requestRestart() {
	select {
	case p.restartReq <- struct{}{}:
	default:
	}
}

func (p *Phone) setState(s PeerState) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

func (p *Phone) closeSubscribers() {
	p.mu.Lock()
	p.closed = true
	for ch := range p.subs {
		delete(p.subs, ch)
		close(ch)
	}
	p.mu.Unlock()
}

// Status returns a snapshot of the phone.
func (p *Phone) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Version:      version.Version,
		User:         p.cfg.User,
		Overlay:      p.cfg.Overlay,
		State:        p.state,
		Predecessors: []string{},
		Successors:   []string{},
		Fingers:      []string{},
		Calls:        []CallInfo{},
		Role:         peer.RolePeer,
	}
	if p.runClient {
		s.Role = peer.RoleClient
	}
	if pr := p.peer; pr != nil {
		ps := pr.Status()
		s.Overlay, s.NodeID, s.Listen, s.Role, s.ClientPeer = ps.Overlay, ps.NodeID, ps.Listen, ps.Role, ps.ClientPeer
		s.Predecessors, s.Successors, s.Fingers = ps.Predecessors, ps.Successors, ps.Fingers
		s.StoredRecords, s.Links = ps.StoredRecords, ps.Links
		rs := pr.RelayStatus()
		s.Relay = &rs
		if p.cfg.User != "" {
			s.AoR = "sip:" + pr.AoR(p.cfg.User)
		}
	}
	if c := p.call; c != nil {
		info := c.info
		if c.media != nil {
			info.Stats = rtpStats(c.media.Stats(), info.Answered)
		}
		s.Calls = append(s.Calls, info)
	}
	return s
}

// certConn is an incoming SIP connection whose peer certificate is forgotten when the
// connection closes, so that the phone holds certificates of live connections only.
type certConn struct {
	net.Conn
	once   sync.Once
	forget func()
}

func (c *certConn) Close() error {
	c.once.Do(c.forget)
	return c.Conn.Close()
}
