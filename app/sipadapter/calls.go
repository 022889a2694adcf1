package sipadapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/chordphone/chordphone/app/phone"
)

// bridge is one call between a user agent and the overlay, through a user's line: the UA's
// SIP dialog and RTP leg on one side, the line phone's call on the other.
type bridge struct {
	a   *Adapter
	l   *line
	leg *leg
	evs chan phone.Event // the line phone's events of this call

	mu      sync.Mutex
	id      string // the line phone's call id
	failure string // the code of the phone's error event, if any
	sipID   string // the UA dialog's Call-ID
}

func newBridge(a *Adapter, l *line, lg *leg) *bridge {
	return &bridge{a: a, l: l, leg: lg, evs: make(chan phone.Event, 64)}
}

func (b *bridge) callID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

func (b *bridge) setCallID(id string) {
	b.mu.Lock()
	b.id = id
	b.mu.Unlock()
}

func (b *bridge) setFailure(code string) {
	b.mu.Lock()
	b.failure = code
	b.mu.Unlock()
}

func (b *bridge) overlayEvent(e phone.Event) {
	select {
	case b.evs <- e:
	default:
		b.l.log.Warn("SIP adapter: call event dropped", "event", e.Kind)
	}
}

func (b *bridge) overlayEnded(reason string) {
	b.overlayEvent(phone.Event{Kind: phone.EventHangup, Reason: reason})
}

// end closes the leg and frees the line and the Call-ID.
func (b *bridge) end() {
	b.leg.Close()
	b.l.finish(b)
	b.mu.Lock()
	id := b.sipID
	b.mu.Unlock()
	b.a.forget(id, b)
}

// failureStatus is the SIP answer to a UA whose call ended unanswered (RFC 3261 §21).
func (b *bridge) failureStatus(reason string) (int, string) {
	b.mu.Lock()
	failure := b.failure
	b.mu.Unlock()
	switch {
	case reason == "busy":
		return 486, "Busy Here"
	case reason == "declined":
		return 603, "Decline"
	case reason == "cancelled":
		return 487, "Request Terminated"
	case failure == phone.CodeNotRegistered || reason == "not registered":
		return 404, "Not Found"
	case reason == "media failed":
		return 488, "Not Acceptable Here"
	}
	return 480, "Temporarily Unavailable"
}

// onInvite: a user agent calls a Chordphone user by name, or re-INVITEs in a call.
func (a *Adapter) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			a.onReinvite(req, tx)
			return
		}
	}
	user, ok := a.authenticate(req, tx)
	if !ok {
		return
	}
	var l *line
	var ph *phone.Phone
	if a.lines != nil {
		if l = a.lines.get(user); l != nil {
			ph = l.phone()
		}
	}
	if ph == nil {
		respond(tx, req, 480, "Temporarily Unavailable: register first")
		return
	}
	target := req.Recipient.User
	if target == "" && req.To() != nil {
		target = req.To().Address.User
	}
	if phone.ValidateUser(target) != nil {
		respond(tx, req, 404, "Not Found")
		return
	}
	lg, err := newLeg(a.mediaHost(), a.log)
	if err != nil {
		a.log.Error("SIP adapter: no RTP socket", "err", err)
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	if err := lg.setRemote(req.Body()); err != nil {
		lg.Close()
		a.log.Info("SIP adapter: unusable offer", "from", user, "err", err)
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	b := newBridge(a, l, lg)
	if !l.begin(b) {
		lg.Close()
		respond(tx, req, 486, "Busy Here")
		return
	}
	defer b.end()
	b.fromUA(req, tx, ph, target)
}

// fromUA runs a UA's call to target until it ends (the handler's goroutine is sipgo's).
func (b *bridge) fromUA(req *sip.Request, tx sip.ServerTransaction, ph *phone.Phone, target string) {
	a := b.a
	dlg, err := a.dsrv.ReadInvite(req, tx)
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	defer dlg.Close()
	b.remember(req.CallID().Value())
	_ = dlg.Respond(100, "Trying", nil)
	cancelled := make(chan struct{})
	var once sync.Once
	tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) })
	if err := ph.Call(a.lines.ctx, target); err != nil {
		code, reason := 480, "Temporarily Unavailable"
		if errors.Is(err, phone.ErrBusy) {
			code, reason = 486, "Busy Here"
		}
		_ = dlg.Respond(code, reason, nil)
		return
	}
	for {
		select {
		case <-cancelled:
			_ = ph.Hangup() // sipgo answered 487 (RFC 3261 §9.2)
			b.waitHangup()
			return
		case <-a.lines.ctx.Done():
			_ = ph.Hangup()
			_ = dlg.Respond(503, "Service Unavailable", nil)
			return
		case e := <-b.evs:
			switch e.Kind {
			case phone.EventRinging:
				_ = dlg.Respond(180, "Ringing", nil)
			case phone.EventHangup:
				code, reason := b.failureStatus(e.Reason)
				_ = dlg.Respond(code, reason, nil)
				return
			case phone.EventAnswered:
				body := b.leg.sdp(a.mediaHost(), b.leg.codec())
				if err := dlg.Respond(200, "OK", body, sip.NewHeader("Content-Type", "application/sdp")); err != nil {
					_ = ph.Hangup()
					return
				}
				b.answered(ph, dlg.Context().Done(), func(ctx context.Context) error { return dlg.Bye(ctx) })
				return
			}
		}
	}
}

// answered runs an answered call until either side hangs up: the UA (its dialog ends) or
// the overlay (the line phone's hangup).
func (b *bridge) answered(ph *phone.Phone, uaDone <-chan struct{}, bye func(context.Context) error) {
	b.leg.mu.Lock()
	b.leg.onDTMF = func(r rune) { _ = ph.SendDTMF(string(r)) } // RFC 4733 from the UA
	b.leg.mu.Unlock()
	for {
		select {
		case <-uaDone:
			_ = ph.Hangup()
			b.waitHangup()
			return
		case <-b.a.lines.ctx.Done():
			_ = ph.Hangup()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = bye(ctx)
			cancel()
			return
		case e := <-b.evs:
			if e.Kind == phone.EventHangup {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = bye(ctx)
				cancel()
				return
			}
		}
	}
}

// waitHangup waits (boundedly) for the line phone to end the call, so that the line is
// free when the bridge is.
func (b *bridge) waitHangup() {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case e := <-b.evs:
			if e.Kind == phone.EventHangup {
				return
			}
		case <-t.C:
			return
		}
	}
}

// ringUAs: a call to the line rings each registered UA of the user (RFC 3261 §16.7
// forking); the first to answer wins, the others are cancelled.
func (l *line) ringUAs(e phone.Event) {
	a := l.ls.a
	ph := l.phone()
	binds := a.reg.bindings(l.name)
	if ph == nil {
		return
	}
	lg, err := newLeg(a.mediaHost(), l.log)
	if err != nil {
		l.log.Error("SIP adapter: no RTP socket", "err", err)
		_ = ph.Decline()
		return
	}
	b := newBridge(a, l, lg)
	b.setCallID(e.CallID)
	if len(binds) == 0 || !l.begin(b) {
		lg.Close()
		_ = ph.Decline()
		return
	}
	l.ls.wg.Add(1)
	go func() { // owner: lines; ends when the call ends
		defer l.ls.wg.Done()
		defer b.end()
		b.toUAs(ph, binds, e.From)
	}()
}

type branchResult struct {
	s   *sipgo.DialogClientSession
	err error
}

// toUAs rings binds for a call from caller and bridges the first that answers.
func (b *bridge) toUAs(ph *phone.Phone, binds []binding, caller string) {
	a := b.a
	ctx, cancel := context.WithCancel(a.lines.ctx)
	defer cancel()
	offer := b.leg.sdp(a.mediaHost(), -1)
	results := make(chan branchResult, len(binds))
	for _, bd := range binds {
		go func() { // owner: toUAs; ends when the INVITE has an outcome (ctx cancels it)
			s, err := a.invite(ctx, bd, caller, b.l.name, offer)
			results <- branchResult{s, err}
		}()
	}
	var won *sipgo.DialogClientSession
	pending := len(binds)
	for won == nil && pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				won = r.s
			} else if r.s != nil {
				r.s.Close()
			}
		case e := <-b.evs:
			if e.Kind == phone.EventHangup { // the caller gave up: CANCEL every branch
				cancel()
			}
		}
	}
	b.l.ls.wg.Add(1)
	go func() { // owner: lines; ends when the cancelled branches have their outcome
		defer b.l.ls.wg.Done()
		drainBranches(results, pending)
	}()
	cancel() // RFC 3261 §16.7 step 10: CANCEL the rest
	if won == nil {
		_ = ph.Decline()
		return
	}
	defer won.Close()
	ackCtx, ackCancel := context.WithTimeout(a.lines.ctx, 5*time.Second)
	_ = won.Ack(ackCtx)
	ackCancel()
	if err := b.leg.setRemote(won.InviteResponse.Body()); err != nil {
		b.l.log.Info("SIP adapter: the phone's answer is unusable", "err", err)
		byeCtx, byeCancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = won.Bye(byeCtx)
		byeCancel()
		_ = ph.Decline()
		return
	}
	b.remember(won.InviteRequest.CallID().Value())
	if err := ph.Answer(); err != nil {
		byeCtx, byeCancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = won.Bye(byeCtx)
		byeCancel()
		return
	}
	b.answered(ph, won.Context().Done(), func(ctx context.Context) error { return won.Bye(ctx) })
}

// drainBranches hangs up branches that answered after another had won.
func drainBranches(results <-chan branchResult, pending int) {
	for ; pending > 0; pending-- {
		r := <-results
		if r.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = r.s.Ack(ctx)
			_ = r.s.Bye(ctx)
			cancel()
		}
		if r.s != nil {
			r.s.Close()
		}
	}
}

// invite sends one INVITE to a registered contact and waits for its final answer.
func (a *Adapter) invite(ctx context.Context, bd binding, caller, callee string, offer []byte) (*sipgo.DialogClientSession, error) {
	req := sip.NewRequest(sip.INVITE, bd.contact)
	if bd.transport != "" {
		req.SetTransport(bd.transport)
	}
	if bd.transport == "TCP" || bd.transport == "TLS" {
		// Over the connection the phone registered on (RFC 5626 §5.3 in spirit): a phone
		// behind NAT, or one with no TLS server certificate, listens on no port of its own.
		req.SetDestination(bd.source)
	}
	from := &sip.FromHeader{DisplayName: caller, Address: sip.Uri{Scheme: "sip", User: caller, Host: a.overlayName()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: callee, Host: a.overlayName()}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	s, err := a.dcli.WriteInvite(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("INVITE to %s: %w", bd.raw, err)
	}
	if err := s.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return s, fmt.Errorf("INVITE to %s: %w", bd.raw, err)
	}
	return s, nil
}

// onReinvite answers a re-INVITE in a bridged call: hold (sendonly, inactive) and resume
// (RFC 3264 §8.4) map to the line phone's Hold and Resume.
func (a *Adapter) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	b := a.bridgeOf(req.CallID().Value())
	if b == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if len(req.Body()) > 0 {
		if err := b.leg.setRemote(req.Body()); err != nil {
			respond(tx, req, 488, "Not Acceptable Here")
			return
		}
	}
	body := string(req.Body())
	hold := strings.Contains(body, "a=sendonly") || strings.Contains(body, "a=inactive")
	if ph := b.l.phone(); ph != nil {
		if hold {
			_ = ph.Hold()
		} else {
			_ = ph.Resume()
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", b.leg.sdp(a.mediaHost(), b.leg.codec()))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&sip.ContactHeader{Address: a.contact.Address})
	_ = tx.Respond(res)
}

func (a *Adapter) onAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = a.dsrv.ReadAck(req, tx)
}

func (a *Adapter) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := a.dsrv.ReadBye(req, tx); err == nil {
		return
	}
	if err := a.dcli.ReadBye(req, tx); err == nil {
		return
	}
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// onCancel: a CANCEL that matched no INVITE transaction (sipgo answers those itself).
func (a *Adapter) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// onInfo takes DTMF in SIP INFO (application/dtmf-relay "Signal=5", or
// application/dtmf "5") in a bridged call to the line phone (RFC 4733 on the overlay side).
func (a *Adapter) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	b := a.bridgeOf(req.CallID().Value())
	if b == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	digit, ok := infoDigit(req.Body())
	if !ok {
		respond(tx, req, 415, "Unsupported Media Type")
		return
	}
	if ph := b.l.phone(); ph != nil {
		_ = ph.SendDTMF(digit)
	}
	respond(tx, req, 200, "OK")
}

// remember indexes b by its UA dialog's Call-ID (re-INVITE, INFO).
func (b *bridge) remember(callID string) {
	b.mu.Lock()
	b.sipID = callID
	b.mu.Unlock()
	b.a.mu.Lock()
	b.a.bridges[callID] = b
	b.a.mu.Unlock()
}

func (a *Adapter) forget(callID string, b *bridge) {
	a.mu.Lock()
	if a.bridges[callID] == b {
		delete(a.bridges, callID)
	}
	a.mu.Unlock()
}

func (a *Adapter) bridgeOf(callID string) *bridge {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bridges[callID]
}

// infoDigit reads the digit of a SIP INFO body: application/dtmf-relay ("Signal=5\r\n
// Duration=160") or application/dtmf ("5").
func infoDigit(body []byte) (string, bool) {
	digit := ""
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Signal="); ok {
			digit = strings.TrimSpace(v)
		} else if len(line) == 1 {
			digit = line
		}
	}
	ok := len(digit) == 1 && strings.Contains("0123456789*#ABCDabcd", digit)
	return digit, ok
}
