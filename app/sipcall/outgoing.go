package sipcall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Response is a response to our INVITE as the caller sees it.
type Response struct {
	StatusCode int
	Reason     string
	SDP        []byte // the answer, for 2xx (and 183 with early media, if any)
}

// Outgoing is a call we make. Its Responses report progress; Wait gives the outcome.
type Outgoing struct {
	*Call

	invite    *sip.Request
	tx        sip.ClientTransaction
	responses chan Response
	finished  chan struct{} // closed when the INVITE transaction has its outcome
	cancelReq chan struct{} // closed by Cancel
	cancelOne sync.Once

	// outcome, valid once finished is closed
	answer []byte
	err    error
}

// Invite calls callee (a user name in our overlay) over conn, an AppAttach connection to
// the callee's phone that the Endpoint owns from now on (and closes when the call is over),
// with offerSDP. It returns once the INVITE is sent.
func (ep *Endpoint) Invite(ctx context.Context, conn net.Conn, callee string, offerSDP []byte) (*Outgoing, error) {
	return ep.InviteVia(ctx, conn, "", callee, offerSDP)
}

// InviteVia is Invite over a connection to peer (the callee device's Node-ID): once the call
// is answered, a connection that peer opens later (it reconnected after its address
// changed) may carry the dialog, as for incoming calls.
func (ep *Endpoint) InviteVia(ctx context.Context, conn net.Conn, peer, callee string, offerSDP []byte) (*Outgoing, error) {
	if err := validUser(callee); err != nil {
		return nil, fmt.Errorf("sipcall: callee: %w", err)
	}
	if len(offerSDP) == 0 {
		return nil, errors.New("sipcall: empty offer SDP")
	}
	sc, err := ep.attach(conn, peer, true)
	if err != nil {
		return nil, err
	}
	c := newCall(ep, sc)
	c.callID = newCallID()
	c.localTag = newTag()
	c.localURI = ep.aor
	c.localName = ep.set.User
	c.remoteURI = sip.Uri{Scheme: "sip", User: callee, Host: ep.set.Overlay}
	c.remoteTarget = c.remoteURI
	c.localSeq = 0 // newRequest makes the INVITE CSeq 1
	o := &Outgoing{
		Call:      c,
		responses: make(chan Response, 16),
		finished:  make(chan struct{}),
		cancelReq: make(chan struct{}),
	}
	c.out = o
	if !ep.register(c) {
		return nil, ErrClosed
	}
	o.invite = c.newRequest(sip.INVITE, offerSDP)
	tx, err := ep.cli.TransactionRequest(ctx, o.invite, asIs)
	if err != nil {
		c.end(EndReason{Cause: CauseConnectionLost, Err: err})
		return nil, fmt.Errorf("sipcall: INVITE: %w", err)
	}
	o.tx = tx
	if !ep.enter() {
		tx.Terminate()
		c.end(EndReason{Cause: CauseClosed})
		return nil, ErrClosed
	}
	ep.log.Info("outgoing call", "call_id", c.callID, "to", callee)
	go func() {
		defer ep.wg.Done()
		o.run()
	}()
	return o, nil
}

// Responses delivers the responses to the INVITE: provisional ones (100 Trying, 180 Ringing)
// in increasing order of code, then the final one; it is closed after the final one or when
// the call fails without one. A provisional response that arrives late (after a higher one
// or after the final one) is left out, and so may be provisional responses a slow reader
// does not take; the final one is always delivered.
func (o *Outgoing) Responses() <-chan Response { return o.responses }

// Wait waits for the outcome of the INVITE: the answer SDP of a 2xx (the ACK is already
// sent and the call is established), or an error: a *StatusError for a final error
// response (486 Busy Here, 603 Decline, 480 Temporarily Unavailable, 487 after Cancel), or
// why there was no response (EndReason says more).
func (o *Outgoing) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-o.finished:
		return o.answer, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Cancel cancels the call if it is not answered yet (RFC 3261 §9.1: CANCEL is sent once a
// provisional response has arrived); the callee answers 487 and the call ends with
// CauseCancelled. If the callee's 200 crosses the CANCEL, the call is hung up with BYE.
// Cancel does not wait; Done tells when the call is over.
func (o *Outgoing) Cancel() {
	o.cancelOne.Do(func() { close(o.cancelReq) })
}

func (o *Outgoing) deliver(r Response) {
	if r.StatusCode < 200 && len(o.responses) >= cap(o.responses)-1 {
		return // keep room for the final response
	}
	o.responses <- r
}

func (o *Outgoing) finish(answer []byte, err error) {
	o.answer, o.err = answer, err
	close(o.finished)
	close(o.responses)
}

// inviteClient is the state of one outgoing INVITE's client transaction (RFC 3261
// §17.1.1) and of its CANCEL (§9.1), which Outgoing.run follows to the end.
type inviteClient struct {
	o               *Outgoing
	retry           *resender // the INVITE until the first response (Timer A)
	provisional     bool      // a provisional response came: CANCEL may be sent
	lastProvisional int
	cancelled       bool // Cancel was asked for
	cancelSent      bool
	cancelTx        sip.ClientTransaction
	cancelRetry     *resender // the CANCEL until its final response (Timer E)
	cancelResC      <-chan *sip.Response
	cancelExpiry    <-chan time.Time
}

// run follows the INVITE client transaction to its end.
func (o *Outgoing) run() {
	c := o.Call
	ic := &inviteClient{o: o, retry: resend(c.connNow, o.invite)}
	defer ic.close()
	cancelAsked := o.cancelReq
	for {
		select {
		case res := <-ic.cancelResC:
			if !res.IsProvisional() {
				ic.cancelRetry.stop()
				ic.cancelResC = nil
			}
		case res, ok := <-o.tx.Responses():
			if !ok {
				continue
			}
			ic.retry.stop()
			if ic.response(res) {
				return
			}
		case <-cancelAsked:
			cancelAsked = nil
			ic.cancelled = true
			c.setReason(EndReason{Cause: CauseCancelled, Status: 487})
			if ic.provisional {
				ic.sendCancel()
			}
			ic.cancelExpiry = time.After(cancelTimeout)
		case <-ic.cancelExpiry:
			c.end(EndReason{Cause: CauseCancelled, Status: 487})
			o.finish(nil, &StatusError{Code: 487, Reason: "Request Terminated"})
			return
		case <-o.tx.Done():
			ic.noResponse()
			return
		case <-c.done:
			o.finish(nil, fmt.Errorf("sipcall: INVITE: %s", c.EndReason()))
			return
		}
	}
}

// close stops the retransmissions and ends both transactions.
func (ic *inviteClient) close() {
	ic.cancelRetry.stop()
	ic.retry.stop()
	if ic.cancelTx != nil {
		ic.cancelTx.Terminate()
	}
	ic.o.tx.Terminate()
}

// response takes one response to the INVITE; it reports whether it was the final one.
func (ic *inviteClient) response(res *sip.Response) bool {
	o, c := ic.o, ic.o.Call
	switch {
	case res.IsProvisional():
		ic.provisional = true
		if ic.cancelled && !ic.cancelSent {
			ic.sendCancel()
		}
		// sipgo hands each response to its own goroutine, so provisional responses may
		// arrive out of order: a 100 after a 180 is stale.
		if res.StatusCode >= ic.lastProvisional {
			ic.lastProvisional = res.StatusCode
			o.deliver(Response{StatusCode: res.StatusCode, Reason: res.Reason, SDP: res.Body()})
		}
		return false
	case res.IsSuccess():
		o.established(res)
		o.deliver(Response{StatusCode: res.StatusCode, Reason: res.Reason, SDP: res.Body()})
		if ic.cancelled {
			// The 200 crossed our CANCEL: take the call and hang up (RFC 3261 §9.1).
			c.setReason(EndReason{Cause: CauseCancelled, Status: 487})
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			_ = c.request(ctx, c.newRequest(sip.BYE, nil))
			cancel()
			c.end(EndReason{Cause: CauseCancelled, Status: 487})
			o.finish(nil, &StatusError{Code: 487, Reason: "Request Terminated"})
			return true
		}
		o.finish(res.Body(), nil)
		return true
	default:
		// The transaction layer has sent the ACK (RFC 3261 §17.1.1.3).
		o.deliver(Response{StatusCode: res.StatusCode, Reason: res.Reason})
		r := EndReason{Cause: CauseRejected, Status: res.StatusCode}
		if res.StatusCode == 487 && ic.cancelled {
			r.Cause = CauseCancelled
		}
		c.end(r)
		o.finish(nil, &StatusError{Code: res.StatusCode, Reason: res.Reason})
		return true
	}
}

// sendCancel sends the CANCEL (RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq
// number and top Via as the INVITE).
func (ic *inviteClient) sendCancel() {
	o, c := ic.o, ic.o.Call
	ic.cancelSent = true
	req := sip.NewRequest(sip.CANCEL, o.invite.Recipient)
	req.AppendHeader(sip.HeaderClone(o.invite.Via()))
	req.AppendHeader(sip.HeaderClone(o.invite.From()))
	req.AppendHeader(sip.HeaderClone(o.invite.To()))
	req.AppendHeader(sip.HeaderClone(o.invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: o.invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	req.SetBody(nil)
	c.ep.route(req, c.connNow())
	tx, err := c.ep.cli.TransactionRequest(context.Background(), req, asIs)
	if err != nil {
		c.ep.log.Warn("sending CANCEL failed", "call_id", c.callID, "err", err)
		return
	}
	ic.cancelTx, ic.cancelRetry, ic.cancelResC = tx, resend(c.connNow, req), tx.Responses()
}

// noResponse ends the call whose INVITE transaction ended without a final response.
func (ic *inviteClient) noResponse() {
	o, c := ic.o, ic.o.Call
	err := o.tx.Err()
	r := EndReason{Cause: CauseTimeout, Err: err}
	select {
	case <-c.connNow().dead:
		r = EndReason{Cause: CauseConnectionLost, Err: c.connNow().failErr}
	default:
		if errors.Is(err, sip.ErrTransactionTransport) {
			r = EndReason{Cause: CauseConnectionLost, Err: err}
		}
	}
	c.end(r)
	o.finish(nil, fmt.Errorf("sipcall: INVITE: %s: %w", c.EndReason(), errOr(err, errors.New("no response"))))
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// established confirms the dialog from a 2xx (RFC 3261 §12.1.2) and sends the ACK.
func (o *Outgoing) established(res *sip.Response) {
	c := o.Call
	tag, _ := res.To().Params.Get("tag")
	c.mu.Lock()
	c.remoteTag = tag
	if ct := res.Contact(); ct != nil && !ct.Address.Wildcard {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.state = stateConfirmed
	c.established = time.Now()
	c.mu.Unlock()
	c.sendAck(o.invite, res)
	c.ackOnce.Do(func() { close(c.ack) }) // our own ACK: nothing to wait for
}
