package phone

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/media/rtc"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Bounds of the search for a callee's registrations: "not registered" is asked again within
// notRegisteredFor before it is believed, so an unknown user is reported within about 2 s;
// a Fetch still on its way (a slow path, a busy peer, retransmissions) has lookupTimeout.
const (
	notRegisteredFor = 1800 * time.Millisecond
	lookupTimeout    = 8 * time.Second
)

// call is the phone's one call: its state machine (dialing -> ringing -> active <-> held ->
// ended, or incoming -> active/ended) and the SIP dialog and media session behind it.
type call struct {
	p      *Phone
	ctx    context.Context // ends when the call ends
	cancel context.CancelFunc

	// Guarded by p.mu.
	info     CallInfo
	dialog   *sipcall.Call
	in       *sipcall.Incoming
	branches []*branch
	won      *branch // the branch answered first; every other branch is cancelled
	media    *rtc.Session
	ended    bool
	// audioWarn is what is wrong with the call's sound devices, by direction ("capture",
	// "playback"); CallInfo.AudioWarning joins it.
	audioWarn map[string]string
	failure   string // why the call failed, as its error event said; for the history

	answer chan bool // incoming: true = answer, false = decline
}

// branch is one forked INVITE to one registered device (RFC 7904 §4.2, §5.1).
type branch struct {
	reg   storage.Registration
	cert  *x509.Certificate // the callee device's certificate
	out   *sipcall.Outgoing
	media *rtc.Session
}

// Call calls user by name: looks up the user's registrations, AppAttaches to each device and
// rings them all; the first to answer wins (RFC 7904 §4-§5).
func (p *Phone) Call(ctx context.Context, user string) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != Registered || p.ep == nil {
		if p.cfg.User == "" {
			return fmt.Errorf("cannot call %s: this peer has no user name (--user)", user)
		}
		return fmt.Errorf("cannot call %s: %w", user, ErrNotJoined)
	}
	if p.call != nil {
		return fmt.Errorf("cannot call %s: %w", user, ErrBusy)
	}
	c := p.newCall(user, Outgoing, CallDialing)
	p.spawn(func() { c.dial(user) })
	return nil
}

// newCall makes the current call; p.mu is held.
func (p *Phone) newCall(peerName string, dir Direction, st CallState) *call {
	ctx, cancel := context.WithCancel(p.runCtx)
	p.callSeq++
	c := &call{p: p, ctx: ctx, cancel: cancel, answer: make(chan bool, 1), info: CallInfo{
		ID: fmt.Sprintf("%d", p.callSeq), Peer: peerName, Direction: dir, State: st, Started: time.Now(),
	}}
	p.call = c
	return c
}

// spawn runs f on a goroutine that Run waits for.
func (p *Phone) spawn(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func (c *call) setState(st CallState) {
	c.p.mu.Lock()
	c.info.State = st
	if st == CallActive && c.info.Answered.IsZero() {
		c.info.Answered = time.Now()
	}
	c.p.mu.Unlock()
}

// dial is the caller's side, from lookup to the end of the call.
func (c *call) dial(user string) {
	p := c.p
	p.emit(Event{Kind: EventCalling, CallID: c.info.ID, Peer: user})
	regs, err := c.lookup(user)
	if err != nil {
		msg := fmt.Sprintf("%s is not registered in %s", user, p.peer.Overlay())
		reason, code := "not registered", CodeNotRegistered
		if !errors.Is(err, peer.ErrNotRegistered) {
			if c.ctx.Err() != nil {
				c.end("cancelled", nil)
				return
			}
			msg = fmt.Sprintf("cannot find %s in %s: %v", user, p.peer.Overlay(), err)
			reason, code = "lookup failed", CodeLookupFailed
		}
		c.fail(code, msg)
		c.end(reason, nil)
		return
	}

	// Ring every device at once; the first 2xx wins, the others are cancelled.
	type result struct {
		b      *branch
		answer []byte
		err    error
	}
	results := make(chan result, len(regs))
	var ringing sync.Once
	var wg sync.WaitGroup
	for _, reg := range regs {
		wg.Add(1)
		go func() { // owner: dial; ends when the branch has an outcome
			defer wg.Done()
			b, answer, err := c.branch(reg, func() {
				ringing.Do(func() {
					c.setState(CallRinging)
					p.emit(Event{Kind: EventRinging, CallID: c.info.ID, Peer: user})
				})
			})
			results <- result{b, answer, err}
		}()
	}
	var winner *branch
	var winAnswer []byte
	var failures []error
	pending := len(regs)
	for ; pending > 0 && winner == nil; pending-- {
		r := <-results
		if r.err != nil {
			failures = append(failures, r.err)
			continue
		}
		winner, winAnswer = r.b, r.answer
		c.p.mu.Lock()
		c.won = winner // a branch still sending its INVITE cancels itself (see branch)
		for _, b := range c.branches {
			if b != winner && b.out != nil {
				b.out.Cancel()
			}
		}
		c.p.mu.Unlock()
	}
	// The first answer wins at once; the other branches end in the background: cancelled,
	// or hung up if they answered too, and their media closed.
	p.spawn(func() {
		for ; pending > 0; pending-- {
			if r := <-results; r.err == nil {
				ctx, cancel := context.WithTimeout(p.runCtx, 5*time.Second)
				_ = r.b.out.Bye(ctx)
				cancel()
			}
		}
		wg.Wait()
		c.p.mu.Lock()
		for _, b := range c.branches {
			if b != winner && b.media != nil {
				b.media.Close()
			}
		}
		c.p.mu.Unlock()
	})
	if winner == nil {
		reason := failureReason(failures, c.ctx.Err() != nil)
		var local *localError
		switch {
		case reason == "media failed" && errors.As(errors.Join(failures...), &local):
			c.fail(CodeMediaFailed, fmt.Sprintf("cannot call %s: %v", user, local.err))
		case reason == "unreachable" && len(failures) > 0:
			// No device answered at the SIP level: say why the connections failed (e.g. a
			// certificate without the registered Node-ID, RFC 7904 §5.1).
			c.fail(CodeUnreachable, fmt.Sprintf("cannot reach %s: %v", user, errors.Join(failures...)))
		}
		c.end(reason, nil)
		return
	}
	if err := winner.media.SetAnswer(string(winAnswer)); err != nil {
		p.log.Warn("callee's answer SDP unusable", "err", err)
		ctx, cancel := context.WithTimeout(p.runCtx, 5*time.Second)
		_ = winner.out.Bye(ctx)
		cancel()
		c.fail(CodeMediaUnusable, fmt.Sprintf("%s answered with unusable media: %v", user, err))
		c.end("media failed", winner.media)
		return
	}
	c.p.mu.Lock()
	c.dialog, c.media = winner.out.Call, winner.media
	c.p.mu.Unlock()
	ringing.Do(func() { // the answer overtook the 180: still say it rang
		c.setState(CallRinging)
		p.emit(Event{Kind: EventRinging, CallID: c.info.ID, Peer: user})
	})
	p.checkPin(c, user, winner.cert)
	c.established()
}

// notRegisteredError says that nobody is registered under a name; it is peer.ErrNotRegistered.
type notRegisteredError struct{ user, overlay string }

func (e *notRegisteredError) Error() string {
	return fmt.Sprintf("%s is not registered in %s", e.user, e.overlay)
}

func (e *notRegisteredError) Unwrap() error { return peer.ErrNotRegistered }

// Lookup returns the Node-IDs of the devices registered for user (RFC 7904 §4.2), this one
// included.
func (p *Phone) Lookup(ctx context.Context, user string) ([]string, error) {
	if err := ValidateUser(user); err != nil {
		return nil, err
	}
	p.mu.Lock()
	pr := p.peer
	joined := p.state != NotJoined
	p.mu.Unlock()
	if pr == nil || !joined {
		return nil, ErrNotJoined
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	regs, err := pr.Lookup(ctx, user)
	if errors.Is(err, peer.ErrNotRegistered) {
		return nil, &notRegisteredError{user: user, overlay: pr.Overlay()}
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", user, err)
	}
	var out []string
	for _, r := range regs {
		out = append(out, r.Target().String())
	}
	return out, nil
}

// lookup finds user's registered devices other than this one. While the ring settles after
// joins a Fetch can reach a peer that does not hold the record yet, so "not registered" is
// asked again a few times within notRegisteredFor before it is believed.
func (c *call) lookup(user string) ([]storage.Registration, error) {
	ctx, cancel := context.WithTimeout(c.ctx, lookupTimeout)
	defer cancel()
	start, backoff := time.Now(), 150*time.Millisecond
	for {
		regs, err := c.p.peer.Lookup(ctx, user)
		if err == nil {
			if regs = withoutSelf(regs, c.p.peer.NodeID()); len(regs) > 0 {
				return regs, nil
			}
			err = peer.ErrNotRegistered
		}
		if !errors.Is(err, peer.ErrNotRegistered) || time.Since(start)+backoff > notRegisteredFor {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
			backoff *= 2
		}
	}
}

// branch makes one INVITE to one device: AppAttach, media offer, INVITE, and waits for the
// outcome. onRinging is called on 180.
func (c *call) branch(reg storage.Registration, onRinging func()) (*branch, []byte, error) {
	p := c.p
	b := &branch{reg: reg}
	conn, err := p.peer.AppAttach(c.ctx, reg)
	if err != nil {
		return b, nil, fmt.Errorf("connecting to %s: %w", reg.Target().String()[:8], err)
	}
	// The link layer checked that the certificate carries the Node-ID at the end of the
	// destination list (RFC 7904 §5.1); it must also be the callee's (RFC 7904 §3.3).
	b.cert = peer.PeerCertificate(conn)
	if got := peer.UserOf(b.cert); got != c.info.Peer {
		conn.Close()
		return b, nil, fmt.Errorf("the device registered as %s presents a certificate for %q", c.info.Peer, got)
	}
	m, err := p.newMedia(c)
	if err != nil {
		conn.Close()
		return b, nil, &localError{err}
	}
	b.media = m
	c.p.mu.Lock()
	if c.ended || c.ctx.Err() != nil || c.won != nil {
		c.p.mu.Unlock()
		conn.Close()
		m.Close()
		return b, nil, context.Canceled
	}
	c.branches = append(c.branches, b)
	c.p.mu.Unlock()
	offer, err := m.CreateOffer(c.ctx)
	if err != nil {
		conn.Close()
		return b, nil, fmt.Errorf("media offer: %w", err)
	}
	out, err := p.ep.Invite(c.ctx, conn, c.info.Peer, []byte(offer))
	if err != nil {
		return b, nil, err
	}
	c.p.mu.Lock()
	b.out = out
	// Another device answered while this INVITE was being sent: CANCEL it too (RFC 3261
	// §16.7 step 10 asks the same of a forking proxy).
	cancelled := c.ended || c.ctx.Err() != nil || c.won != nil && c.won != b
	c.p.mu.Unlock()
	if cancelled {
		out.Cancel()
	}
	go func() { // owner: branch; ends when Responses closes (after the final response)
		for r := range out.Responses() {
			if r.StatusCode == 180 || r.StatusCode == 183 {
				onRinging()
			}
		}
	}()
	stop := context.AfterFunc(c.ctx, out.Cancel)
	defer stop()
	answer, err := out.Wait(p.runCtx)
	return b, answer, err
}

func withoutSelf(regs []storage.Registration, self wire.NodeID) []storage.Registration {
	out := regs[:0]
	for _, r := range regs {
		if r.Target() != self {
			out = append(out, r)
		}
	}
	return out
}

// failureReason turns the branches' failures into the hangup reason: a person's decision
// (decline, busy) beats "no answer" beats a network failure.
func failureReason(errs []error, cancelled bool) string {
	if cancelled {
		return "cancelled"
	}
	best, rank := "unreachable", 0
	for _, err := range errs {
		var se *sipcall.StatusError
		var local *localError
		r, why := 1, "unreachable"
		if errors.As(err, &local) {
			r, why = 6, "media failed" // this phone's own trouble: the callee was never rung
		} else if errors.As(err, &se) {
			switch se.Code {
			case 603:
				r, why = 5, "declined"
			case 486, 600:
				r, why = 4, "busy"
			case 480, 408:
				r, why = 3, "no answer"
			case 487:
				r, why = 2, "cancelled"
			default:
				r, why = 2, fmt.Sprintf("rejected (%d)", se.Code)
			}
		}
		if r > rank {
			best, rank = why, r
		}
	}
	return best
}

// incoming is the callee's side of a call: it rings until answered, declined or cancelled.
func (p *Phone) incoming(in *sipcall.Incoming) {
	p.mu.Lock()
	if p.call != nil || p.runCtx.Err() != nil {
		p.mu.Unlock()
		_ = in.Reject(486) // Busy Here: one call at a time
		return
	}
	if err := sipcall.CheckSDP(in.OfferSDP); err != nil {
		p.mu.Unlock()
		p.log.Info("incoming call with unusable SDP", "from", in.From, "err", err)
		_ = in.Reject(488)
		return
	}
	cert := p.certs[in.Peer()]
	if got := peer.UserOf(cert); got != in.From {
		p.mu.Unlock()
		p.log.Warn("incoming call from a name its certificate does not carry", "from", in.From, "cert", got)
		_ = in.Reject(403)
		return
	}
	c := p.newCall(in.From, Incoming, CallIncoming)
	c.in, c.dialog = in, in.Call
	p.mu.Unlock()
	p.checkPin(c, in.From, cert)
	p.spawn(func() { c.ring() })
}

func (c *call) ring() {
	p, in := c.p, c.in
	_ = in.Ringing()
	p.emit(Event{Kind: EventIncoming, CallID: c.info.ID, From: in.From, Peer: in.From})
	if p.cfg.AutoAnswer {
		c.answer <- true
	}
	select {
	case ok := <-c.answer:
		if !ok {
			_ = in.Reject(603)
			c.end("declined", nil)
			return
		}
	case <-in.Cancelled():
		c.end("cancelled", nil)
		return
	case <-in.Done():
		c.end(in.EndReason().String(), nil)
		return
	case <-c.ctx.Done():
		_ = in.Reject(480)
		c.end("cancelled", nil)
		return
	}
	m, err := p.newMedia(c)
	if err != nil {
		_ = in.Reject(500)
		c.fail(CodeMediaFailed, err.Error())
		c.end("media failed", nil)
		return
	}
	answer, err := m.AcceptOffer(c.ctx, string(in.OfferSDP))
	if err != nil {
		_ = in.Reject(488)
		c.fail(CodeMediaUnusable, fmt.Sprintf("the caller's media offer is unusable: %v", err))
		c.end("media failed", m)
		return
	}
	c.p.mu.Lock()
	c.media = m
	c.p.mu.Unlock()
	if err := in.Answer(c.ctx, []byte(answer)); err != nil {
		c.end(endReason(in.Call, err), m)
		return
	}
	c.established()
}

func endReason(d *sipcall.Call, err error) string {
	select {
	case <-d.Done():
		return d.EndReason().String()
	default:
		return err.Error()
	}
}

// established runs an answered call until either side ends it.
func (c *call) established() {
	p := c.p
	c.setState(CallActive)
	c.p.mu.Lock()
	d, m := c.dialog, c.media
	setup := time.Since(c.info.Started).Milliseconds()
	c.p.mu.Unlock()
	d.OnReinvite(func(offer []byte) ([]byte, error) {
		ans, err := m.AcceptOffer(c.ctx, string(offer))
		if err != nil {
			return nil, &sipcall.StatusError{Code: 488, Reason: "Not Acceptable Here"}
		}
		return []byte(ans), nil
	})
	p.emit(Event{Kind: EventAnswered, CallID: c.info.ID, Peer: c.info.Peer, SetupMs: &setup})
	c.run(d, m)
}

// end finishes the call once: closes media and audio, records history, reports hangup.
func (c *call) end(reason string, m *rtc.Session) {
	p := c.p
	p.mu.Lock()
	if c.ended {
		p.mu.Unlock()
		return
	}
	c.ended = true
	c.info.State = CallEnded
	info := c.info
	if p.call == c {
		p.call = nil
	}
	p.mu.Unlock()
	c.cancel()

	stats := &RTPStats{}
	if m != nil {
		stats = rtpStats(m.Stats(), info.Answered)
		m.Close()
	}
	p.closeAudio()
	p.mu.Lock()
	failure := c.failure
	p.mu.Unlock()
	p.record(info, historyReason(!info.Answered.IsZero(), reason, failure))
	p.emit(Event{Kind: EventHangup, CallID: info.ID, Peer: info.Peer, Reason: reason, RTP: stats})
}

// fail reports why the call failed (an error event) and keeps it for the history.
func (c *call) fail(code, msg string) {
	c.p.mu.Lock()
	c.failure = msg
	c.p.mu.Unlock()
	c.p.emit(Event{Kind: EventError, Code: code, CallID: c.info.ID, Message: msg})
}

// localError is a branch's failure that is this phone's own (its media could not start):
// the callee was never rung.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// historyReason is what the history says happened to a call: how an answered call ended,
// who ended an unanswered one, or why it failed ("failed: <why>"), never "no answer" for a
// call that could not ring.
func historyReason(answered bool, reason, failure string) string {
	switch reason {
	case "local hangup", "hangup", "remote hangup", "declined", "busy", "no answer", "cancelled":
		return reason
	}
	switch {
	case answered:
		return reason // "media connection lost", "connection lost", ...
	case failure != "":
		return "failed: " + failure
	case reason == "":
		return "failed"
	}
	return "failed: " + reason
}

// checkPin remembers the first key seen for user and warns plainly when it changes: in a
// self-signed overlay anybody can claim a name (issue: trust on first use).
func (p *Phone) checkPin(c *call, user string, cert *x509.Certificate) {
	if cert == nil || p.pins == nil {
		return
	}
	changed, old, err := p.pins.Check(user, cert)
	if err != nil {
		p.log.Warn("checking the pinned key", "user", user, "err", err)
		return
	}
	if changed {
		p.emit(Event{Kind: EventError, Code: CodePinnedKeyChanged, CallID: c.info.ID, Peer: user, Message: identity.PinWarning(user, old, cert)})
		return
	}
	if ct, err := p.store.ContactByUser(user); err == nil && ct.Fingerprint == "" {
		ct.Fingerprint = identity.FormatFingerprint(identity.KeyFingerprint(cert))
		if err := p.store.UpdateContact(ct); err != nil {
			p.log.Warn("saving the contact's key", "user", user, "err", err)
		}
	}
}

// rtpStats summarises media statistics; the bitrate is averaged since the answer.
func rtpStats(s rtc.Stats, answered time.Time) *RTPStats {
	r := &RTPStats{Sent: s.PacketsSent, Received: s.PacketsReceived, Lost: s.PacketsLost,
		JitterMs: s.JitterMs, RTTMs: s.RTTMs, Codec: s.Codec, Relayed: s.Relayed}
	if secs := time.Since(answered).Seconds(); !answered.IsZero() && secs > 0 {
		r.BitrateKbps = float64(s.BytesSent) * 8 / 1000 / secs
	}
	return r
}

// record adds the call to the history with what happened to it (historyReason).
func (p *Phone) record(info CallInfo, reason string) {
	if p.store == nil {
		return
	}
	e := store.HistoryEntry{Peer: info.Peer, Start: info.Started, Reason: reason}
	if p.peer != nil {
		e.AoR = "sip:" + p.peer.AoR(info.Peer)
	}
	switch {
	case info.Direction == Outgoing:
		e.Direction = store.Outgoing
	case info.Answered.IsZero() && reason != "declined":
		e.Direction = store.Missed
	default:
		e.Direction = store.Incoming
	}
	if !info.Answered.IsZero() {
		e.Duration = time.Since(info.Answered).Round(time.Second)
	}
	if _, err := p.store.AddHistory(e); err != nil {
		p.log.Warn("recording the call in the history", "err", err)
	}
}

// Answer answers the ringing incoming call.
func (p *Phone) Answer() error { return p.decide(true) }

// Decline declines the ringing incoming call (603 Decline).
func (p *Phone) Decline() error { return p.decide(false) }

func (p *Phone) decide(answer bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.call
	if c == nil || c.info.State != CallIncoming {
		return ErrNotRinging
	}
	select {
	case c.answer <- answer:
		return nil
	default:
		return errors.New("the call is already being answered")
	}
}

// Hangup ends the current call, whatever its state: cancels a call that rings, declines an
// incoming one, says BYE to an answered one.
func (p *Phone) Hangup() error {
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c == nil {
		return ErrNoCall
	}
	if c.info.Direction == Incoming && c.info.State == CallIncoming {
		return p.Decline()
	}
	c.cancel()
	return nil
}

// Hold puts the current call on hold (re-INVITE with sendonly, RFC 3264 §8.4).
func (p *Phone) Hold() error { return p.hold(true) }

// Resume takes the current call off hold.
func (p *Phone) Resume() error { return p.hold(false) }

func (p *Phone) hold(on bool) error {
	p.mu.Lock()
	c := p.call
	if c == nil || (c.info.State != CallActive && c.info.State != CallHeld) {
		p.mu.Unlock()
		return ErrNoCall
	}
	if on == (c.info.State == CallHeld) {
		p.mu.Unlock()
		return nil
	}
	m, d := c.media, c.dialog
	p.mu.Unlock()
	m.SetHold(on)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	offer, err := m.CreateOffer(ctx)
	if err == nil {
		var answer []byte
		if answer, err = d.Reinvite(ctx, []byte(offer)); err == nil {
			err = m.SetAnswer(string(answer))
		}
	}
	if err != nil {
		m.SetHold(!on)
		return fmt.Errorf("re-INVITE: %w", err)
	}
	if on {
		c.setState(CallHeld)
		p.emit(Event{Kind: EventHeld, CallID: c.info.ID})
	} else {
		c.setState(CallActive)
		p.emit(Event{Kind: EventResumed, CallID: c.info.ID})
	}
	return nil
}

// SetMute mutes or unmutes the microphone in the current call.
func (p *Phone) SetMute(mute bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.call
	if c == nil || c.media == nil {
		return ErrNoCall
	}
	c.media.SetMute(mute)
	c.info.Muted = mute
	return nil
}

// SendDTMF sends digits (0-9, *, #, A-D) in the current call (RFC 4733).
func (p *Phone) SendDTMF(digits string) error {
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", r) {
			return fmt.Errorf("invalid DTMF digit %q", r)
		}
	}
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c == nil || c.media == nil {
		return ErrNoCall
	}
	return c.media.SendDTMF(strings.ToUpper(digits))
}

// newMedia makes a media session on the phone's audio devices or files.
func (p *Phone) newMedia(c *call) (*rtc.Session, error) {
	src, sink, proc, err := p.openAudio(c)
	if err != nil {
		return nil, err
	}
	cfg := rtc.SessionConfig{Source: src, Sink: sink, Logger: p.log.With("layer", "media"),
		DisconnectedTimeout: mediaSilenceLimit}
	if proc != nil {
		cfg.Processor = proc
	}
	if ap, err := netip.ParseAddrPort(p.cfg.Listen); err == nil && ap.Addr().IsLoopback() {
		cfg.LoopbackOnly = true
	}
	if pr := p.peer; pr != nil { // STUN and the overlay's TURN relays (RFC 6940 §9)
		for _, s := range pr.ICEServers() {
			cfg.ICEServers = append(cfg.ICEServers, rtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	m, err := rtc.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting media: %w", err)
	}
	return m, nil
}
