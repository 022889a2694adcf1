// Package sipcall runs Chordphone's SIP dialogs (RFC 3261, with sipgo) over the direct
// connections the overlay opens to a callee's phone with AppAttach (RFC 7904 §5.1): one
// INVITE dialog per call, carried over that connection only, never over the overlay link.
//
// An Endpoint is one phone's user agent. Incoming connections are handed to Serve, outgoing
// calls to Invite; both hand the connection to the Endpoint, which owns it from then on.
// Each request goes over the connection its dialog lives on; Contact and Via hosts are never
// dialled (sipgo sees made-up addresses and cannot dial at all).
//
// On the wire: sipgo's TCP transport frames the messages (Content-Length), which works over
// any connection, but the AppAttach connection is DTLS over UDP, where a datagram can be
// lost. The Endpoint therefore frames and checks what arrives itself (malformed requests
// get 400, garbage and the rest of a message that lost a datagram are skipped, sipgo sees
// only whole valid messages), writes in records below the path MTU, and retransmits as RFC
// 3261 §17 does for unreliable transports. OPTIONS keepalives (RFC 7904 §5.2) notice a dead
// peer within a few seconds.
//
// Handlers (OnInvite, OnReinvite) run on goroutines the Endpoint owns and waits for in
// Close: they must return, and must not call Close.
package sipcall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Defaults of Settings.
const (
	DefaultRingTimeout = 30 * time.Second
	DefaultKeepalive   = 2 * time.Second
	DefaultIdleTimeout = 2 * time.Minute
	// ackTimeout: RFC 3261 §13.3.1.4, 64*T1 without ACK ends the session.
	ackTimeout = 64 * 500 * time.Millisecond
	// cancelTimeout bounds the wait for 487 after CANCEL (RFC 3261 §9.1 allows 64*T1;
	// the phone wants the call gone sooner).
	cancelTimeout = 4 * time.Second
	// lingerClose: an outgoing connection is closed this long after its last call ended,
	// so the final ACK or BYE response still gets out.
	lingerClose = 300 * time.Millisecond
)

// allowHeader lists the methods an Endpoint handles (RFC 3261 §20.5).
const allowHeader = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY"

// Settings configures an Endpoint.
type Settings struct {
	// User is the local user name: the user part of the AoR sip:User@Overlay.
	User string
	// Overlay is the overlay name: the domain of every AoR in it (RFC 7904 §3.1).
	Overlay string
	// Logger gets the Endpoint's logs; nil means slog.Default().
	Logger *slog.Logger
	// RingTimeout is how long an incoming call may ring before the Endpoint answers it with
	// 480 Temporarily Unavailable; 0 means DefaultRingTimeout.
	RingTimeout time.Duration
	// Keepalive is the interval of OPTIONS keepalives on each connection (RFC 7904 §5.2,
	// RFC 3261 §11); a connection that does not answer one within twice the interval is
	// dead and its calls end with "connection lost" (so within 3 intervals of the peer's
	// death). 0 means DefaultKeepalive; negative disables keepalives.
	Keepalive time.Duration
	// IdleTimeout closes a served connection that has carried no call for this long;
	// 0 means DefaultIdleTimeout, negative never.
	IdleTimeout time.Duration
	// Reconnect is how long an answered call outlives its dead connection, waiting to be
	// moved to a new one (Call.Move, or the peer's re-INVITE on a new connection from the
	// same Node-ID) before it ends with "connection lost"; 0 ends it at once.
	Reconnect time.Duration
}

// Endpoint is one phone's SIP user agent.
type Endpoint struct {
	set Settings
	log *slog.Logger
	aor sip.Uri

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client
	ln  *chanListener

	mu        sync.Mutex
	closing   bool
	conns     map[net.Conn]*sipConn // by the raw connection handed to us
	byAddr    map[string]*sipConn   // by the made-up remote address sipgo knows
	dialogs   map[string]*Call      // dialogKey(Call-ID, local tag)
	onInvite  func(*Incoming)
	onMessage func(*Message) int // message.go
	pres      presence           // presence.go
	nextAddr  uint32

	done chan struct{}
	wg   sync.WaitGroup // our goroutines and sipgo's handler goroutines running our code
}

var sipgoLogOnce sync.Once

// demoted logs records below Error at Debug: sipgo's package-wide logger reports connection
// bookkeeping (for example reference counts of connections that closed before their
// transactions ended) that is worth a phone's log only at --log-level debug.
type demoted struct{ slog.Handler }

func (h demoted) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelError {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h demoted) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoted) WithAttrs(a []slog.Attr) slog.Handler { return demoted{h.Handler.WithAttrs(a)} }
func (h demoted) WithGroup(n string) slog.Handler      { return demoted{h.Handler.WithGroup(n)} }

var errNoDial = errors.New("sipcall: SIP goes only over AppAttach connections; not dialling")

// NewEndpoint makes an Endpoint for s.User in s.Overlay. It starts one goroutine (the accept
// loop); Close ends it and everything else.
func NewEndpoint(s Settings) (*Endpoint, error) {
	if err := validUser(s.User); err != nil {
		return nil, fmt.Errorf("sipcall: user: %w", err)
	}
	var aor sip.Uri
	if err := sip.ParseUri("sip:"+s.User+"@"+s.Overlay, &aor); err != nil || aor.Host == "" || aor.Port != 0 || strings.ContainsAny(s.Overlay, ";?@ ") {
		return nil, fmt.Errorf("sipcall: overlay name %q is not a SIP domain", s.Overlay)
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.RingTimeout == 0 {
		s.RingTimeout = DefaultRingTimeout
	}
	if s.Keepalive == 0 {
		s.Keepalive = DefaultKeepalive
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	sipgoLogOnce.Do(func() {
		// sipgo has one package-wide logger besides the per-endpoint ones given below.
		sip.SetDefaultLogger(slog.New(demoted{s.Logger.Handler()}).With("lib", "sipgo"))
	})
	log := s.Logger.With("sip_user", s.User)
	var ep *Endpoint
	ua, srv, cli, err := newUserAgent(s.Overlay, log, func(r *sip.Response) {
		if ep != nil { // set before any message can arrive
			ep.strayResponse(r)
		}
	})
	if err != nil {
		return nil, err
	}
	ep = &Endpoint{
		set: s, log: log, aor: aor,
		ua: ua, srv: srv, cli: cli, ln: newChanListener(),
		conns:   map[net.Conn]*sipConn{},
		byAddr:  map[string]*sipConn{},
		dialogs: map[string]*Call{},
		done:    make(chan struct{}),
	}
	srv.OnInvite(ep.wrap(ep.handleInvite))
	srv.OnAck(ep.wrap(ep.handleAck))
	srv.OnBye(ep.wrap(ep.handleBye))
	srv.OnCancel(ep.wrap(ep.handleStrayCancel))
	srv.OnOptions(ep.wrap(ep.handleOptions))
	srv.OnMessage(ep.wrap(ep.handleMessage))     // RFC 3428 (message.go)
	srv.OnSubscribe(ep.wrap(ep.handleSubscribe)) // RFC 6665 (presence.go)
	srv.OnNotify(ep.wrap(ep.handleNotify))
	srv.OnNoRoute(ep.wrap(ep.handleOther))
	ep.wg.Add(1)
	go func() {
		defer ep.wg.Done()
		if err := srv.ServeTCP(ep.ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("SIP accept loop ended", "err", err)
		}
	}()
	return ep, nil
}

// newUserAgent makes the sipgo user agent, server and client of an Endpoint: connections
// only through the Endpoint's listener (sipgo never dials), stray responses to stray.
func newUserAgent(overlay string, log *slog.Logger, stray func(*sip.Response)) (*sipgo.UserAgent, *sipgo.Server, *sipgo.Client, error) {
	tcp := &sip.TransportTCP{
		// sipgo would dial a request's destination when no pooled connection has that
		// address; we never want that (the destination is a made-up address).
		DialerCreate: func(net.Addr) net.Dialer {
			return net.Dialer{Timeout: time.Second, Control: func(string, string, syscall.RawConn) error { return errNoDial }}
		},
	}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("Chordphone"),
		sipgo.WithUserAgentHostname(overlay),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(log),
			sip.WithTransportLayerConnectionReuse(true),
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp}),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerTerminateOnConnClose(),
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				log.Debug("SIP response outside any transaction", "response", r.StartLine())
				stray(r)
			}),
		),
	)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sipcall: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, nil, nil, fmt.Errorf("sipcall: server: %w", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname(overlay))
	if err != nil {
		ua.Close()
		return nil, nil, nil, fmt.Errorf("sipcall: client: %w", err)
	}
	return ua, srv, cli, nil
}

// AoR returns the Endpoint's address of record, sip:User@Overlay.
func (ep *Endpoint) AoR() string { return ep.aor.String() }

// OnInvite sets the function that is given each new incoming call. It is called on its own
// goroutine per call and may block briefly; the call rings on until Answer or Reject (or
// the ring timeout, 480). Without a handler incoming calls get 480.
func (ep *Endpoint) OnInvite(f func(*Incoming)) {
	ep.mu.Lock()
	ep.onInvite = f
	ep.mu.Unlock()
}

// Serve takes an incoming AppAttach connection (application 5060) from the peer with Node-ID
// remote and serves SIP on it until it dies or the Endpoint closes. It returns once the
// connection is in service; the Endpoint owns conn from then on.
func (ep *Endpoint) Serve(conn net.Conn, remote string) error {
	_, err := ep.attach(conn, remote, false)
	return err
}

// Close ends every call (BYE for answered calls, CANCEL for ringing outgoing calls, 480 for
// ringing incoming calls; each given a moment), closes every connection and waits for all
// goroutines.
func (ep *Endpoint) Close() error {
	ep.mu.Lock()
	if ep.closing {
		ep.mu.Unlock()
		<-ep.done
		return nil
	}
	ep.closing = true
	calls := make([]*Call, 0, len(ep.dialogs))
	for _, c := range ep.dialogs {
		calls = append(calls, c)
	}
	ep.mu.Unlock()

	// Say goodbye, in parallel, briefly.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	var bye sync.WaitGroup
	for _, c := range calls {
		bye.Add(1)
		go func() {
			defer bye.Done()
			c.shutdown(ctx)
		}()
	}
	bye.Wait()
	cancel()

	close(ep.done)
	ep.ln.Close()
	ep.mu.Lock()
	conns := make([]*sipConn, 0, len(ep.conns))
	for _, c := range ep.conns {
		conns = append(conns, c)
	}
	ep.mu.Unlock()
	for _, c := range conns {
		c.fail(errClosedLocally)
	}
	ep.ua.Close()
	ep.wg.Wait()
	for _, c := range conns {
		select {
		case <-c.ready: // sipgo reads it: wait until its reader has seen the close
			<-c.readDone
		default:
		}
	}
	return nil
}

// enter registers a handler or goroutine with the Endpoint; false once it is closing.
func (ep *Endpoint) enter() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closing {
		return false
	}
	ep.wg.Add(1)
	return true
}

// wrap runs a sipgo request handler as one of the Endpoint's goroutines; after Close it
// answers 503 instead.
func (ep *Endpoint) wrap(h func(*sipConn, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !ep.enter() {
			if req.IsAck() {
				ep.ackWhileClosing(req)
				return
			}
			_ = tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
			return
		}
		defer ep.wg.Done()
		ep.mu.Lock()
		sc := ep.byAddr[req.Source()]
		ep.mu.Unlock()
		if sc == nil {
			ep.log.Debug("SIP request from a connection no longer served", "request", req.StartLine())
			return
		}
		// RFC 3261 §8.2.2.3: we support no extensions; a request that requires one gets 420.
		if !req.IsAck() && !req.IsCancel() {
			if ext := required(req); ext != "" {
				res := sip.NewResponseFromRequest(req, 420, "Bad Extension", nil)
				res.AppendHeader(sip.NewHeader("Unsupported", ext))
				_ = tx.Respond(res)
				return
			}
		}
		h(sc, req, tx)
	}
}

// ackWhileClosing takes an ACK that arrives while Close says goodbye: a callee's BYE waits
// for the ACK to its 2xx (RFC 3261 §15). It only marks the call acknowledged.
func (ep *Endpoint) ackWhileClosing(req *sip.Request) {
	ep.mu.Lock()
	sc := ep.byAddr[req.Source()]
	ep.mu.Unlock()
	if sc != nil {
		ep.handleAck(sc, req, nil)
	}
}

// attach puts conn into service, or returns it if it already is.
func (ep *Endpoint) attach(conn net.Conn, peer string, outgoing bool) (*sipConn, error) {
	if conn == nil {
		return nil, errors.New("sipcall: nil connection")
	}
	ep.mu.Lock()
	if ep.closing {
		ep.mu.Unlock()
		return nil, ErrClosed
	}
	if sc, ok := ep.conns[conn]; ok {
		ep.mu.Unlock()
		select {
		case <-sc.dead:
			return nil, fmt.Errorf("sipcall: connection: %w", sc.failErr)
		default:
		}
		return sc, nil
	}
	var n uint32
	for {
		ep.nextAddr++
		n = ep.nextAddr
		if _, used := ep.byAddr[madeUpAddr(198, 18, n).String()]; !used {
			break
		}
	}
	sc := &sipConn{
		ep: ep, raw: conn, peer: peer, outgoing: outgoing,
		laddr:    madeUpAddr(198, 19, n),
		raddr:    madeUpAddr(198, 18, n),
		rbuf:     make([]byte, 65536),
		replies:  make(chan []byte, 16),
		ready:    make(chan struct{}),
		dead:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	sc.idleSince = time.Now()
	sc.log = ep.log.With("peer", peer, "conn", sc.raddr.String(), "real_remote", addrString(conn.RemoteAddr()))
	ep.conns[conn] = sc
	ep.byAddr[sc.raddr.String()] = sc
	ep.wg.Add(2)
	ep.mu.Unlock()

	go func() { defer ep.wg.Done(); sc.writer() }()
	go func() { defer ep.wg.Done(); ep.monitor(sc) }()
	if !ep.ln.offer(sc) {
		sc.fail(errClosedLocally)
		return nil, ErrClosed
	}
	select {
	case <-sc.ready:
		return sc, nil
	case <-ep.done:
		return nil, ErrClosed
	}
}

func madeUpAddr(a, b byte, n uint32) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(a, b, byte(n>>8), byte(n)), Port: 5060}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// connLost ends the calls on a dead connection and forgets it.
func (ep *Endpoint) connLost(sc *sipConn, err error) {
	ep.mu.Lock()
	if ep.conns[sc.raw] == sc {
		delete(ep.conns, sc.raw)
	}
	if ep.byAddr[sc.raddr.String()] == sc {
		delete(ep.byAddr, sc.raddr.String())
	}
	var calls []*Call
	for _, c := range ep.dialogs {
		if c.conn == sc {
			calls = append(calls, c)
		}
	}
	ep.mu.Unlock()
	r := EndReason{Cause: CauseConnectionLost, Err: err}
	if errors.Is(err, errClosedLocally) {
		r = EndReason{Cause: CauseClosed}
	}
	for _, c := range calls {
		if r.Cause != CauseConnectionLost || !ep.orphan(c, sc, r) {
			c.end(r)
		}
	}
}

// orphan lets an answered call whose connection sc died wait Settings.Reconnect to be moved
// to a new connection; it reports false when the call cannot wait.
func (ep *Endpoint) orphan(c *Call, sc *sipConn, r EndReason) bool {
	c.mu.Lock()
	confirmed, lost := c.state == stateConfirmed, c.onLost
	c.mu.Unlock()
	ep.mu.Lock()
	ok := ep.set.Reconnect > 0 && confirmed && ep.enterLocked()
	ep.mu.Unlock()
	if !ok {
		return false
	}
	c.ep.log.Info("call lost its connection; waiting to be moved", "call_id", c.callID, "for", ep.set.Reconnect, "err", r.Err)
	go func() { // owner: ep (wg); ends when the wait is over, the call ends or ep closes
		defer ep.wg.Done()
		if lost != nil {
			lost(r.Err)
		}
		t := time.NewTimer(ep.set.Reconnect)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
			return
		case <-ep.done:
			return
		}
		if c.connNow() == sc {
			c.end(r)
		}
	}()
	return true
}

// move makes c's dialog run over sc (RFC 3261 §12.2: a dialog is its Call-ID and tags, not
// its connection). An outgoing connection left with no call is closed.
func (ep *Endpoint) move(c *Call, sc *sipConn) {
	ep.mu.Lock()
	old := c.conn
	if old == sc {
		ep.mu.Unlock()
		return
	}
	old.calls--
	if old.calls == 0 {
		old.idleSince = time.Now()
	}
	sc.calls++
	c.conn = sc
	closeOld := old.calls == 0 && old.outgoing
	ep.mu.Unlock()
	sc.log.Info("call moved to a new connection", "call_id", c.callID)
	if closeOld {
		old.fail(errClosedLocally)
	}
}

// adopt finds the dialog of an in-dialog request that came over sc: the request's own
// connection, or, for an answered call of the same peer (Node-ID) when Settings.Reconnect
// allows, the dialog moves to sc (the peer reconnected after its address changed).
func (ep *Endpoint) adopt(req *sip.Request, sc *sipConn) *Call {
	c := ep.dialogFor(req)
	if c == nil {
		return nil
	}
	cur := c.connNow()
	if cur == sc {
		return c
	}
	c.mu.Lock()
	confirmed := c.state == stateConfirmed
	c.mu.Unlock()
	if ep.set.Reconnect <= 0 || !confirmed || sc.peer == "" || sc.peer != cur.peer {
		return nil
	}
	ep.move(c, sc)
	return c
}

// monitor sends keepalives on sc and closes it when it is idle.
func (ep *Endpoint) monitor(sc *sipConn) {
	interval := ep.set.Keepalive
	if interval < 0 {
		interval = time.Minute // idle checks only
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-sc.dead:
			return
		case <-ep.done:
			return
		case <-tick.C:
		}
		ep.mu.Lock()
		calls, idle := sc.calls, time.Since(sc.idleSince)
		ep.mu.Unlock()
		if calls == 0 && ep.set.IdleTimeout > 0 && idle > ep.set.IdleTimeout && !sc.outgoing {
			sc.log.Debug("closing idle SIP connection")
			sc.fail(errClosedLocally)
			return
		}
		if ep.set.Keepalive > 0 {
			if err := ep.keepalive(sc); err != nil {
				sc.fail(fmt.Errorf("%w: %w", errKeepalive, err))
				return
			}
		}
	}
}

// keepalive sends one OPTIONS on sc (RFC 7904 §5.2, RFC 3261 §11) and waits for its final
// response, whatever its status.
func (ep *Endpoint) keepalive(sc *sipConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*ep.set.Keepalive)
	defer cancel()
	req := ep.outOfDialog(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: ep.set.Overlay}, newCallID(), sc)
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.SetBody(nil)
	// RFC 3261 Timer E retransmits: one lost datagram is not a dead peer.
	_, err := ep.transact(ctx, sc.self, req)
	select {
	case <-ep.done:
		return nil
	case <-sc.dead:
		return nil
	default:
	}
	if errors.Is(err, errNoResponse) || errors.Is(err, context.DeadlineExceeded) {
		return errors.New("OPTIONS: no response")
	}
	if err != nil {
		return fmt.Errorf("OPTIONS: %w", err)
	}
	return nil
}

// outOfDialog builds a request outside any dialog (RFC 3261 §8.1.1) to target, with a new
// From tag and CSeq 1, routed over sc.
func (ep *Endpoint) outOfDialog(method sip.RequestMethod, target sip.Uri, callID string, sc *sipConn) *sip.Request {
	req := sip.NewRequest(method, target)
	from := sip.FromHeader{DisplayName: ep.set.User, Address: ep.aor, Params: sip.NewParams()}
	from.Params.Add("tag", newTag())
	to := sip.ToHeader{Address: target, Params: sip.NewParams()}
	cid := sip.CallIDHeader(callID)
	cseq := sip.CSeqHeader{SeqNo: 1, MethodName: method}
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(ep.newVia(sc))
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(&cseq)
	req.AppendHeader(&maxf)
	ep.route(req, sc)
	return req
}

// asIs is a sipgo client option that sends a request exactly as built here.
func asIs(*sipgo.Client, *sip.Request) error { return nil }

// route sends req over sc and nowhere else.
func (ep *Endpoint) route(req *sip.Request, sc *sipConn) {
	req.SetTransport("TCP")
	req.SetDestination(sc.raddr.String())
}

func (ep *Endpoint) newVia(sc *sipConn) *sip.ViaHeader {
	via := &sip.ViaHeader{
		ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TCP",
		Host: sc.laddr.IP.String(), Port: sc.laddr.Port,
		Params: sip.NewParams(),
	}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	return via
}

func (ep *Endpoint) contact() *sip.ContactHeader {
	// RFC 7904 §5.1: Contact carries the overlay AoR; the connection is what routes.
	return &sip.ContactHeader{Address: ep.aor}
}

func (ep *Endpoint) handleOptions(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	_ = tx.Respond(res)
}

// handleOther answers methods we do not implement (RFC 3261 §8.2.1: 405 with Allow).
func (ep *Endpoint) handleOther(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	_ = tx.Respond(res)
}

// handleStrayCancel answers a CANCEL that matches no INVITE transaction (RFC 3261 §9.2).
func (ep *Endpoint) handleStrayCancel(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

// required lists the option tags of the request's Require headers.
func required(req *sip.Request) string {
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return strings.Join(tags, ", ")
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

// dialogFor finds the dialog an in-dialog request from the peer belongs to (RFC 3261 §12.2.2):
// its To tag is our local tag.
func (ep *Endpoint) dialogFor(req *sip.Request) *Call {
	tag, _ := req.To().Params.Get("tag")
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.dialogs[dialogKey(req.CallID().Value(), tag)]
}

func (ep *Endpoint) register(c *Call) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closing {
		return false
	}
	ep.dialogs[dialogKey(c.callID, c.localTag)] = c
	c.conn.calls++
	return true
}

// unregister forgets c and closes an outgoing connection that carries no more calls.
func (ep *Endpoint) unregister(c *Call) {
	ep.mu.Lock()
	k := dialogKey(c.callID, c.localTag)
	if ep.dialogs[k] != c {
		ep.mu.Unlock()
		return
	}
	delete(ep.dialogs, k)
	c.conn.calls--
	sc := c.conn
	if sc.calls == 0 {
		sc.idleSince = time.Now()
	}
	idle := sc.calls == 0 && sc.outgoing && !ep.closing
	if idle && ep.enterLocked() {
		go func() {
			defer ep.wg.Done()
			t := time.NewTimer(lingerClose)
			defer t.Stop()
			select {
			case <-t.C:
			case <-sc.dead:
				return
			case <-ep.done:
				return
			}
			ep.mu.Lock()
			still := sc.calls == 0
			ep.mu.Unlock()
			if still {
				sc.fail(errClosedLocally)
			}
		}()
	}
	ep.mu.Unlock()
}

func (ep *Endpoint) enterLocked() bool {
	if ep.closing {
		return false
	}
	ep.wg.Add(1)
	return true
}

func (ep *Endpoint) handleBye(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	c := ep.adopt(req, sc)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if !c.acceptSeq(req, tx) {
		return
	}
	// sipgo handles each message on its own goroutine, so the caller's BYE may overtake its
	// ACK; a BYE from the caller implies the ACK was sent.
	c.gotAck(req)
	// The reason is set before the 200 goes out: the peer may close the connection as soon
	// as it has the 200, and that must not turn into "connection lost".
	c.setReason(EndReason{Cause: CauseRemoteHangup})
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if c.in != nil {
		// RFC 3261 §15.1.2: a BYE in an early dialog ends the INVITE with 487.
		c.in.finalize(487, "Request Terminated", nil)
	}
	c.end(EndReason{Cause: CauseRemoteHangup})
}

func (ep *Endpoint) handleAck(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	c := ep.adopt(req, sc)
	if c == nil {
		return // ACK of a non-2xx final response or of an ended call
	}
	c.gotAck(req)
}

func (ep *Endpoint) handleInvite(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	if tag, ok := req.To().Params.Get("tag"); ok && tag != "" {
		c := ep.adopt(req, sc)
		if c == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		c.handleReinvite(req, tx)
		return
	}
	ep.handleNewInvite(sc, req, tx)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("sipcall: endpoint closed")
