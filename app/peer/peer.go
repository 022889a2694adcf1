// Package peer composes Chordphone's overlay parts into one running RELOAD peer for the
// phone: identity, link layer, message transport, CHORD-RELOAD topology and the storing
// peer. It is the phone's only door into overlay/.
package peer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/mailbox"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// SIPApplication is the AppAttach application id of SIP (RFC 7904 §5.1).
const SIPApplication = 5060

// DefaultOverlay is the overlay a phone joins when none is chosen: the local network's.
const DefaultOverlay = "local.chordphone"

// Config selects how the peer runs.
type Config struct {
	// Profile is the profile directory that holds the identity.
	Profile string
	// Identity, when set, is used instead of the profile's (the operator's bootstrap peer).
	Identity *identity.Identity
	// First starts the overlay even when the document lists bootstrap peers (this peer is
	// one of them).
	First bool
	// User is the user name; empty for a pure storing peer (a name is made up for its
	// certificate, and nothing is registered).
	User string
	// Overlay is the overlay name (default DefaultOverlay).
	Overlay string
	// Overlay configuration; nil means a self-signed overlay with RFC defaults.
	Document *config.Config
	// ConfigSource is where Document was fetched from (a URL or an overlay name, the key of
	// the profile's configuration cache, overlay/config SaveCached); with a Profile, a newer
	// document a ConfigUpdate brings is kept there, and the next start uses it (docs.go).
	ConfigSource string
	// Listen is the link address ("host:port"); empty: all interfaces, port 6084 or any.
	Listen string
	// Bootstrap addresses; none (and none in the document) makes this the first peer.
	Bootstrap []string
	// Relay: serving TURN to the overlay and using its relays (RFC 6940 §9, turn.go).
	Relay RelaySettings
	// StorageLimit bounds the bytes stored for others (0: the storage defaults).
	StorageLimit int64
	// Client runs a RELOAD client instead of a storing peer (RFC 6940 §4.2): attached to
	// the peer responsible for its Node-ID, it stores nothing for others, routes nothing
	// and serves no TURN. An overlay whose configuration says clients-permitted false
	// (§11.1), or one with no peer to attach to (first peer), gets a peer instead.
	Client bool
	// FixedListen: Listen must be used as it is (the operator's bootstrap peer, whose
	// address the configuration document lists); otherwise a taken port is replaced by any
	// free one (ListenMoved says so).
	FixedListen bool
	// KeyLog receives NSS key log lines of every DTLS/TLS session.
	KeyLog io.Writer
	Logger *slog.Logger
}

// Peer is a running overlay peer.
type Peer struct {
	cfg     Config
	log     *slog.Logger
	id      *identity.Identity
	docp    atomic.Pointer[config.Config] // the overlay configuration in force (document())
	trusted config.TrustMemo              // certificate chains document() accepted
	cfgMu   sync.Mutex                    // serializes configuration updates (configupdate.go)
	updated sentUpdates                   // ConfigUpdates sent (configupdate.go)
	reg     *kinds.Registry
	link    *link.Transport
	node    *node.Node
	chord   *chord.Chord
	storage *storage.Service
	first   bool
	client  bool   // a RELOAD client (Config.Client)
	relay   relays // TURN (turn.go)
	moved   *ListenMove
	// registered is set once Register has stored (or is storing) the registration.
	registered atomic.Bool
	// certsPublished is closed when Join's first store of the certificate is over
	// (mailbox.go).
	certsPublished atomic.Pointer[chan struct{}]
	// kindBlocks are the kind-blocks applied from ConfigUpdates of type kind (cfgMu).
	kindBlocks []config.Kind
}

// Status is the peer as the status line shows it.
type Status struct {
	NodeID  string
	Overlay string
	Listen  string
	// Role is "peer" or "client" (RFC 6940 §4.2); ClientPeer is a client's peer, the one
	// responsible for its Node-ID ("" when detached, and for a peer).
	Role       string
	ClientPeer string
	// Joined: a peer has joined the ring; a client is attached to its peer.
	Joined        bool
	Predecessors  []string
	Successors    []string
	Fingers       []string
	StoredRecords int
	// Links are the links to the neighbours and fingers, by Node-ID (diag.go).
	Links map[string]LinkInfo
}

// New loads (or creates) the profile's identity and starts the link layer and the node; it
// does not join yet.
func New(cfg Config) (*Peer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Overlay == "" {
		if cfg.Document != nil {
			cfg.Overlay = cfg.Document.InstanceName
		} else {
			cfg.Overlay = DefaultOverlay
		}
	}
	doc := cfg.Document
	if doc == nil {
		doc = config.SelfSigned(cfg.Overlay)
	}
	doc = newestDocument(cfg, doc)
	id := cfg.Identity
	if id == nil {
		var err error
		if id, err = loadIdentity(cfg, doc); err != nil {
			return nil, err
		}
	}
	p := &Peer{cfg: cfg, log: cfg.Logger, id: id}
	p.docp.Store(doc)

	listen := cfg.Listen
	if listen == "" {
		listen = fmt.Sprintf("0.0.0.0:%d", config.DefaultPort)
	}
	boot := cfg.Bootstrap
	if len(boot) == 0 && !cfg.First {
		for _, ap := range doc.BootstrapNodes {
			boot = append(boot, ap.String())
		}
	}
	ls := link.Settings{
		Certificate: id.TLSCertificate(),
		NodeID:      id.NodeID(),
		VerifyPeer:  p.trust,
		ListenAddr:  listen,
		KeyLog:      cfg.KeyLog,
		Logger:      cfg.Logger.With("layer", "link"),
		STUNServers: boot,
	}
	if isLoopback(listen) {
		ls.ICEIncludeLoopback = true
		ls.ICEInterfaceFilter = func(name string) bool { return name == "lo" }
	}
	if doc.MaxMessageSize > 0 {
		ls.MaxMessageSize = doc.MaxMessageSize
	}
	p.client = cfg.Client
	switch {
	case p.client && !doc.ClientsPermitted:
		// RFC 6940 §11.1 clients-permitted false: every node must be a peer.
		cfg.Logger.Warn("this overlay does not permit clients (clients-permitted false): running as a storing peer", "overlay", cfg.Overlay)
		p.client = false
	case p.client && len(boot) == 0:
		cfg.Logger.Warn("no peer to attach to as a client: starting the overlay as a storing peer", "overlay", cfg.Overlay)
		p.client = false
	}
	if p.client {
		// A client serves no TURN (RFC 6940 §9 relays are peers); it may use the overlay's.
		p.cfg.Relay.Mode = RelayOff
	}
	cs := chord.SettingsFromConfig(doc)
	cs.Client = p.client
	p.chord = chord.New(cs)
	// The link layer needs its receiver (the node) when it starts, and the node needs its
	// link layer: links deliver through recv, which is pointed at the node once it exists.
	recv := &receiver{}
	tr, err := link.New(ls, recv)
	if err != nil && !cfg.FixedListen {
		// The port is taken (another phone on this machine, another program): take any
		// port on the same address, and say so (ListenMoved).
		tr, err = p.listenElsewhere(ls, recv, err)
	}
	if err != nil {
		return nil, fmt.Errorf("starting the link layer on %s: %w", ls.ListenAddr, err)
	}
	p.link = tr
	// The overlay's Kinds with their limits from the configuration (RFC 6940 §11.1); the
	// codec needs their data models to decode storage bodies.
	reg := kinds.Default()
	reg.Add(mailbox.Kind()) // messages for offline users (issue 19)
	p.reg = reg
	if err := kinds.Apply(reg, doc); err != nil {
		tr.Close()
		return nil, fmt.Errorf("the configuration's kinds: %w", err)
	}
	var stp atomic.Pointer[storage.Service]
	sec := storage.NewCertifying(&node.CertSecurity{
		NodeID: id.NodeID(), Key: id.Key, Chain: id.Chain, Trust: p.trust,
		// A signer's certificate missing from its message is fetched from the Certificate
		// Store usage (RFC 6940 §8, §11.3.1).
		FetchCertificates: func(ctx context.Context, n wire.NodeID) ([]*x509.Certificate, error) {
			st := stp.Load()
			if st == nil {
				return nil, errors.New("the storing peer is not running yet")
			}
			return st.FetchNodeCertificates(ctx, n)
		},
	})
	n, err := node.New(node.Settings{
		NodeID:                id.NodeID(),
		OverlayName:           cfg.Overlay,
		ConfigurationSequence: uint16(doc.Sequence),
		Security:              sec,
		Connector:             tr,
		Topology:              p.chord,
		Bootstrap:             boot,
		Logger:                cfg.Logger.With("layer", "node"),
		MaxMessageSize:        doc.MaxMessageSize,
		InitialTTL:            uint8(doc.InitialTTL),
		ReliabilityTimer:      doc.OverlayReliabilityTimer,
		KindModels:            reg,
		ConfigStale:           p.configStale,
	})
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("starting the node: %w", err)
	}
	p.node = n
	recv.n.Store(n)
	p.first = len(boot) == 0
	st, err := storage.NewService(n, p.chord, storage.ServiceSettings{
		Engine:      storage.NewEngine(reg, storage.Options{Trust: p.trustChain, MaxBytes: int(cfg.StorageLimit)}),
		Security:    sec,
		Credentials: &storage.Credentials{Key: id.Key, Chain: id.Chain},
		Trust:       p.trustChain,
		Logger:      cfg.Logger.With("layer", "storage"),
		UnknownKind: p.unknownKinds,
	})
	if err != nil {
		n.Close()
		tr.Close()
		return nil, fmt.Errorf("starting the storing peer: %w", err)
	}
	p.storage = st
	stp.Store(st)
	n.Handle(wire.CodeConfigUpdateReq, node.HandlerFunc(p.serveConfigUpdate))
	p.serveDiagnostics()
	if p.client {
		// A client stores nothing and serves no Fetch (RFC 6940 §4.2): nobody should ask
		// it, and what reaches it anyway is refused.
		refuse := node.HandlerFunc(func(context.Context, *node.Request) (wire.Body, error) {
			return nil, node.Errorf(wire.ErrForbidden, "this node is a client (RFC 6940 §4.2): it stores nothing")
		})
		for _, code := range []wire.MessageCode{wire.CodeStoreReq, wire.CodeFetchReq, wire.CodeStatReq, wire.CodeFindReq} {
			n.Handle(code, refuse)
		}
		cfg.Logger.Info("running as a RELOAD client: storing nothing for others", "overlay", cfg.Overlay)
	}
	return p, nil
}

// RunBootstrap runs a storing peer of the overlay doc with identity id on listen, starting the
// overlay, until ctx ends: the bootstrap peer of `chordphone overlay-server`. Each newer
// configuration from updates is applied and sent through the overlay (RFC 6940 §6.5.4).
func RunBootstrap(ctx context.Context, doc *config.Config, id *identity.Identity, listen string, updates <-chan *config.Config) error {
	p, err := New(Config{Identity: id, Document: doc, Overlay: doc.InstanceName, Listen: listen, First: true,
		FixedListen: true, Logger: slog.Default().With("role", "bootstrap")})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		p.Close(cctx)
	}()
	if err := p.Join(ctx); err != nil {
		return err
	}
	slog.Info("bootstrap peer running", "overlay", doc.InstanceName, "listen", p.Addr(), "node", p.NodeID())
	for {
		select {
		case <-ctx.Done():
			return nil
		case next := <-updates:
			if err := p.UpdateConfig(next); err != nil {
				slog.Warn("bootstrap peer: new configuration not applied", "err", err)
			}
		}
	}
}

// ListenMove says that the wanted listen address was taken and another port is used.
type ListenMove struct {
	Wanted string         // the address asked for
	Err    error          // why it could not be used
	Addr   netip.AddrPort // the address used instead
}

// ListenMoved reports whether the peer listens elsewhere than it was asked to (nil: as asked).
func (p *Peer) ListenMoved() *ListenMove { return p.moved }

// listenElsewhere starts the link layer on any free port of the address ls could not use.
func (p *Peer) listenElsewhere(ls link.Settings, recv *receiver, cause error) (*link.Transport, error) {
	wanted := ls.ListenAddr
	host, port, err := net.SplitHostPort(wanted)
	if err != nil || port == "0" {
		return nil, cause
	}
	ls.ListenAddr = net.JoinHostPort(host, "0")
	tr, err := link.New(ls, recv)
	if err != nil {
		return nil, fmt.Errorf("%w (and on any other port: %w)", cause, err)
	}
	p.moved = &ListenMove{Wanted: wanted, Err: cause, Addr: tr.Addr()}
	p.log.Warn("the listen port is taken; listening on another port", "wanted", wanted, "listen", tr.Addr(), "err", cause)
	return tr, nil
}

// receiver hands what links receive to the node once it exists.
type receiver struct{ n atomic.Pointer[node.Node] }

func (r *receiver) Receive(from node.Link, msg []byte) {
	if n := r.n.Load(); n != nil {
		n.Receive(from, msg)
	}
}

func isLoopback(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && ap.Addr().IsLoopback()
}

// loadIdentity returns the profile's identity for the user on the overlay: the one in the
// profile when it matches; else, in a self-signed overlay, a self-signed one that keeps the
// profile's key (so contacts' pins stay valid), RFC 6940 §11.3.1. An enrolled identity for
// another name or overlay is never replaced.
func loadIdentity(cfg Config, doc *config.Config) (*identity.Identity, error) {
	id, err := identity.Load(cfg.Profile)
	switch {
	case err == nil:
		if id.Matches(cfg.User, cfg.Overlay) {
			return id, nil
		}
		if !id.SelfSigned() {
			return nil, fmt.Errorf("the profile %s holds the enrolled identity %s; use another --profile for %s in %s",
				cfg.Profile, id.User(), firstNonEmpty(cfg.User, "a storing peer"), cfg.Overlay)
		}
		if !doc.SelfSignedPermitted {
			return nil, needsEnrollment(cfg.Overlay)
		}
		user := cfg.User
		if user == "" { // a storing peer keeps its made-up name
			user, _, _ = strings.Cut(id.User(), "@")
		}
		nid, err := id.WithUser(user, cfg.Overlay, doc.SelfSignedDigest)
		if err != nil {
			return nil, fmt.Errorf("renaming the identity in %s: %w", cfg.Profile, err)
		}
		if err := nid.Save(cfg.Profile); err != nil {
			return nil, fmt.Errorf("saving the identity in %s: %w", cfg.Profile, err)
		}
		return nid, nil
	case !errors.Is(err, identity.ErrNoIdentity):
		return nil, &IdentityError{Path: filepath.Join(cfg.Profile, identity.FileName), Err: err}
	}
	if !doc.SelfSignedPermitted {
		return nil, needsEnrollment(cfg.Overlay)
	}
	user := cfg.User
	if user == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		user = "peer-" + hex.EncodeToString(b)
	}
	id, err = identity.Create(cfg.Profile, user, cfg.Overlay)
	if err != nil {
		return nil, fmt.Errorf("creating an identity for %s@%s in %s: %w", user, cfg.Overlay, cfg.Profile, err)
	}
	return id, nil
}

// ErrNeedsEnrollment: the overlay takes only certificates from its enrollment server (RFC 6940
// §11.3) and the profile has none for it.
var ErrNeedsEnrollment = errors.New("needs enrollment")

type enrollmentError struct{ overlay string }

func (e enrollmentError) Error() string {
	return fmt.Sprintf("The overlay %s takes only certificates from its operator, and this profile has none for it yet: enroll with a user name and password first.", e.overlay)
}

func (e enrollmentError) Is(target error) bool { return target == ErrNeedsEnrollment }

func needsEnrollment(overlay string) error { return enrollmentError{overlay} }

// ErrIdentityUnreadable: the profile's identity file exists but cannot be read or decoded.
// It is never replaced silently (the person chooses: issue 16).
var ErrIdentityUnreadable = errors.New("the identity cannot be read")

// IdentityError is an identity file that cannot be read; it is ErrIdentityUnreadable.
type IdentityError struct {
	Path string
	Err  error
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("the identity %s cannot be read: %v", e.Path, e.Err)
}

func (e *IdentityError) Unwrap() []error { return []error{ErrIdentityUnreadable, e.Err} }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Configuration returns the overlay configuration in force: the one the peer started with,
// or a newer one a ConfigUpdate brought (RFC 6940 §6.5.4).
func (p *Peer) Configuration() *config.Config { return p.document() }

// document is the overlay configuration in force (a ConfigUpdate may replace it, RFC 6940
// §6.5.4).
func (p *Peer) document() *config.Config { return p.docp.Load() }

// trust maps a peer's certificate (on a link or in a message) with the intermediate CAs it
// came with to the Node-IDs the overlay accepts it for.
func (p *Peer) trust(cert *x509.Certificate, intermediates []*x509.Certificate) ([]wire.NodeID, error) {
	pc, err := p.trusted.VerifyPeer(p.document(), append([]*x509.Certificate{cert}, intermediates...), time.Now())
	if err != nil {
		return nil, err
	}
	return pc.NodeIDs, nil
}

func (p *Peer) trustChain(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	_, err := p.trusted.VerifyPeer(p.document(), chain, now)
	return err
}

// NodeID is this peer's Node-ID.
func (p *Peer) NodeID() wire.NodeID { return p.id.NodeID() }

// User is the user name in the peer's certificate, user@overlay.
func (p *Peer) User() string { return p.id.User() }

// Overlay is the overlay name.
func (p *Peer) Overlay() string { return p.cfg.Overlay }

// Roles as Role and Status report them.
const (
	RolePeer   = chord.RolePeer   // a storing peer
	RoleClient = chord.RoleClient // a RELOAD client (RFC 6940 §4.2)
)

// Role is "client" for a RELOAD client (Config.Client, RFC 6940 §4.2), else "peer".
func (p *Peer) Role() string { return p.chord.Role() }

// ClientPeer returns the Node-ID of the peer a client is attached to (RFC 6940 §4.2.1;
// "" while detached, and always for a peer) and a channel closed when that changes.
func (p *Peer) ClientPeer() (string, <-chan struct{}) {
	id, changed := p.chord.ClientPeer()
	if id.IsZero() {
		return "", changed
	}
	return id.String(), changed
}

// First reports whether this peer starts the overlay (no bootstrap peer).
func (p *Peer) First() bool { return p.first }

// Identity returns the peer's identity (certificate and key).
func (p *Peer) Identity() *identity.Identity { return p.id }

// Addr is the link layer's listening address.
func (p *Peer) Addr() netip.AddrPort { return p.link.Addr() }

// Join joins the overlay (RFC 6940 §10.5), or starts it as first peer.
func (p *Peer) Join(ctx context.Context) error {
	if err := p.node.Join(ctx); err != nil {
		return fmt.Errorf("joining %s: %w", p.cfg.Overlay, err)
	}
	// RFC 6940 §8: every node stores its certificate, so that signatures without it in the
	// message verify; the first store may wait for the ring, so it does not hold up Join.
	published := make(chan struct{})
	p.certsPublished.Store(&published)
	p.node.Go(func(ctx context.Context) {
		defer close(published)
		if err := p.storage.PublishCertificates(ctx); err != nil && ctx.Err() == nil {
			p.log.Info("storing this peer's certificate: will try again", "err", err)
		}
	})
	p.startRelays(ctx)
	return nil
}

// AoR is the address of record of user in this overlay, user@overlay.
func (p *Peer) AoR(user string) string { return user + "@" + p.cfg.Overlay }

// Register stores this device's SIP-REGISTRATION for the peer's user (RFC 7904 §3) and keeps
// it fresh until Close.
func (p *Peer) Register(ctx context.Context) error {
	// RFC 7904 §3.3: "Before issuing a Store request to the overlay, any Peer SHOULD verify
	// that the AOR of the request is a valid Resource Name with respect to ... the
	// namespaces defined in the overlay configuration document."
	if err := p.aorAllowed(p.id.User()); err != nil {
		return err
	}
	p.awaitCertificates(ctx)
	err := p.storage.Register(ctx, p.id.User(), "")
	if err == nil || errors.Is(err, storage.ErrRetrying) {
		p.registered.Store(true)
	}
	return err
}

// aorAllowed checks an AoR against the document's domain restriction (RFC 7904 §3.4).
func (p *Peer) aorAllowed(aor string) error {
	d, err := kinds.DomainRestrictionOf(p.document())
	if err != nil {
		return err
	}
	n, err := kinds.NormalizeAoR(aor)
	if err != nil {
		return err
	}
	if _, domain, _ := strings.Cut(n, "@"); !d.Allows(domain) {
		return fmt.Errorf("the overlay %s does not accept addresses in %s (its domain restriction, RFC 7904 §3.4): %w", p.cfg.Overlay, domain, ErrDomainNotAllowed)
	}
	return nil
}

// ErrDomainNotAllowed is wrapped by Register when the overlay does not serve the user's domain.
var ErrDomainNotAllowed = errors.New("AoR domain not allowed")

// ErrNotRegistered means nobody is registered under the AoR.
var ErrNotRegistered = storage.ErrNotRegistered

// Lookup finds the devices registered for user (RFC 7904 §4.2).
func (p *Peer) Lookup(ctx context.Context, user string) ([]storage.Registration, error) {
	regs, err := p.storage.LookupAoR(ctx, p.AoR(user))
	if err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return nil, ErrNotRegistered
	}
	return regs, nil
}

// AppAttach opens a direct connection for SIP to a registered device (RFC 7904 §5.1): the
// callee's certificate must carry the Node-ID at the end of the destination list.
func (p *Peer) AppAttach(ctx context.Context, r storage.Registration) (net.Conn, error) {
	return p.node.AppAttachVia(ctx, r.Destinations, r.Target(), SIPApplication)
}

// AppAttachNode opens a SIP connection to the peer with Node-ID id, routed to it by the
// overlay (RFC 6940 §6.5.2): a callee whose address changed reconnects to its caller this way.
func (p *Peer) AppAttachNode(ctx context.Context, id wire.NodeID) (net.Conn, error) {
	return p.node.AppAttachVia(ctx, []wire.Destination{wire.NodeDestination(id)}, id, SIPApplication)
}

// HandleSIP sets the handler of incoming SIP connections.
func (p *Peer) HandleSIP(h func(conn net.Conn, remote wire.NodeID)) {
	p.node.HandleApp(SIPApplication, h)
}

// Status returns a snapshot of the peer.
func (p *Peer) Status() Status {
	cs := p.chord.Status()
	s := Status{
		NodeID:        p.id.NodeID().String(),
		Overlay:       p.cfg.Overlay,
		Listen:        p.link.Addr().String(),
		Role:          cs.Role,
		Joined:        p.joined(),
		Predecessors:  ids(p.chord.Predecessors()),
		Successors:    ids(p.chord.Successors()),
		Fingers:       ids(cs.Fingers),
		StoredRecords: p.storage.Engine().Stats().Records,
	}
	s.Links = p.linkInfo(s.Predecessors, s.Successors, s.Fingers)
	if !cs.ClientPeer.IsZero() {
		s.ClientPeer = cs.ClientPeer.String()
	}
	return s
}

// joined reports whether a peer has joined the ring, or a client is attached to its peer.
func (p *Peer) joined() bool {
	if p.client {
		cp, _ := p.chord.ClientPeer()
		return !cp.IsZero()
	}
	return p.chord.IsJoined()
}

func ids(in []wire.NodeID) []string {
	out := make([]string, 0, len(in))
	for _, id := range in {
		out = append(out, id.String())
	}
	return out
}

// Close removes this device's registrations, leaves the overlay (RFC 6940 §10.9) and closes
// everything. ctx bounds the goodbyes.
func (p *Peer) Close(ctx context.Context) error {
	var errs []error
	if err := p.stopRelays(ctx); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("stopping TURN: %w", err))
	}
	if p.joined() {
		if err := p.storage.UnregisterAll(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("removing registrations: %w", err))
		}
		if err := p.node.Leave(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("leaving: %w", err))
		}
	}
	p.node.Close()
	p.link.Close()
	return errors.Join(errs...)
}

// PeerCertificate returns the certificate the other end of an AppAttach connection proved
// (its DTLS handshake), or nil when the connection carries none.
func PeerCertificate(conn net.Conn) *x509.Certificate {
	dc, ok := conn.(interface{ ConnectionState() dtls.State })
	if !ok {
		return nil
	}
	st := dc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	cert, err := x509.ParseCertificate(st.PeerCertificates[0])
	if err != nil {
		return nil
	}
	return cert
}

// UserOf is the bare user name (before "@") in a peer's certificate, "" if none.
func UserOf(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	u, err := identity.UserFromCert(cert)
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(u, "@")
	return name
}
