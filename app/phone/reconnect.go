package phone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/media/rtc"
	"github.com/chordphone/chordphone/overlay/wire"
)

const (
	// reconnectWindow is how long a call whose connection died (the phone's or the peer's
	// address changed, a network went away) may take to reconnect before it ends.
	reconnectWindow = 20 * time.Second
	// mediaSilenceLimit is how long no media (RTP, RTCP or ICE keepalive, sent every second)
	// may arrive before the call reconnects.
	mediaSilenceLimit = 2 * time.Second
)

// run carries an answered call until either side ends it. When its connection dies — the
// SIP connection (keepalives) or the media (ICE) — one side connects to the other's Node-ID
// again (a new AppAttach, RFC 7904 §5), moves the dialog onto it and re-INVITEs with an ICE
// restart offer (RFC 8445 §9); the other side takes that re-INVITE. The side whose own
// address was removed (it knows at once, from the network watcher) reconnects at once,
// whether it placed the call or took it; when only silence tells, the caller does. If
// nothing comes back within reconnectWindow the call ends as "connection lost".
func (c *call) run(d *sipcall.Call, m *rtc.Session) {
	p := c.p
	lost := make(chan struct{}, 1)
	d.OnConnectionLost(func(err error) {
		p.log.Info("call's SIP connection lost", "call", c.info.ID, "err", err)
		select {
		case lost <- struct{}{}:
		default:
		}
	})
	r := c.reconnector(d, m) // its attempts end with c.ctx
	for {
		select {
		case <-d.Done():
			c.end(d.EndReason().String(), m)
			return
		case <-c.ctx.Done():
			c.bye(d)
			c.end("local hangup", m)
			return
		case <-lost:
			r.start("no answer to SIP keepalives", false)
		case <-c.addrGone:
			r.start("this device's address changed", true)
		case res := <-r.result:
			if r.finished(res) {
				c.bye(d)
				c.end("connection lost", m)
				return
			}
		case <-r.giveUp:
			if r.recovering {
				c.bye(d)
				c.end("connection lost", m)
				return
			}
		case ev, ok := <-m.Events():
			if !ok {
				c.end("media closed", m)
				return
			}
			switch {
			case ev.Type == rtc.EventDTMF:
				p.emit(Event{Kind: EventDTMF, CallID: c.info.ID, Digits: string(ev.Digit)})
			case ev.Type == rtc.EventFailed && errors.Is(ev.Err, rtc.ErrAudioStopped):
				c.bye(d)
				c.end("media failed", m)
				return
			case ev.Type == rtc.EventDisconnected, ev.Type == rtc.EventFailed:
				r.start("no media from the peer", false)
			case ev.Type == rtc.EventReconnected:
				r.back()
			}
		}
	}
}

// reconnector is the state of a call's reconnection, owned by call.run.
type reconnector struct {
	c      *call
	d      *sipcall.Call
	m      *rtc.Session
	dial   func(context.Context) (net.Conn, error) // a new SIP connection to the peer's device
	peerID string                                  // that device's Node-ID
	// caller: this side placed the call, so it reconnects also when only silence tells.
	caller     bool
	recovering bool
	since      time.Time
	giveUp     <-chan time.Time
	result     chan reconnectResult
	cur        *attempt // the reconnect under way; nil when none is
}

// attempt is one reconnect (call.reconnect) on its own goroutine.
type attempt struct {
	cancel context.CancelFunc
	// abandoned: media came back another way (the peer reconnected) and no new try is
	// started; a re-INVITE already sent is not cut short (its answer must be applied).
	abandoned atomic.Bool
}

type reconnectResult struct {
	att *attempt
	err error
}

func (c *call) reconnector(d *sipcall.Call, m *rtc.Session) *reconnector {
	p := c.p
	r := &reconnector{c: c, d: d, m: m, result: make(chan reconnectResult, 1)}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.peer == nil:
	case c.won != nil && c.info.Direction == Outgoing:
		reg := c.won.reg // the callee's device
		r.caller, r.peerID = true, reg.Target().String()
		r.dial = func(ctx context.Context) (net.Conn, error) { return p.peer.AppAttach(ctx, reg) }
	default:
		if id, err := wire.ParseNodeID(d.Peer()); err == nil { // the caller's device
			r.peerID = id.String()
			r.dial = func(ctx context.Context) (net.Conn, error) { return p.peer.AppAttachNode(ctx, id) }
		}
	}
	return r
}

// start notes that the call's connection is lost (why) and reconnects if this side should:
// it moved (its own address was removed) or it placed the call.
func (r *reconnector) start(why string, moved bool) {
	c, p := r.c, r.c.p
	if !r.recovering {
		r.recovering, r.since = true, time.Now()
		c.setReconnecting(true)
		r.giveUp = time.After(reconnectWindow)
		p.log.Warn("call connection lost; reconnecting", "call", c.info.ID, "why", why)
		p.emit(Event{Kind: EventWarning, CallID: c.info.ID, Peer: c.info.Peer, Code: CodeCallReconnecting,
			Message: fmt.Sprintf("The connection to %s was lost (%s); reconnecting…", c.info.Peer, why)})
	}
	if r.dial == nil || r.cur != nil && !r.cur.abandoned.Load() || !moved && !r.caller {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, reconnectWindow)
	att := &attempt{cancel: cancel}
	r.cur = att
	p.spawn(func() {
		err := c.reconnect(ctx, r, att)
		select {
		case r.result <- reconnectResult{att, err}:
		case <-c.ctx.Done():
		}
	})
}

// finished takes the outcome of a reconnect; true when the call is lost.
func (r *reconnector) finished(res reconnectResult) bool {
	res.att.cancel()
	if res.att != r.cur {
		return false // an abandoned one that a newer one replaced
	}
	r.cur = nil
	if res.att.abandoned.Load() {
		return false // media came back without it
	}
	if res.err != nil && r.recovering {
		r.c.p.log.Warn("reconnecting the call failed", "call", r.c.info.ID, "err", res.err)
		return true
	}
	return false
}

// back: media flows again (over the pair a restart selected, ours or the peer's).
func (r *reconnector) back() {
	if !r.recovering {
		return
	}
	c, p := r.c, r.c.p
	r.recovering, r.giveUp = false, nil
	if r.cur != nil { // a reconnect of ours still under way makes no new try
		r.cur.abandoned.Store(true)
	}
	c.setReconnecting(false)
	gap := time.Since(r.since).Milliseconds()
	p.log.Info("call reconnected", "call", c.info.ID, "after_ms", gap)
	p.emit(Event{Kind: EventReconnected, CallID: c.info.ID, Peer: c.info.Peer, DownMs: &gap})
}

// addressesRemoved tells the current call that this device moved, if its media went out
// from one of removed (netwatch: the host's addresses changed).
func (p *Phone) addressesRemoved(removed []netip.Addr) {
	p.mu.Lock()
	c := p.call
	var m *rtc.Session
	if c != nil {
		m = c.media
	}
	p.mu.Unlock()
	if m == nil || !m.UsesAddr(removed) {
		return
	}
	select {
	case c.addrGone <- struct{}{}:
	default:
	}
}

func (c *call) setReconnecting(on bool) {
	c.p.mu.Lock()
	c.info.Reconnecting = on
	c.p.mu.Unlock()
}

// bye says BYE on d (bounded), also while the phone shuts down.
func (c *call) bye(d *sipcall.Call) {
	ctx, cancel := context.WithTimeout(c.p.runCtx, 3*time.Second)
	if c.p.runCtx.Err() != nil {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	}
	defer cancel()
	_ = d.Bye(ctx)
}

// reconnect tries, until ctx ends or att is abandoned, to carry the call over a new
// connection made by r.dial.
func (c *call) reconnect(ctx context.Context, r *reconnector, att *attempt) error {
	backoff := 100 * time.Millisecond // the overlay's links come back within milliseconds
	for {
		err := c.reconnectOnce(ctx, r)
		if err == nil {
			c.p.log.Info("call moved to a new connection, ICE restarting", "call", c.info.ID)
			return nil
		}
		c.p.log.Info("reconnecting the call", "call", c.info.ID, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("reconnecting: %w (last try: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		if att.abandoned.Load() {
			return nil
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// reconnectOnce: a new AppAttach to the peer's Node-ID, the dialog moved onto it, and a
// re-INVITE with an ICE restart offer over it.
func (c *call) reconnectOnce(ctx context.Context, r *reconnector) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, m := r.d, r.m
	conn, err := r.dial(ctx)
	if err != nil {
		return fmt.Errorf("connecting to %s's device: %w", c.info.Peer, err)
	}
	if got := peer.UserOf(peer.PeerCertificate(conn)); got != c.info.Peer { // RFC 7904 §3.3
		conn.Close()
		return fmt.Errorf("the device of %s presents a certificate for %q", c.info.Peer, got)
	}
	if err := d.Move(conn, r.peerID); err != nil {
		conn.Close()
		return err
	}
	offer, err := m.CreateRestartOffer(ctx)
	if err != nil {
		return err
	}
	answer, err := d.Reinvite(ctx, []byte(offer))
	if err != nil {
		return fmt.Errorf("re-INVITE: %w", err)
	}
	return m.SetAnswer(string(answer))
}
