package phone

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/media/rtc"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

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

// dial is the caller's side, from lookup to the end of the call.
func (c *call) dial(user string) {
	c.p.emit(Event{Kind: EventCalling, CallID: c.info.ID, Peer: user})
	regs, err := c.lookup(user)
	if err != nil {
		c.lookupFailed(user, err)
		return
	}
	rang := c.ringingOnce(user)
	winner, answer, failures := c.ringAll(regs, rang)
	if winner == nil {
		c.nobodyAnswered(user, failures)
		return
	}
	if err := winner.media.SetAnswer(string(answer)); err != nil {
		c.p.log.Warn("callee's answer SDP unusable", "err", err)
		c.byeBranch(winner)
		c.fail(CodeMediaUnusable, fmt.Sprintf("%s answered with unusable media: %v", user, err))
		c.end("media failed", winner.media)
		return
	}
	c.p.mu.Lock()
	c.dialog, c.media = winner.out.Call, winner.media
	c.p.mu.Unlock()
	rang() // the answer overtook the 180: still say it rang
	c.p.checkPin(c, user, winner.cert)
	c.established()
}

// lookupFailed ends a call whose callee could not be found.
func (c *call) lookupFailed(user string, err error) {
	p := c.p
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
}

// ringingOnce returns what reports the call as ringing, the first time it is called.
func (c *call) ringingOnce(user string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.setState(CallRinging)
			c.p.emit(Event{Kind: EventRinging, CallID: c.info.ID, Peer: user})
		})
	}
}

// branchResult is the outcome of one branch: its answer SDP or why it failed.
type branchResult struct {
	b      *branch
	answer []byte
	err    error
}

// ringAll rings every device at once; the first 2xx wins, the others are cancelled. It
// returns the winner and its answer, or no winner and every branch's failure.
func (c *call) ringAll(regs []storage.Registration, onRinging func()) (*branch, []byte, []error) {
	results := make(chan branchResult, len(regs))
	var wg sync.WaitGroup
	for _, reg := range regs {
		wg.Add(1)
		go func() { // owner: dial; ends when the branch has an outcome
			defer wg.Done()
			b, answer, err := c.branch(reg, onRinging)
			results <- branchResult{b, answer, err}
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
	c.p.spawn(func() { c.endLosers(winner, results, pending, &wg) })
	return winner, winAnswer, failures
}

// endLosers ends the branches that did not win, in the background: cancelled, or hung up if
// they answered too, and their media closed.
func (c *call) endLosers(winner *branch, results <-chan branchResult, pending int, wg *sync.WaitGroup) {
	for ; pending > 0; pending-- {
		if r := <-results; r.err == nil {
			c.byeBranch(r.b)
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
}

// byeBranch hangs up an answered branch (bounded).
func (c *call) byeBranch(b *branch) {
	ctx, cancel := context.WithTimeout(c.p.runCtx, 5*time.Second)
	_ = b.out.Bye(ctx)
	cancel()
}

// nobodyAnswered ends a call no branch answered, saying why.
func (c *call) nobodyAnswered(user string, failures []error) {
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
	out, err := p.ep.InviteVia(c.ctx, conn, reg.Target().String(), c.info.Peer, []byte(offer))
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

// localError is a branch's failure that is this phone's own (its media could not start):
// the callee was never rung.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }
