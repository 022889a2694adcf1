package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Defaults of RFC 6940 §6.2.1, §6.3.2 and §11.1.
const (
	DefaultReliabilityTimer = 3 * time.Second  // overlay-reliability-timer
	DefaultTransmissions    = 5                // §6.2.1: up to 4 retransmissions
	DefaultRequestLifetime  = 15 * time.Second // §6.2.1: maximum request lifetime
	DefaultAttachTimeout    = 20 * time.Second
)

// WildcardNodeID is the all-ones Node-ID every node is responsible for (RFC 6940 §6.1.1).
var WildcardNodeID = wire.NodeID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Errors returned by Request and friends.
var (
	ErrClosed   = errors.New("node: closed")
	ErrNoRoute  = errors.New("node: no route to destination")
	ErrLinkDown = errors.New("node: link to destination died")
	ErrTimeout  = errors.New("node: request timed out (overlay-reliability-timer, 5 transmissions)")
)

// Topology is the topology plug-in as the node uses it (RFC 6940 §6.4.1); overlay/chord
// implements it. Methods are called from node goroutines and must not block for long.
type Topology interface {
	// Start binds the topology to its node and registers its method handlers. It is called
	// once, by New.
	Start(n *Node) error
	// Responsible reports whether this node is responsible for id (RFC 6940 §6.1.1). It is
	// false for every id until the node has joined.
	Responsible(id wire.NodeID) bool
	// NextHop returns the connected peer to forward a message for target to (RFC 6940
	// §6.1.2), or false if there is none.
	NextHop(target wire.NodeID) (wire.NodeID, bool)
	// LinkUp is called when the first link to remote appears. sendUpdate is true when the
	// link results from an Attach whose requester set send_update (RFC 6940 §6.4.2.3).
	LinkUp(remote wire.NodeID, sendUpdate bool)
	// LinkDown is called when the last link to remote has died (RFC 6940 §10.7.1).
	LinkDown(remote wire.NodeID)
	// Join joins the overlay through the given bootstrap links; with none, this node
	// starts the overlay as its first peer (RFC 6940 §6.4.2.1). It returns when joined.
	Join(ctx context.Context, bootstrap []Link) error
	// Leave announces departure to the neighbours (RFC 6940 §6.4.2.2).
	Leave(ctx context.Context) error
	// Close stops the topology's goroutines. The node calls it from Close.
	Close() error
}

// Settings configure a Node. Zero fields take the defaults in their comments.
type Settings struct {
	// NodeID is this node's Node-ID (required).
	NodeID wire.NodeID
	// OverlayName is the overlay instance name; OverlayHash defaults to its hash (RFC 6940 §6.3.2).
	OverlayName string
	OverlayHash uint32
	// ConfigurationSequence is put in every message header and requests to this node
	// must carry it (RFC 6940 §6.3.2.1); SetConfigurationSequence changes it.
	ConfigurationSequence uint16
	// ConfigStale, if set, is called in a node goroutine with the route to a node found
	// to have an older configuration than this one: a request to this node carried an
	// older configuration_sequence, or an answer was Error_Config_Too_New. It should send
	// that node a ConfigUpdate (RFC 6940 §6.3.2.1, §6.5.4: "Whenever a node detects that
	// another node has old configuration data, it MUST generate a ConfigUpdate request").
	ConfigStale func(ctx context.Context, route []wire.Destination)
	// Security signs outgoing and verifies incoming messages. Default: NoSecurity (the
	// simulation); real peers use CertSecurity.
	Security Security
	// Connector is the link layer. If it implements SetReceiver(Receiver), New calls it
	// with the node.
	Connector Connector
	// Topology is the topology plug-in (required), e.g. chord.New(...).
	Topology Topology
	// Bootstrap are bootstrap addresses ("host:port") for Join; none: first peer.
	Bootstrap []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxMessageSize is max-message-size (RFC 6940 §11.1): 5000.
	MaxMessageSize int
	// InitialTTL is initial-ttl (RFC 6940 §6.3.2): 100.
	InitialTTL uint8
	// ReliabilityTimer is overlay-reliability-timer (RFC 6940 §6.2.1): 3 s.
	ReliabilityTimer time.Duration
	// Transmissions is how many times a request is sent before it fails (§6.2.1): 5.
	Transmissions int
	// RequestLifetime is how long answers are kept for retransmitted requests (§6.2.1): 15 s.
	RequestLifetime time.Duration
	// AttachTimeout bounds ICE+DTLS after an Attach/AppAttach exchange: 20 s.
	AttachTimeout time.Duration
	// KindModels resolves data models when parsing storage bodies (nil: wire defaults).
	KindModels wire.KindModels
}

func (s *Settings) withDefaults() (Settings, error) {
	c := *s
	if c.NodeID.IsZero() {
		return c, errors.New("node: settings: no NodeID")
	}
	if c.Topology == nil {
		return c, errors.New("node: settings: no Topology")
	}
	if c.OverlayHash == 0 {
		c.OverlayHash = wire.OverlayHash(c.OverlayName)
	}
	if c.Security == nil {
		c.Security = NoSecurity{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = wire.DefaultMaxMessageSize
	}
	if c.InitialTTL == 0 {
		c.InitialTTL = wire.DefaultTTL
	}
	if c.ReliabilityTimer <= 0 {
		c.ReliabilityTimer = DefaultReliabilityTimer
	}
	if c.Transmissions <= 0 {
		c.Transmissions = DefaultTransmissions
	}
	if c.RequestLifetime <= 0 {
		c.RequestLifetime = DefaultRequestLifetime
	}
	if c.AttachTimeout <= 0 {
		c.AttachTimeout = DefaultAttachTimeout
	}
	return c, nil
}

// Request is a request delivered to a Handler.
type Request struct {
	// Message is the decoded request.
	Message *wire.Message
	// From is the adjacent node the request arrived from (this node for local requests).
	From wire.NodeID
	// Origin is the originator: the first via-list entry, or From.
	Origin wire.NodeID
	// Signer are the Node-IDs of the signer's certificate (nil under NoSecurity).
	Signer []wire.NodeID
	// Hops is the number of links the request crossed.
	Hops int
	// Direct is true when the request came straight from its originator over a link.
	Direct bool
	node   *Node
}

// Body parses the request body (storage bodies with the node's KindModels).
func (r *Request) Body() (wire.Body, error) { return wire.ParseBody(r.Message, r.node.s.KindModels) }

// SignedBy reports whether the request was signed by id: true if the signer's certificate
// carries id, or under NoSecurity if id is the originator.
func (r *Request) SignedBy(id wire.NodeID) bool {
	if r.Signer == nil {
		return r.Origin == id
	}
	for _, s := range r.Signer {
		if s == id {
			return true
		}
	}
	return false
}

// Handler answers requests of one method, like net/http.Handler. The answer body gets the
// answer code (request code + 1); an error becomes an ErrorResponse whose code is
// wire.CodeOf(err) (use Errorf for a specific code).
type Handler interface {
	ServeRELOAD(ctx context.Context, req *Request) (wire.Body, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (wire.Body, error)

// ServeRELOAD calls f.
func (f HandlerFunc) ServeRELOAD(ctx context.Context, req *Request) (wire.Body, error) {
	return f(ctx, req)
}

// Errorf returns an error that a Handler returns to answer with ErrorResponse code.
func Errorf(code wire.ErrorCode, format string, a ...any) error {
	return &wire.Error{Code: code, Op: "request", Msg: fmt.Sprintf(format, a...)}
}

// RemoteError is an ErrorResponse answer (RFC 6940 §6.3.3.1).
type RemoteError struct {
	Code   wire.ErrorCode
	Phrase string
	Info   []byte
	From   wire.NodeID
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("node: %s from %s: %s", e.Code, e.From, e.Phrase)
}

// IsCode reports whether err is a RemoteError or wire.Error with code.
func IsCode(err error, code wire.ErrorCode) bool {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code == code
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code == code
	}
	return false
}

// Response is a successful answer.
type Response struct {
	Message *wire.Message
	// From is the responding node (the first via-list entry of the answer).
	From wire.NodeID
	// Hops is the number of links the answer crossed; with symmetric recursive routing
	// it equals the request's hop count.
	Hops int
	// Transmissions is how many times the request was sent.
	Transmissions int
}

// Body parses the answer body.
func (r *Response) Body(kinds wire.KindModels) (wire.Body, error) {
	return wire.ParseBody(r.Message, kinds)
}

// Stats are cumulative counters of one node.
type Stats struct {
	Sent            uint64 // messages handed to links (originated, forwarded, answers)
	Received        uint64 // messages received from links
	Forwarded       uint64
	Originated      uint64 // requests originated (first transmissions)
	Retransmissions uint64
	Dropped         uint64
	// BytesSent and BytesReceived count the bytes of those messages (RFC 7851 §5.3 EWMA).
	BytesSent, BytesReceived uint64
	// DropReasons counts dropped messages by reason.
	DropReasons map[string]uint64
}

type stats struct {
	sent, received, forwarded, originated, retrans, dropped atomic.Uint64
	bytesSent, bytesReceived                                atomic.Uint64
}

// AppHandler receives an incoming application connection made by AppAttach. It runs in
// a node goroutine and must return promptly (hand conn to a goroutine of your own):
// Close waits for it.
type AppHandler func(conn net.Conn, remote wire.NodeID)

// Node is one RELOAD node: message transport, routing and transactions (RFC 6940 §6).
type Node struct {
	s     Settings
	id    wire.NodeID
	log   *slog.Logger
	topo  Topology
	start time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	links    map[wire.NodeID][]Link
	handlers map[wire.MessageCode]Handler
	apps     map[uint16]AppHandler
	pending  map[uint64]*transaction
	answered map[answerKey]*answerEntry
	dropWhy  map[string]uint64

	// Also guarded by mu.
	sendqs    map[Link]*sendQueue      // per-link send queues (sendq.go)
	attaching attachLimits             // pending answered attachments (attachcap.go)
	certFetch map[wire.NodeID][]func() // signer certificates being fetched (certfetch.go)
	// outAttaches are this node's outstanding Attaches by target (glare.go).
	outAttaches map[wire.NodeID]*outAttach
	// stalled are links out of the link table while they stall (stall, RFC 6940 §6.6.5).
	stalled map[Link]struct{}

	st     stats
	counts msgCounts     // messages by code (counts.go)
	seq    atomic.Uint32 // configuration sequence (RFC 6940 §6.3.2.1)
	// reasm reassembles fragmented messages destined to this node (RFC 6940 §6.7).
	reasm *wire.Reassembler
}

// ConfigurationSequence returns the configuration sequence this node puts in headers and
// expects in requests (RFC 6940 §6.3.2.1).
func (n *Node) ConfigurationSequence() uint16 { return uint16(n.seq.Load()) }

// SetConfigurationSequence changes it, after a new configuration document was applied
// (RFC 6940 §6.5.4).
func (n *Node) SetConfigurationSequence(seq uint16) { n.seq.Store(uint32(seq)) }

// New returns a node. It registers Ping, Attach and AppAttach handlers and starts the
// topology; call Join to enter the overlay.
func New(s Settings) (*Node, error) {
	c, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		s: c, id: c.NodeID, log: c.Logger.With("node", c.NodeID.String()[:8]), topo: c.Topology,
		start:    time.Now(),
		links:    map[wire.NodeID][]Link{},
		handlers: map[wire.MessageCode]Handler{},
		apps:     map[uint16]AppHandler{},
		pending:  map[uint64]*transaction{},
		answered: map[answerKey]*answerEntry{},
		// Incomplete messages hold at most 64 messages' worth, and no more than 4 MiB
		// unless one message needs more (RFC 6940 §6.7: out of buffer space, drop).
		reasm: &wire.Reassembler{MaxMessageSize: c.MaxMessageSize, MaxBytes: max(4*c.MaxMessageSize, min(64*c.MaxMessageSize, 4<<20))},
	}
	n.seq.Store(uint32(c.ConfigurationSequence))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if r, ok := c.Connector.(interface{ SetReceiver(Receiver) }); ok {
		r.SetReceiver(n)
	}
	n.Handle(wire.CodePingReq, HandlerFunc(n.servePing))
	n.Handle(wire.CodeAttachReq, HandlerFunc(n.serveAttach))
	n.Handle(wire.CodeAppAttachReq, HandlerFunc(n.serveAppAttach))
	if err := c.Topology.Start(n); err != nil {
		n.cancel()
		return nil, fmt.Errorf("node: start topology: %w", err)
	}
	n.wg.Add(1)
	go n.janitor()
	return n, nil
}

// ID returns this node's Node-ID.
func (n *Node) ID() wire.NodeID { return n.id }

// Settings returns the settings with defaults filled in.
func (n *Node) Settings() Settings { return n.s }

// Logger returns the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Uptime returns how long the node has existed.
func (n *Node) Uptime() time.Duration { return time.Since(n.start) }

// Context is cancelled when the node closes.
func (n *Node) Context() context.Context { return n.ctx }

// Handle registers h for requests with code (replacing any earlier handler).
func (n *Node) Handle(code wire.MessageCode, h Handler) {
	n.mu.Lock()
	n.handlers[code] = h
	n.mu.Unlock()
}

// HandleApp registers h for incoming AppAttach connections for application app (e.g.
// 5060 for SIP, RFC 6940 §6.5.2).
func (n *Node) HandleApp(app uint16, h AppHandler) {
	n.mu.Lock()
	n.apps[app] = h
	n.mu.Unlock()
}

// Go runs f in a goroutine owned by the node: Close waits for it. f should return when
// ctx (the node's context) is done. It returns false if the node is closed.
func (n *Node) Go(f func(ctx context.Context)) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
	return true
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Sent: n.st.sent.Load(), Received: n.st.received.Load(), BytesSent: n.st.bytesSent.Load(), BytesReceived: n.st.bytesReceived.Load(), Forwarded: n.st.forwarded.Load(),
		Originated: n.st.originated.Load(), Retransmissions: n.st.retrans.Load(), Dropped: n.st.dropped.Load(),
		DropReasons: n.dropReasons(),
	}
}

func (n *Node) dropReasons() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]uint64, len(n.dropWhy))
	for k, v := range n.dropWhy {
		out[k] = v
	}
	return out
}

// Join connects to the bootstrap nodes of Settings.Bootstrap and joins the overlay
// through them; with none configured (or when every bootstrap address is this node's
// own) the node starts the overlay as its first peer. It fails if no bootstrap node is
// reachable, so that a cut-off peer never starts a second overlay. It returns when the
// node has joined.
func (n *Node) Join(ctx context.Context) error {
	for {
		var links []Link
		if len(n.s.Bootstrap) > 0 {
			var err error
			links, err = n.Bootstrap(ctx, n.s.Bootstrap)
			if errors.Is(err, ErrOnlySelf) {
				// This node is the configured bootstrap node: it starts the overlay
				// (RFC 6940 §6.4.2.1: the first node takes responsibility).
				links, err = nil, nil
			}
			if err != nil {
				return err
			}
		}
		err := n.topo.Join(ctx, links)
		if err == nil {
			return nil
		}
		if len(links) == 0 || ctx.Err() != nil || n.ctx.Err() != nil || !errors.Is(err, ErrBootstrapLost) {
			return fmt.Errorf("node: join: %w", err)
		}
		n.log.Debug("bootstrap links lost during join; bootstrapping again", "err", err)
	}
}

// ErrBootstrapLost is wrapped by a Topology's Join error when every bootstrap link died
// before the join completed: Node.Join then connects to the bootstrap nodes again.
var ErrBootstrapLost = errors.New("bootstrap links lost")

// Leave sends Leave requests to the neighbours (RFC 6940 §6.4.2.2). Call Close after.
func (n *Node) Leave(ctx context.Context) error { return n.topo.Leave(ctx) }

// Close closes the topology, every link and every goroutine of the node, and waits for
// them. It does not close the Connector (the caller owns it).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var all []Link
	for _, ls := range n.links {
		all = append(all, ls...)
	}
	n.links = map[wire.NodeID][]Link{}
	n.mu.Unlock()
	n.cancel()
	err := n.topo.Close()
	for _, l := range all {
		l.Close()
	}
	n.wg.Wait()
	return err
}

// Links returns the Node-IDs of all directly connected nodes (the Connection Table).
func (n *Node) Links() []wire.NodeID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]wire.NodeID, 0, len(n.links))
	for id := range n.links {
		out = append(out, id)
	}
	return out
}

// Connected reports whether a link to id is up.
func (n *Node) Connected(id wire.NodeID) bool { return n.link(id) != nil }

// link returns the newest link to id: a link just made is the best evidence of a path
// that works now (an older one may lead to an address the peer has since left, and is
// kept until it dies).
// LinkTo returns the link messages to id take (the newest), or nil.
func (n *Node) LinkTo(id wire.NodeID) Link { return n.link(id) }

func (n *Node) link(id wire.NodeID) Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ls := n.links[id]; len(ls) > 0 {
		return ls[len(ls)-1]
	}
	return nil
}

// AddLink enters an established link into the link table (the Connection Table) and
// watches it; the topology is told if it is the first link to that peer. Links made by
// the node itself (Attach, Bootstrap) and links a message arrives on are added
// automatically.
func (n *Node) AddLink(l Link) { n.addLink(l, false) }

func (n *Node) addLink(l Link, sendUpdate bool) {
	id := l.RemoteNodeID()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		l.Close()
		return
	}
	_, stalled := n.stalled[l]
	delete(n.stalled, l)
	ls := n.links[id]
	for _, x := range ls {
		if x == l {
			n.mu.Unlock()
			if sendUpdate {
				n.topo.LinkUp(id, true)
			}
			return
		}
	}
	first := len(ls) == 0
	n.links[id] = append(ls, l)
	// The newest link is the one used (link): requests whose first hop is id go again over
	// it at once, instead of at their next retransmission: those sent over an older link,
	// which may lead nowhere now, and those dropped because no link to id was up (a node
	// whose address just changed re-forms its links within milliseconds of its requests).
	for _, t := range n.pending {
		if t.hop == id {
			select {
			case t.newLink <- struct{}{}:
			default:
			}
		}
	}
	if !stalled { // a stalled link back in routing is watched already
		n.wg.Add(1)
	}
	n.mu.Unlock()
	if !stalled {
		if s, ok := l.(stallable); ok {
			s.OnStall(func(on bool) { n.stall(l, on) })
		}
		go n.watch(l)
	}
	if first || sendUpdate {
		n.topo.LinkUp(id, sendUpdate)
	}
}

// stallable is a link that says when it should leave routing while its connection is kept
// (RFC 6940 §6.6.5: a TLS link whose frames go unacknowledged beyond its RTO).
type stallable interface{ OnStall(func(stalled bool)) }

// stall takes l out of the link table while it is stalled — routing then stops using it,
// and the topology is told if it was the last link to that peer (§6.6.5: "the link SHOULD
// be removed from the Routing Table") — and enters it again when it recovers.
func (n *Node) stall(l Link, on bool) {
	if !on {
		n.mu.Lock()
		_, out := n.stalled[l]
		n.mu.Unlock()
		if out {
			n.log.Debug("stalled link usable again", "peer", l.RemoteNodeID())
			n.addLink(l, false)
		}
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if n.stalled == nil {
		n.stalled = map[Link]struct{}{}
	}
	n.stalled[l] = struct{}{}
	n.mu.Unlock()
	n.log.Debug("link stalled: out of routing", "peer", l.RemoteNodeID())
	n.unlink(l)
}

// watch removes l when it dies: pending transactions sent through it are retransmitted
// at once through another route, or fail at once if l's peer was their destination.
func (n *Node) watch(l Link) {
	defer n.wg.Done()
	select {
	case <-l.Done():
	case <-n.ctx.Done():
		return
	}
	n.mu.Lock()
	delete(n.stalled, l)
	n.mu.Unlock()
	n.unlink(l)
}

// unlink removes l from the link table: pending transactions sent through it are
// retransmitted at once through another route, or fail at once if l's peer was their
// destination; the topology is told when it was the last link to its peer.
func (n *Node) unlink(l Link) {
	id := l.RemoteNodeID()
	n.mu.Lock()
	ls := n.links[id]
	found := false
	for i, x := range ls {
		if x == l {
			ls = append(ls[:i:i], ls[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		n.mu.Unlock()
		return
	}
	last := len(ls) == 0
	if last {
		delete(n.links, id)
	} else {
		n.links[id] = ls
	}
	var kick []*transaction
	if last {
		for _, t := range n.pending {
			if t.hop == id {
				kick = append(kick, t)
			}
		}
	}
	closed := n.closed
	n.mu.Unlock()
	if closed || !last {
		return
	}
	n.log.Debug("link down", "peer", id)
	n.topo.LinkDown(id)
	for _, t := range kick {
		select {
		case t.linkDown <- id:
		default:
		}
	}
}

// janitor expires cached answers (RFC 6940 §6.2.1).
func (n *Node) janitor() {
	defer n.wg.Done()
	tick := time.NewTicker(n.s.RequestLifetime / 3)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			n.mu.Lock()
			for k, e := range n.answered {
				if now.After(e.expires) {
					delete(n.answered, k)
				}
			}
			n.mu.Unlock()
		}
	}
}

func newTransactionID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// LinkCount returns how many links to id are up.
func (n *Node) LinkCount(id wire.NodeID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.links[id])
}
