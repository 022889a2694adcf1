package sipcall

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The AppAttach connection is DTLS over UDP: framed like a stream for sipgo, but a lost
// datagram loses (part of) a message, and sipgo, believing the transport reliable, never
// retransmits. The Endpoint therefore retransmits as RFC 3261 §17 does for unreliable
// transports, as a transaction user, with one resender per message: requests until a
// response (Timers A and E), 2xx responses until the ACK (§13.3.1.4), error responses until
// the ACK (Timer G). ACKs for retransmitted 2xx are sent again by strayResponse
// (§13.2.2.4). A duplicate on a loss-free connection is absorbed by the peer's transactions.

// resender sends one message again at T1, 2*T1, 4*T1, ... at most T2 apart, over the
// connection conn returns at that moment (a dialog may move to another), until stop.
type resender struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// resend starts retransmitting m; the caller owns the goroutine and must call stop.
func resend(conn func() *sipConn, m sip.Message) *resender {
	r := &resender{quit: make(chan struct{}), done: make(chan struct{})}
	go func() { // owner: the caller, through stop
		defer close(r.done)
		d := sip.T1
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				conn().resend(m)
				d = min(2*d, sip.T2)
				t.Reset(d)
			case <-r.quit:
				return
			}
		}
	}()
	return r
}

// stop ends the retransmissions and waits until none is under way; it may be called again
// and on a nil resender.
func (r *resender) stop() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.quit) })
	<-r.done
}

// resend writes m again, as it was sent.
func (c *sipConn) resend(m sip.Message) {
	b := []byte(m.String())
	if _, err := c.Write(b); err == nil {
		c.log.Debug("SIP retransmission", "message", firstLine(b))
	}
}

// errNoResponse: a non-INVITE request got no final response within Timer F (64*T1).
var errNoResponse = errors.New("no response")

// transact runs a non-INVITE client transaction over the connection conn returns (RFC 3261
// §17.1.2), retransmitting (Timer E) until a final response, Timer F (64*T1), the
// connection's death, the Endpoint's close or ctx.
func (ep *Endpoint) transact(ctx context.Context, conn func() *sipConn, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	tx, err := ep.cli.TransactionRequest(ctx, req, asIs)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	retry := resend(conn, req)
	defer retry.stop()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, tx.Err()
		case <-conn().dead:
			return nil, fmt.Errorf("connection lost: %w", conn().failErr)
		case <-ep.done:
			return nil, ErrClosed
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, errNoResponse
			}
			return nil, ctx.Err()
		}
	}
}

// strayResponse handles a response no transaction wants: a retransmitted 2xx to one of
// our INVITEs whose ACK got lost gets the ACK again (RFC 3261 §13.2.2.4).
func (ep *Endpoint) strayResponse(res *sip.Response) {
	if !res.IsSuccess() || res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE || res.From() == nil || res.CallID() == nil {
		return
	}
	tag, _ := res.From().Params.Get("tag")
	ep.mu.Lock()
	c := ep.dialogs[dialogKey(res.CallID().Value(), tag)]
	ep.mu.Unlock()
	if c == nil || c.ended() {
		return
	}
	c.mu.Lock()
	confirmed := c.state == stateConfirmed
	c.mu.Unlock()
	if confirmed {
		c.sendAckSeq(res.CSeq().SeqNo)
	}
}
