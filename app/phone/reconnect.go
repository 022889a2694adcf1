package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/media/rtc"
	"github.com/chordphone/chordphone/overlay/storage"
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
// SIP connection (keepalives) or the media (ICE) — the caller connects to the callee's
// Node-ID again (a new AppAttach, RFC 7904 §5), moves the dialog onto it and re-INVITEs with
// an ICE restart offer (RFC 8445 §9); the callee takes that re-INVITE. If nothing comes back
// within reconnectWindow the call ends as "connection lost".
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
	var (
		reg        *storage.Registration // the callee's device: the caller reconnects to it
		recovering bool
		since      time.Time
		giveUp     <-chan time.Time
		result     = make(chan error, 1)
	)
	p.mu.Lock()
	if c.won != nil && c.info.Direction == Outgoing {
		reg = &c.won.reg
	}
	p.mu.Unlock()
	start := func(why string) {
		if recovering {
			return
		}
		recovering, since = true, time.Now()
		c.setReconnecting(true)
		giveUp = time.After(reconnectWindow)
		p.log.Warn("call connection lost; reconnecting", "call", c.info.ID, "why", why)
		p.emit(Event{Kind: EventWarning, CallID: c.info.ID, Peer: c.info.Peer, Code: CodeCallReconnecting,
			Message: fmt.Sprintf("The connection to %s was lost (%s); reconnecting…", c.info.Peer, why)})
		if reg != nil {
			r := *reg
			p.spawn(func() {
				err := c.reconnect(d, m, r)
				select {
				case result <- err:
				case <-c.ctx.Done():
				}
			})
		}
	}
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
			start("no answer to SIP keepalives")
		case err := <-result:
			if err != nil && recovering {
				p.log.Warn("reconnecting the call failed", "call", c.info.ID, "err", err)
				c.bye(d)
				c.end("connection lost", m)
				return
			}
		case <-giveUp:
			if recovering {
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
				start("no media from the peer")
			case ev.Type == rtc.EventReconnected && recovering:
				recovering, giveUp = false, nil
				c.setReconnecting(false)
				gap := time.Since(since).Milliseconds()
				p.log.Info("call reconnected", "call", c.info.ID, "after_ms", gap)
				p.emit(Event{Kind: EventReconnected, CallID: c.info.ID, Peer: c.info.Peer, DownMs: &gap})
			}
		}
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

// reconnect tries, until reconnectWindow runs out, to carry the call over a new connection
// to the callee's device reg.
func (c *call) reconnect(d *sipcall.Call, m *rtc.Session, reg storage.Registration) error {
	ctx, cancel := context.WithTimeout(c.ctx, reconnectWindow)
	defer cancel()
	backoff := 250 * time.Millisecond
	for {
		err := c.reconnectOnce(ctx, d, m, reg)
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
		backoff = min(2*backoff, 2*time.Second)
	}
}

// reconnectOnce: a new AppAttach to the callee's Node-ID, the dialog moved onto it, and a
// re-INVITE with an ICE restart offer over it.
func (c *call) reconnectOnce(ctx context.Context, d *sipcall.Call, m *rtc.Session, reg storage.Registration) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.p.peer.AppAttach(ctx, reg)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", reg.Target().String()[:8], err)
	}
	if got := peer.UserOf(peer.PeerCertificate(conn)); got != c.info.Peer { // RFC 7904 §3.3
		conn.Close()
		return fmt.Errorf("the device registered as %s presents a certificate for %q", c.info.Peer, got)
	}
	if err := d.Move(conn, reg.Target().String()); err != nil {
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
