package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/stun"

	"github.com/chordphone/chordphone/internal/onlink"
	"github.com/chordphone/chordphone/internal/pionslog"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// attachment is one ICE exchange (RFC 6940 §6.5.1.3) for an Attach or AppAttach.
type attachment struct {
	t           *Transport
	remote      wire.NodeID
	app         uint16
	controlling bool
	agent       *ice.Agent
	local       node.IceParams

	mu        sync.Mutex
	connected bool
	closed    bool
}

var _ node.Attachment = (*attachment)(nil)

// NewAttachment creates an ICE agent and gathers host and server-reflexive candidates
// (RFC 6940 §6.5.1.5). The side that sends the (App)Attach request is controlling
// (RFC 6940 §6.5.1.9).
func (t *Transport) NewAttachment(ctx context.Context, remote wire.NodeID, app uint16, controlling bool) (node.Attachment, error) {
	agent, err := ice.NewAgent(t.agentConfig(app))
	if err != nil {
		return nil, fmt.Errorf("link: ice agent: %w", err)
	}
	a := &attachment{t: t, remote: remote, app: app, controlling: controlling, agent: agent}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = agent.Close()
		return nil, fmt.Errorf("link: transport closed: %w", ErrLinkClosed)
	}
	t.agents[a] = struct{}{}
	t.mu.Unlock()
	if err := a.gather(ctx); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// agentConfig is the ICE agent configuration of an attachment for application app (0: an
// overlay link): STUN servers off this host's networks, the overlay's TURN relays.
func (t *Transport) agentConfig(app uint16) *ice.AgentConfig {
	var urls []*stun.URI
	for _, s := range t.stunServers() {
		if ap, err := netip.ParseAddrPort(s); err == nil && onlink.SkipSTUN(ap.Addr()) {
			continue // on this host's own network: nothing to learn (RFC 8445 §5.1.3)
		}
		u, err := stun.ParseURI("stun:" + s)
		if err != nil {
			t.log.Debug("bad STUN server", "addr", s, "err", err)
			continue
		}
		urls = append(urls, u)
	}
	types := []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive}
	if turn := t.turnServers(); len(turn) > 0 {
		urls = append(urls, turn...)
		types = append(types, ice.CandidateTypeRelay)
	}
	disc, noWait := 3*time.Second, time.Duration(0)
	failed := t.s.ICECheckTimeout
	keep := time.Second
	if app == 0 {
		// An overlay link sends its own keepalives every Settings.Keepalive in both
		// directions over the selected pair, which keeps it fresh; ICE sends STUN only
		// after 15 s of silence (RFC 5245 §10, Tr) and its task loop wakes every 4 s
		// instead of every second: most of an idle peer's CPU was these wake-ups.
		disc, keep = 4*time.Second, 15*time.Second
	}
	cfg := &ice.AgentConfig{
		Urls:             urls,
		NetworkTypes:     []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6},
		CandidateTypes:   types,
		MulticastDNSMode: ice.MulticastDNSModeDisabled,
		IncludeLoopback:  t.s.ICEIncludeLoopback,
		InterfaceFilter:  t.s.ICEInterfaceFilter,
		// RFC 6940 §6.5.1.10.3: STUN keepalives (RFC 5245 §10) on the selected pair.
		KeepaliveInterval:   &keep,
		DisconnectedTimeout: &disc,
		FailedTimeout:       &failed,
		// The answering side starts its checks as soon as it has sent the answer, which
		// travels through the overlay: its first checks often arrive before the answer, and
		// pion learns the sender as peer-reflexive (RFC 8445 §7.3.1.3) and keeps it so when
		// the same address comes as a host candidate a moment later. pion then held the
		// nomination of that working pair for 1 s (its default wait for peer-reflexive
		// pairs); a peer reconnecting a call after its address changed waited for it.
		PrflxAcceptanceMinWait: &noWait,
		LoggerFactory:          pionslog.New(t.log),
	}
	if t.s.ICELogger != nil {
		cfg.LoggerFactory = t.s.ICELogger
	}
	return cfg
}

// gather gathers a's candidates (until ICEGatherTimeout) and sets its local ICE parameters.
func (a *attachment) gather(ctx context.Context) error {
	t, agent := a.t, a.agent
	gathered := make(chan struct{})
	var once sync.Once
	if err := agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			once.Do(func() { close(gathered) })
		}
	}); err != nil {
		return fmt.Errorf("link: ice: %w", err)
	}
	if err := agent.GatherCandidates(); err != nil {
		return fmt.Errorf("link: ice gather: %w", err)
	}
	timer := time.NewTimer(t.s.ICEGatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C: // use what was gathered so far
	case <-ctx.Done():
		return ctx.Err()
	}
	cands, err := agent.GetLocalCandidates()
	if err != nil {
		return fmt.Errorf("link: ice candidates: %w", err)
	}
	ufrag, pwd, err := agent.GetLocalUserCredentials()
	if err != nil {
		return fmt.Errorf("link: ice credentials: %w", err)
	}
	a.local = node.IceParams{Ufrag: ufrag, Password: pwd, Role: "active"}
	if a.controlling {
		a.local.Role = "passive" // RFC 6940 §6.5.1.1: "passive" for the offerer
	}
	for _, c := range cands {
		if wc, ok := toWire(c); ok {
			a.local.Candidates = append(a.local.Candidates, wc)
		}
	}
	if len(a.local.Candidates) == 0 {
		return errors.New("link: ice: no candidates gathered")
	}
	return nil
}

func (a *attachment) Local() node.IceParams { return a.local }

func (a *attachment) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	connected := a.connected
	a.mu.Unlock()
	a.t.mu.Lock()
	delete(a.t.agents, a)
	a.t.mu.Unlock()
	if !connected {
		return a.agent.Close()
	}
	return nil
}

// connect runs the ICE checks and the DTLS handshake over the selected pair.
func (a *attachment) connect(ctx context.Context, remote node.IceParams, dtlsServer, alpn bool) (*dtls.Conn, *peerCheck, error) {
	a.mu.Lock()
	if a.closed || a.connected {
		a.mu.Unlock()
		return nil, nil, errors.New("link: attachment already used or closed")
	}
	a.mu.Unlock()
	n := 0
	for _, c := range remote.Candidates {
		ic, err := fromWire(c)
		if err != nil {
			a.t.log.Debug("remote candidate ignored", "err", err)
			continue
		}
		if err := a.agent.AddRemoteCandidate(ic); err != nil {
			a.t.log.Debug("remote candidate refused", "err", err)
			continue
		}
		n++
	}
	if n == 0 {
		return nil, nil, errors.New("link: ice: no usable remote candidates")
	}
	var ic *ice.Conn
	var err error
	if a.controlling {
		ic, err = a.agent.Dial(ctx, remote.Ufrag, remote.Password)
	} else {
		ic, err = a.agent.Accept(ctx, remote.Ufrag, remote.Password)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("link: ice checks with %s: %w", a.remote, err)
	}
	// RFC 6940 §6.5.1.13: the node that sent the Attach is the (D)TLS server; both verify that
	// the certificate matches the Node-ID of the peer.
	pc := &peerCheck{verify: a.t.s.VerifyPeer, expect: a.remote}
	cfg := a.t.dtlsConfig(pc, alpn)
	var dc *dtls.Conn
	conn := newDeadlineConn(ic)
	pc.under = newNotifyConn(conn)
	hctx, cancel := context.WithTimeout(ctx, a.t.s.HandshakeTimeout)
	defer cancel()
	if dtlsServer {
		dc, err = dtls.ServerWithContext(hctx, pc.under, cfg)
	} else {
		dc, err = dtls.ClientWithContext(hctx, pc.under, cfg)
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("link: DTLS with %s: %w", a.remote, err)
	}
	a.mu.Lock()
	a.connected = true
	a.mu.Unlock()
	a.t.mu.Lock()
	delete(a.t.agents, a)
	a.t.mu.Unlock()
	return dc, pc, nil
}

// ConnectLink completes an Attach: ICE, then DTLS, then a DTLS-UDP-SR link delivering to the
// Transport's Receiver. On failure the attachment is closed.
func (a *attachment) ConnectLink(ctx context.Context, remote node.IceParams, dtlsServer bool) (node.Link, error) {
	if a.app != 0 {
		return nil, errors.New("link: ConnectLink on an AppAttach attachment")
	}
	if addrs := noICE(remote.Candidates); len(addrs) > 0 {
		_ = a.Close() // no ICE checks
		return a.t.dialNoICE(ctx, addrs, a.remote)
	}
	dc, pc, err := a.connect(ctx, remote, dtlsServer, true)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	agent := a.agent
	l := newLink(a.t, dc, wire.LinkDTLSUDPSR, pc, negotiatedProtocol(dc), func() { _ = agent.Close() })
	if st, ok := agent.GetSelectedCandidatePairStats(); ok && st.CurrentRoundTripTime > 0 {
		l.firstRTT = time.Duration(st.CurrentRoundTripTime * float64(time.Second))
	}
	_ = agent.OnConnectionStateChange(func(s ice.ConnectionState) {
		if s == ice.ConnectionStateFailed || s == ice.ConnectionStateClosed {
			go l.fail(fmt.Errorf("%w: ICE %s", ErrLinkDead, s))
		}
	})
	if err := a.t.addLink(l); err != nil {
		return nil, err
	}
	return l, nil
}

// ConnectApp completes an AppAttach (RFC 6940 §6.5.2): ICE, then DTLS; the application gets
// the DTLS connection. Closing it closes the ICE agent.
func (a *attachment) ConnectApp(ctx context.Context, remote node.IceParams, dtlsServer bool) (net.Conn, error) {
	if addrs := noICE(remote.Candidates); len(addrs) > 0 {
		_ = a.Close() // no ICE checks
		return a.t.dialAppNoICE(ctx, addrs, a.remote)
	}
	dc, pc, err := a.connect(ctx, remote, dtlsServer, false)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	return &AppConn{Conn: dc, agent: a.agent, remote: pc.remoteID(), pc: pc}, nil
}

// AppConn is the connection an AppAttach hands the application: DTLS over the ICE-selected
// pair, authenticated as the peer's Node-ID.
type AppConn struct {
	*dtls.Conn
	agent  *ice.Agent
	remote wire.NodeID
	pc     *peerCheck
	once   sync.Once
}

// RemoteNodeID is the Node-ID the peer proved with its certificate.
func (c *AppConn) RemoteNodeID() wire.NodeID { return c.remote }

// Close closes the DTLS connection and the ICE agent.
func (c *AppConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		if c.agent != nil {
			_ = c.agent.Close()
		}
	})
	return err
}

// ---- No-ICE (RFC 6940 §6.5.1.11)

// noICE returns the No-ICE candidates of a peer as addresses for dial: "No-ICE is selected
// when either side has provided 'no ICE' Overlay Link candidates" (RFC 6940 §6.5.1.11);
// this side provides ICE candidates only, so the peer's decide.
func noICE(cands []wire.IceCandidate) []string {
	var out []string
	for _, c := range cands {
		if !c.AddrPort.IsValid() || c.AddrPort.Port() == 0 {
			continue
		}
		switch c.OverlayLink {
		case wire.LinkDTLSUDPSRNoICE:
			out = append(out, c.AddrPort.String())
		case wire.LinkTLSTCPFHNoICE:
			out = append(out, "tls://"+c.AddrPort.String())
		}
	}
	return out
}

// dialNoICE makes a link to the first No-ICE candidate that answers: "the DTLS or TLS
// handshake ... forms the connectivity check", and the certificate "MUST match the node
// which sent the AttachReqAns, and if it does not, the connection MUST be closed" (RFC 6940
// §6.5.1.11): dial requires Node-ID expect and closes the connection otherwise.
func (t *Transport) dialNoICE(ctx context.Context, addrs []string, expect wire.NodeID) (node.Link, error) {
	var errs []error
	for _, addr := range addrs {
		l, err := t.dial(ctx, addr, expect, false)
		if err == nil {
			return l, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("link: No-ICE candidates of %s: %w", expect, errors.Join(errs...))
}

// dialAppNoICE is dialNoICE for an AppAttach: a DTLS connection for the application to the
// first DTLS-UDP-SR-NO-ICE candidate that answers with expect's certificate.
func (t *Transport) dialAppNoICE(ctx context.Context, addrs []string, expect wire.NodeID) (net.Conn, error) {
	var errs []error
	for _, addr := range addrs {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue // a TLS candidate ("tls://"): AppAttach runs over DTLS
		}
		pc := &peerCheck{verify: t.s.VerifyPeer, expect: expect}
		hctx, cancel := context.WithTimeout(ctx, t.s.HandshakeTimeout)
		dc, err := dtls.DialWithContext(hctx, "udp", ua, t.dtlsConfig(pc, false))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("DTLS %s: %w", addr, err))
			continue
		}
		return &AppConn{Conn: dc, remote: pc.remoteID(), pc: pc}, nil
	}
	return nil, fmt.Errorf("link: No-ICE candidates of %s: %w", expect, errors.Join(errs...))
}

// ---- candidates (RFC 6940 §6.5.1.1)

func toWire(c ice.Candidate) (wire.IceCandidate, bool) {
	if c.NetworkType().IsTCP() {
		return wire.IceCandidate{}, false
	}
	addr, err := netip.ParseAddr(c.Address())
	if err != nil {
		return wire.IceCandidate{}, false
	}
	w := wire.IceCandidate{
		AddrPort:    netip.AddrPortFrom(addr.Unmap(), uint16(c.Port())),
		OverlayLink: wire.LinkDTLSUDPSR,
		Foundation:  []byte(c.Foundation()),
		Priority:    c.Priority(),
	}
	switch c.Type() {
	case ice.CandidateTypeHost:
		w.Type = wire.CandHost
	case ice.CandidateTypeServerReflexive, ice.CandidateTypePeerReflexive:
		w.Type = wire.CandSrflx
	case ice.CandidateTypeRelay:
		w.Type = wire.CandRelay
	default:
		return wire.IceCandidate{}, false
	}
	if w.Type != wire.CandHost {
		if r := c.RelatedAddress(); r != nil {
			if ra, err := netip.ParseAddr(r.Address); err == nil {
				w.RelAddrPort = netip.AddrPortFrom(ra.Unmap(), uint16(r.Port))
			}
		}
		if !w.RelAddrPort.IsValid() {
			w.RelAddrPort = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		}
	}
	return w, true
}

func fromWire(w wire.IceCandidate) (ice.Candidate, error) {
	if w.OverlayLink != wire.LinkDTLSUDPSR {
		return nil, fmt.Errorf("overlay link type %d not supported with ICE", w.OverlayLink)
	}
	if !w.AddrPort.IsValid() {
		return nil, errors.New("invalid candidate address")
	}
	addr := w.AddrPort.Addr().Unmap().String()
	port := int(w.AddrPort.Port())
	found := string(w.Foundation)
	switch w.Type {
	case wire.CandHost:
		return ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: addr, Port: port, Component: 1, Priority: w.Priority, Foundation: found})
	case wire.CandSrflx:
		return ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{Network: "udp", Address: addr, Port: port, Component: 1, Priority: w.Priority, Foundation: found,
			RelAddr: w.RelAddrPort.Addr().Unmap().String(), RelPort: int(w.RelAddrPort.Port())})
	case wire.CandRelay:
		return ice.NewCandidateRelay(&ice.CandidateRelayConfig{Network: "udp", Address: addr, Port: port, Component: 1, Priority: w.Priority, Foundation: found,
			RelAddr: w.RelAddrPort.Addr().Unmap().String(), RelPort: int(w.RelAddrPort.Port())})
	}
	return nil, fmt.Errorf("candidate type %d", w.Type)
}
