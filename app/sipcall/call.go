package sipcall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Cause says why a call ended.
type Cause int

// Causes.
const (
	CauseNone           Cause = iota
	CauseLocalHangup          // we sent BYE
	CauseRemoteHangup         // the peer sent BYE
	CauseRejected             // the INVITE got a final error response (EndReason.Status)
	CauseCancelled            // the caller cancelled before the answer (487)
	CauseRingTimeout          // nobody answered within RingTimeout (480 sent)
	CauseTimeout              // a transaction or the ACK timed out
	CauseConnectionLost       // the connection died or stopped answering keepalives
	CauseClosed               // the Endpoint was closed
)

// EndReason says why and how a call ended.
type EndReason struct {
	Cause  Cause
	Status int   // the final SIP status for CauseRejected, CauseCancelled, CauseRingTimeout
	Err    error // the underlying error, if any
}

// String is the reason as the phone reports it.
func (r EndReason) String() string {
	switch r.Cause {
	case CauseNone:
		return ""
	case CauseLocalHangup:
		return "hangup"
	case CauseRemoteHangup:
		return "remote hangup"
	case CauseRejected:
		switch r.Status {
		case 486:
			return "busy"
		case 603:
			return "declined"
		case 480:
			return "no answer"
		}
		return fmt.Sprintf("rejected (%d %s)", r.Status, statusText(r.Status))
	case CauseCancelled:
		return "cancelled"
	case CauseRingTimeout:
		return "no answer"
	case CauseTimeout:
		return "timeout"
	case CauseConnectionLost:
		return "connection lost"
	case CauseClosed:
		return "closed"
	}
	return "unknown"
}

// StatusError is a final SIP error response to one of our requests.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("sipcall: %d %s", e.Code, e.Reason) }

// Errors.
var (
	ErrCallEnded      = errors.New("sipcall: call has ended")
	ErrNotEstablished = errors.New("sipcall: call is not answered")
	ErrPending        = errors.New("sipcall: another re-INVITE is in progress")
	ErrAnswered       = errors.New("sipcall: call already answered or rejected")
)

type dialogState int

const (
	stateEarly     dialogState = iota // INVITE sent/received, no 2xx yet
	stateConfirmed                    // 2xx sent or received
)

// Call is one INVITE dialog (RFC 3261 §12), the part outgoing and incoming calls share.
type Call struct {
	ep   *Endpoint
	conn *sipConn
	in   *Incoming // set for incoming calls
	out  *Outgoing // set for outgoing calls

	callID       string
	localTag     string
	localURI     sip.Uri
	localName    string
	remoteURI    sip.Uri
	remoteTarget sip.Uri // the peer's Contact: the Request-URI of in-dialog requests

	mu          sync.Mutex
	remoteTag   string
	state       dialogState
	localSeq    uint32
	remoteSeq   uint32 // 0: none yet
	reinviting  bool   // a re-INVITE either way is in progress (RFC 3261 §14)
	onReinvite  func(offer []byte) ([]byte, error)
	ack         chan struct{} // closed when the first ACK (or a BYE implying it) arrives
	ackOnce     sync.Once
	lastAck     uint32        // highest CSeq acknowledged by the peer
	ackBcast    chan struct{} // closed and replaced on every ACK
	reason      EndReason
	done        chan struct{}
	endOnce     sync.Once
	established time.Time
	onLost      func(error) // see OnConnectionLost
}

// connNow is the connection the dialog runs over now (Move and a re-INVITE from the same
// peer on another connection change it).
func (c *Call) connNow() *sipConn {
	c.ep.mu.Lock()
	defer c.ep.mu.Unlock()
	return c.conn
}

// OnConnectionLost sets the function called (on its own goroutine) when the connection of
// an answered call dies while Settings.Reconnect is set: the call then waits that long to
// be moved to a new connection (Move here, or the peer's re-INVITE on a new connection
// there) before it ends with CauseConnectionLost.
func (c *Call) OnConnectionLost(f func(err error)) {
	c.mu.Lock()
	c.onLost = f
	c.mu.Unlock()
}

// Move carries the dialog over conn from now on: a new AppAttach connection to the same
// peer (peer is its Node-ID, as for Serve) after the old one died or its address changed.
// Send a re-INVITE over it next (with an ICE restart offer) so the peer moves too.
func (c *Call) Move(conn net.Conn, peer string) error {
	if c.ended() {
		return ErrCallEnded
	}
	sc, err := c.ep.attach(conn, peer, true)
	if err != nil {
		return fmt.Errorf("sipcall: moving the call: %w", err)
	}
	c.ep.move(c, sc)
	return nil
}

func newCall(ep *Endpoint, sc *sipConn) *Call {
	return &Call{ep: ep, conn: sc, done: make(chan struct{}), ack: make(chan struct{}), ackBcast: make(chan struct{})}
}

// CallID returns the dialog's Call-ID.
func (c *Call) CallID() string { return c.callID }

// Peer returns the Node-ID of the peer the connection goes to, as given to Serve, InviteVia
// or Move ("" for calls from Invite).
func (c *Call) Peer() string { return c.connNow().peer }

// Answered returns when the call was answered (the 2xx sent or received); zero if never.
func (c *Call) Answered() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.established
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndReason says why the call ended; zero until Done is closed.
func (c *Call) EndReason() EndReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return c.reason
	default:
		return EndReason{}
	}
}

// OnReinvite sets the function that answers the peer's re-INVITEs (hold, resume; RFC 3261
// §14.2): it gets the offer SDP and returns the answer SDP, or an error (a *StatusError picks
// the response code; any other error gives 488 Not Acceptable Here). Without it re-INVITEs
// get 488.
func (c *Call) OnReinvite(f func(offer []byte) (answer []byte, err error)) {
	c.mu.Lock()
	c.onReinvite = f
	c.mu.Unlock()
}

// setReason records why the call ends; the first reason wins.
func (c *Call) setReason(r EndReason) {
	c.mu.Lock()
	if c.reason.Cause == CauseNone {
		c.reason = r
	}
	c.mu.Unlock()
}

// end ends the call with r (unless it already has a reason) and forgets the dialog.
func (c *Call) end(r EndReason) {
	c.setReason(r)
	c.endOnce.Do(func() {
		c.mu.Lock()
		close(c.done)
		reason := c.reason
		c.mu.Unlock()
		c.ep.unregister(c)
		c.ep.log.Info("call ended", "call_id", c.callID, "reason", reason.String(), "status", reason.Status)
	})
}

func (c *Call) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1) routed over the call's
// connection.
func (c *Call) newRequest(method sip.RequestMethod, sdp []byte) *sip.Request {
	c.mu.Lock()
	if method != sip.ACK && method != sip.CANCEL {
		c.localSeq++
	}
	seq := c.localSeq
	remoteTag := c.remoteTag
	c.mu.Unlock()
	conn := c.connNow()
	req := sip.NewRequest(method, c.remoteTarget)
	from := sip.FromHeader{DisplayName: c.localName, Address: c.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", c.localTag)
	to := sip.ToHeader{Address: c.remoteURI, Params: sip.NewParams()}
	if remoteTag != "" {
		to.Params.Add("tag", remoteTag)
	}
	callID := sip.CallIDHeader(c.callID)
	cseq := sip.CSeqHeader{SeqNo: seq, MethodName: method}
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(c.ep.newVia(conn))
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&cseq)
	req.AppendHeader(&maxf)
	if method == sip.INVITE || method == sip.ACK {
		req.AppendHeader(c.ep.contact())
	}
	if method == sip.INVITE {
		req.AppendHeader(sip.NewHeader("Allow", allowHeader))
	}
	if len(sdp) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(sdp)
	c.ep.route(req, conn)
	return req
}

// acceptSeq applies RFC 3261 §12.2.2: a request with a lower CSeq than the last one from the
// peer is out of order and gets 500. It answers the request itself when it returns false.
func (c *Call) acceptSeq(req *sip.Request, tx sip.ServerTransaction) bool {
	seq := req.CSeq().SeqNo
	c.mu.Lock()
	ok := c.remoteSeq == 0 || seq > c.remoteSeq || req.IsAck()
	if ok && !req.IsAck() {
		c.remoteSeq = seq
	}
	c.mu.Unlock()
	if !ok {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
	}
	return ok
}

func (c *Call) gotAck(req *sip.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// c.ack closes first, under c.mu: whoever sees the ACK counted (awaitAck, so Answer
	// returning) also finds c.ack closed (Bye, shutdown).
	c.ackOnce.Do(func() { close(c.ack) })
	if seq := req.CSeq().SeqNo; seq > c.lastAck {
		c.lastAck = seq
	}
	close(c.ackBcast)
	c.ackBcast = make(chan struct{})
}

// acked says whether the peer has acknowledged our 2xx to its INVITE with CSeq seq, and if
// not, gives a channel closed at the next ACK.
func (c *Call) acked(seq uint32) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastAck >= seq, c.ackBcast
}

// awaitAck retransmits res (a 2xx to the peer's INVITE with CSeq seq) until the ACK arrives
// (RFC 3261 §13.3.1.4), ctx ends, or 64*T1 pass; it reports whether the ACK came.
func (c *Call) awaitAck(ctx context.Context, seq uint32, res *sip.Response) (bool, error) {
	retry := resend(c.connNow, res)
	defer retry.stop()
	limit := time.NewTimer(ackTimeout)
	defer limit.Stop()
	for {
		ok, next := c.acked(seq)
		if ok {
			return true, nil
		}
		select {
		case <-next:
		case <-limit.C:
			return false, nil
		case <-c.done:
			if ok, _ := c.acked(seq); ok {
				return true, nil
			}
			return false, ErrCallEnded
		case <-c.ep.done:
			return false, ErrClosed
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Bye hangs up an answered call (RFC 3261 §15.1.1) and waits for the peer's response (or
// ctx). The call ends with CauseLocalHangup whatever the response.
func (c *Call) Bye(ctx context.Context) error {
	if c.ended() {
		return ErrCallEnded
	}
	c.mu.Lock()
	confirmed := c.state == stateConfirmed
	c.mu.Unlock()
	if !confirmed {
		return ErrNotEstablished
	}
	c.setReason(EndReason{Cause: CauseLocalHangup})
	defer c.end(EndReason{Cause: CauseLocalHangup})
	if c.in != nil {
		// RFC 3261 §15: the callee must not send BYE before the ACK (or its timeout).
		select {
		case <-c.ack:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.connNow().dead:
			return ErrCallEnded
		}
	}
	err := c.request(ctx, c.newRequest(sip.BYE, nil))
	if statusOf(err) == 481 {
		return nil // a retransmitted BYE whose first one got through (its 200 was lost)
	}
	return err
}

func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// request runs one non-INVITE client transaction over the call's connection and waits for
// its final response.
func (c *Call) request(ctx context.Context, req *sip.Request) error {
	res, err := c.ep.transact(ctx, c.connNow, req)
	if err != nil {
		return fmt.Errorf("sipcall: %s: %w", req.Method, err)
	}
	if !res.IsSuccess() {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// Reinvite sends a re-INVITE with a new offer (hold, resume: RFC 3261 §14.1, RFC 3264 §8.4)
// and returns the peer's answer SDP. A *StatusError reports a refusal: 491 Request Pending
// on glare (try again later, §14.1), 488 for an unacceptable offer. A 481 or 408, or no
// response at all, ends the call (§12.2.1.2).
func (c *Call) Reinvite(ctx context.Context, offer []byte) ([]byte, error) {
	if c.ended() {
		return nil, ErrCallEnded
	}
	c.mu.Lock()
	if c.state != stateConfirmed {
		c.mu.Unlock()
		return nil, ErrNotEstablished
	}
	if c.reinviting {
		c.mu.Unlock()
		return nil, ErrPending
	}
	c.reinviting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()

	req := c.newRequest(sip.INVITE, offer)
	tctx, cancel := context.WithTimeout(ctx, 32*time.Second) // RFC 3261 Timer B
	defer cancel()
	tx, err := c.ep.cli.TransactionRequest(tctx, req, asIs)
	if err != nil {
		return nil, fmt.Errorf("sipcall: re-INVITE: %w", err)
	}
	defer tx.Terminate()
	retry := resend(c.connNow, req) // RFC 3261 §17.1.1.2 Timer A, until the first response
	defer retry.stop()
	for {
		select {
		case res := <-tx.Responses():
			retry.stop()
			if res.IsProvisional() {
				continue
			}
			if res.IsSuccess() {
				c.sendAck(req, res)
				return res.Body(), nil
			}
			if res.StatusCode == 481 || res.StatusCode == 408 {
				c.end(EndReason{Cause: CauseTimeout, Status: res.StatusCode})
			}
			return nil, &StatusError{Code: res.StatusCode, Reason: res.Reason}
		case <-tx.Done():
			err := tx.Err()
			if errors.Is(err, sip.ErrTransactionTimeout) {
				c.end(EndReason{Cause: CauseTimeout, Err: err})
			}
			return nil, fmt.Errorf("sipcall: re-INVITE: %w", err)
		case <-tctx.Done():
			return nil, fmt.Errorf("sipcall: re-INVITE: %w", tctx.Err())
		case <-c.connNow().dead:
			return nil, fmt.Errorf("sipcall: re-INVITE: connection lost: %w", c.connNow().failErr)
		}
	}
}

// sendAck acknowledges a 2xx to an INVITE of ours (RFC 3261 §13.2.2.4): a new transaction-less
// request with the INVITE's CSeq number, over the same connection.
func (c *Call) sendAck(invite *sip.Request, res *sip.Response) { c.sendAckSeq(invite.CSeq().SeqNo) }

func (c *Call) sendAckSeq(seq uint32) {
	ack := c.newRequest(sip.ACK, nil)
	ack.CSeq().SeqNo = seq
	if err := c.ep.cli.WriteRequest(ack, asIs); err != nil {
		c.ep.log.Warn("sending ACK failed", "call_id", c.callID, "err", err)
	}
}

// handleReinvite answers the peer's re-INVITE (RFC 3261 §14.2).
func (c *Call) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if !c.acceptSeq(req, tx) {
		return
	}
	respond := func(code int, reason string, body []byte, hdrs ...sip.Header) {
		res := sip.NewResponseFromRequest(req, code, reason, body)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		if err := tx.Respond(res); err != nil {
			c.ep.log.Warn("answering re-INVITE failed", "call_id", c.callID, "err", err)
		}
	}
	c.mu.Lock()
	state, busy, handler := c.state, c.reinviting, c.onReinvite
	if state == stateConfirmed && !busy {
		c.reinviting = true
	}
	c.mu.Unlock()
	switch {
	case state != stateConfirmed:
		respond(500, "Server Internal Error", nil, sip.NewHeader("Retry-After", "1")) // §14.2
		return
	case busy:
		respond(491, "Request Pending", nil) // §14.2 glare
		return
	}
	// The flag covers the time the offer is being answered; it is cleared before the
	// response goes out, so the peer may send its next re-INVITE as soon as it has ours.
	inner := respond
	respond = func(code int, reason string, body []byte, hdrs ...sip.Header) {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
		inner(code, reason, body, hdrs...)
	}
	offer := req.Body()
	if len(offer) == 0 || !isSDP(req) {
		respond(488, "Not Acceptable Here", nil, warning("re-INVITE without SDP offer"))
		return
	}
	if handler == nil {
		respond(488, "Not Acceptable Here", nil, warning("re-INVITE not supported"))
		return
	}
	answer, err := handler(offer)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code >= 300 && se.Code < 700 {
			respond(se.Code, nonEmpty(se.Reason, statusText(se.Code)), nil)
			return
		}
		respond(488, "Not Acceptable Here", nil, warning(err.Error()))
		return
	}
	// Update the remote target (RFC 3261 §12.2.2: re-INVITE is a target refresh).
	if ct := req.Contact(); ct != nil {
		c.mu.Lock()
		c.remoteTarget = *ct.Address.Clone()
		c.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", answer)
	res.AppendHeader(c.ep.contact())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	c.mu.Lock()
	c.reinviting = false
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.ep.log.Warn("answering re-INVITE failed", "call_id", c.callID, "err", err)
		return
	}
	if ok, err := c.awaitAck(context.Background(), req.CSeq().SeqNo, res); !ok && err == nil {
		c.ep.log.Warn("no ACK for the 200 to a re-INVITE", "call_id", c.callID)
	}
}

// shutdown ends the call because the Endpoint closes.
func (c *Call) shutdown(ctx context.Context) {
	defer c.end(EndReason{Cause: CauseClosed})
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if c.in != nil && state == stateEarly {
		c.in.finalize(480, "Temporarily Unavailable", nil)
		return
	}
	if state == stateConfirmed {
		c.setReason(EndReason{Cause: CauseClosed})
		if c.in != nil {
			// RFC 3261 §15: the callee must not send BYE before the ACK to its 2xx has
			// arrived (the Endpoint still takes ACKs while closing): wait for it as long as
			// Close allows.
			select {
			case <-c.ack:
			case <-ctx.Done():
				return
			case <-c.connNow().dead:
				return
			}
		}
		_ = c.request(ctx, c.newRequest(sip.BYE, nil))
		return
	}
	if c.out != nil {
		c.out.Cancel()
		select {
		case <-c.out.finished:
		case <-ctx.Done():
		}
	}
}

func isSDP(m interface{ ContentType() *sip.ContentTypeHeader }) bool {
	ct := m.ContentType()
	if ct == nil {
		return false
	}
	v, _, _ := strings.Cut(ct.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(v), "application/sdp")
}

func warning(text string) sip.Header {
	return sip.NewHeader("Warning", `399 chordphone "`+warnText(text)+`"`)
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newTag() string    { return randHex(8) }
func newCallID() string { return randHex(16) }

// statusText is the default reason phrase of a status code (RFC 3261 §21).
func statusText(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 415:
		return "Unsupported Media Type"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 491:
		return "Request Pending"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	case 604:
		return "Does Not Exist Anywhere"
	case 606:
		return "Not Acceptable"
	}
	switch code / 100 {
	case 1:
		return "Session Progress"
	case 2:
		return "OK"
	case 3:
		return "Redirected"
	case 4:
		return "Request Failure"
	case 5:
		return "Server Failure"
	}
	return "Global Failure"
}
