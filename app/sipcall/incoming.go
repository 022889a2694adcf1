package sipcall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Incoming is a call someone makes to us. It rings until Answer or Reject, the caller's
// CANCEL, or the ring timeout (480).
type Incoming struct {
	*Call
	// From is the caller's user name (the user part of the From AoR).
	From string
	// FromURI is the caller's AoR as sent, e.g. sip:alice@overlay.
	FromURI string
	// OfferSDP is the caller's SDP offer (never empty; Content-Type application/sdp).
	OfferSDP []byte

	invite    *sip.Request // the INVITE with our To tag added: every response is built from it
	tx        sip.ServerTransaction
	final     chan struct{} // closed when the final response has been handed to the transaction
	finalOnce sync.Once
	cancelled chan struct{}
	claimed   int           // the final status code chosen, 0 while ringing; guarded by Call.mu
	finalRes  *sip.Response // the final error response, for retransmission; guarded by Call.mu
	lastRes   *sip.Response // the final response, 2xx or not; guarded by Call.mu
}

// incomingFor finds the incoming call a new INVITE duplicates (same Call-ID and From tag).
func (ep *Endpoint) incomingFor(callID, fromTag string) *Incoming {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, c := range ep.dialogs {
		if c.in != nil && c.callID == callID && c.remoteTag == fromTag {
			return c.in
		}
	}
	return nil
}

// Cancelled is closed when the caller cancels the call (CANCEL; the Endpoint has answered
// 487 Request Terminated, RFC 3261 §9.2).
func (in *Incoming) Cancelled() <-chan struct{} { return in.cancelled }

// claim picks the final response code; false if one was picked already.
func (in *Incoming) claim(code int) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.claimed != 0 {
		return false
	}
	in.claimed = code
	if code >= 200 && code < 300 {
		in.state = stateConfirmed
		in.established = time.Now()
	}
	return true
}

// sent marks the final response as handed to the transaction: the INVITE handler may return.
func (in *Incoming) sent() { in.finalOnce.Do(func() { close(in.final) }) }

// finalize sends a final error response unless one was chosen already.
func (in *Incoming) finalize(code int, reason string, body []byte, hdrs ...sip.Header) bool {
	if !in.claim(code) {
		return false
	}
	res := sip.NewResponseFromRequest(in.invite, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	in.mu.Lock()
	in.finalRes, in.lastRes = res, res
	in.mu.Unlock()
	if err := in.tx.Respond(res); err != nil {
		in.ep.log.Warn("sending final response failed", "call_id", in.callID, "code", code, "err", err)
	}
	in.sent()
	return true
}

// Ringing sends 180 Ringing.
func (in *Incoming) Ringing() error {
	in.mu.Lock()
	claimed := in.claimed
	in.mu.Unlock()
	if claimed != 0 {
		return ErrAnswered
	}
	if in.ended() {
		return ErrCallEnded
	}
	if err := in.tx.Respond(sip.NewResponseFromRequest(in.invite, 180, "Ringing", nil)); err != nil {
		return fmt.Errorf("sipcall: 180 Ringing: %w", err)
	}
	return nil
}

// Reject refuses the call with a final status: 486 Busy Here, 603 Decline, 480 Temporarily
// Unavailable, 488 Not Acceptable Here (an unusable offer), or any other 3xx-6xx code.
func (in *Incoming) Reject(code int) error {
	if code < 300 || code > 699 {
		return fmt.Errorf("sipcall: %d is not a final error status", code)
	}
	if in.ended() {
		return ErrCallEnded
	}
	var hdrs []sip.Header
	if code == 488 {
		hdrs = append(hdrs, sip.NewHeader("Warning", `304 chordphone "Media type not available"`))
	}
	in.mu.Lock()
	claimed := in.claimed
	in.mu.Unlock()
	if claimed != 0 {
		return ErrAnswered
	}
	// Set before the response goes out (the caller closes the connection once it has it).
	in.setReason(EndReason{Cause: CauseRejected, Status: code})
	if !in.finalize(code, statusText(code), nil, hdrs...) {
		return ErrAnswered
	}
	in.end(EndReason{Cause: CauseRejected, Status: code})
	return nil
}

// Answer accepts the call with answerSDP (200 OK) and waits for the caller's ACK (RFC 3261
// §13.3.1.4) or ctx. Without an ACK within 64*T1 it hangs up (BYE) and the call ends with
// CauseTimeout. If ctx ends first, Answer returns its error and the call goes on.
func (in *Incoming) Answer(ctx context.Context, answerSDP []byte) error {
	if len(answerSDP) == 0 {
		return errors.New("sipcall: empty answer SDP")
	}
	if in.ended() {
		return ErrCallEnded
	}
	res := sip.NewResponseFromRequest(in.invite, 200, "OK", answerSDP)
	res.AppendHeader(in.ep.contact())
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if !in.claim(200) {
		return ErrAnswered
	}
	in.mu.Lock()
	in.lastRes = res
	in.mu.Unlock()
	err := in.tx.Respond(res)
	in.sent()
	if err != nil {
		in.end(EndReason{Cause: CauseConnectionLost, Err: err})
		return fmt.Errorf("sipcall: 200 OK: %w", err)
	}
	ok, err := in.awaitAck(ctx, in.invite.CSeq().SeqNo, res)
	switch {
	case ok:
		return nil
	case errors.Is(err, ErrCallEnded):
		return fmt.Errorf("%w: %s", ErrCallEnded, in.EndReason())
	case err != nil:
		return err
	default:
		in.setReason(EndReason{Cause: CauseTimeout, Err: errors.New("no ACK")})
		bctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		_ = in.request(bctx, in.newRequest(sip.BYE, nil))
		in.end(EndReason{Cause: CauseTimeout})
		return errors.New("sipcall: no ACK for 200 OK; call ended")
	}
}

// handleNewInvite starts an incoming call (RFC 3261 §8.2, §13.3).
func (ep *Endpoint) handleNewInvite(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, hdrs ...sip.Header) {
		res := sip.NewResponseFromRequest(req, code, statusText(code), nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		_ = tx.Respond(res)
	}
	user, fromTag, code, why := ep.checkInvite(req)
	if code != 0 {
		respond(code, why)
		return
	}
	// A retransmission of an INVITE whose transaction is over (its first responses were
	// lost) gets the final response again instead of becoming a second call.
	if dup := ep.incomingFor(req.CallID().Value(), fromTag); dup != nil {
		dup.mu.Lock()
		res := dup.lastRes
		dup.mu.Unlock()
		if res != nil {
			sc.resend(res)
		}
		return
	}
	in := ep.newIncoming(sc, req, tx, user, fromTag)
	if !ep.register(in.Call) {
		respond(480)
		return
	}
	if !tx.OnCancel(func(*sip.Request) {
		// The transaction layer has answered the CANCEL with 200 and the INVITE with 487.
		if in.claim(487) {
			in.mu.Lock()
			in.finalRes = sip.NewResponseFromRequest(in.invite, 487, "Request Terminated", nil)
			in.mu.Unlock()
		}
		in.sent()
		close(in.cancelled)
		in.end(EndReason{Cause: CauseCancelled, Status: 487})
	}) {
		in.end(EndReason{Cause: CauseCancelled, Status: 487})
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(in.invite, 100, "Trying", nil))
	ep.log.Info("incoming call", "call_id", in.callID, "from", user, "peer", sc.peer)
	in.ring()
}

// checkInvite checks a new INVITE (RFC 3261 §8.2) and returns the caller's user name and
// From tag, or the status code and header (a Warning, an Accept) to refuse it with.
func (ep *Endpoint) checkInvite(req *sip.Request) (user, fromTag string, code int, why sip.Header) {
	// RFC 3261 §8.2.2.1: we accept requests for our own AoR only.
	if req.Recipient.User != ep.set.User || !strings.EqualFold(req.Recipient.Host, ep.set.Overlay) {
		return "", "", 404, warning("this phone serves " + ep.aor.String())
	}
	fromTag, _ = req.From().Params.Get("tag")
	user, err := userOf(req.From().Address)
	if err != nil || fromTag == "" {
		return "", "", 400, warning("From must carry a user name and a tag")
	}
	if len(req.Body()) == 0 {
		return "", "", 488, warning("an SDP offer is required") // offer-less INVITEs are not supported
	}
	if !isSDP(req) {
		return "", "", 415, sip.NewHeader("Accept", "application/sdp") // RFC 3261 §21.4.13
	}
	return user, fromTag, 0, nil
}

// newIncoming makes the dialog of an incoming INVITE (RFC 3261 §12.1.1).
func (ep *Endpoint) newIncoming(sc *sipConn, req *sip.Request, tx sip.ServerTransaction, user, fromTag string) *Incoming {
	c := newCall(ep, sc)
	c.callID = req.CallID().Value()
	c.localTag = newTag()
	c.localURI = ep.aor
	c.localName = ep.set.User
	c.remoteURI = *req.From().Address.Clone()
	c.remoteTag = fromTag
	c.remoteTarget = c.remoteURI
	if ct := req.Contact(); ct != nil && !ct.Address.Wildcard {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.remoteSeq = req.CSeq().SeqNo
	c.localSeq = 1
	invite := req.Clone()
	invite.To().Params.Add("tag", c.localTag)
	in := &Incoming{
		Call: c, From: user, FromURI: req.From().Address.String(), OfferSDP: req.Body(),
		invite: invite, tx: tx,
		final: make(chan struct{}), cancelled: make(chan struct{}),
	}
	c.in = in
	return in
}

// ring hands the call to the Endpoint's handler and waits for its final response; without
// a handler, or after RingTimeout, the call gets 480. Then it keeps an error response
// going until its ACK.
func (in *Incoming) ring() {
	ep := in.ep
	ep.mu.Lock()
	handler := ep.onInvite
	ep.mu.Unlock()
	if handler == nil {
		if in.finalize(480, statusText(480), nil) {
			in.end(EndReason{Cause: CauseRejected, Status: 480})
		}
		in.awaitErrorAck()
		return
	}
	if ep.enter() {
		go func() {
			defer ep.wg.Done()
			handler(in)
		}()
	}
	ring := time.NewTimer(ep.set.RingTimeout)
	defer ring.Stop()
	select {
	case <-in.final:
	case <-in.done:
	case <-ep.done:
	case <-ring.C:
		in.mu.Lock()
		ringing := in.claimed == 0
		in.mu.Unlock()
		if ringing {
			in.setReason(EndReason{Cause: CauseRingTimeout, Status: 480})
		}
		if in.finalize(480, statusText(480), nil) {
			in.end(EndReason{Cause: CauseRingTimeout, Status: 480})
		}
	}
	in.awaitErrorAck()
}

// awaitErrorAck retransmits a final error response until the caller's ACK ends the INVITE
// transaction (RFC 3261 §17.2.1 Timer G; Timer H bounds it). It keeps the transaction (and
// so this handler) alive until then.
func (in *Incoming) awaitErrorAck() {
	in.mu.Lock()
	res := in.finalRes
	in.mu.Unlock()
	if res == nil {
		return
	}
	retry := resend(in.connNow, res)
	defer retry.stop()
	select {
	case <-in.tx.Done():
	case <-in.connNow().dead:
	case <-in.ep.done:
	}
}

// validUser checks a user name as the phone does: 1-64 of letters, digits and -_.!~*'+.
func validUser(name string) error {
	if name == "" {
		return errors.New("empty user name")
	}
	if len(name) > 64 {
		return fmt.Errorf("user name %q is longer than 64 characters", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.!~*'+", r)
		if !ok {
			return fmt.Errorf("user name %q may hold only letters, digits and -_.!~*'+", name)
		}
	}
	return nil
}

// userOf extracts the user name from a SIP AoR (sip:USER@OVERLAY).
func userOf(u sip.Uri) (string, error) {
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return "", fmt.Errorf("not a SIP URI: scheme %q", u.Scheme)
	}
	if err := validUser(u.User); err != nil {
		return "", err
	}
	return u.User, nil
}
