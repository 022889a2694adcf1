package sipcall

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// The AppAttach connection is DTLS over UDP: framed like a stream for sipgo, but a lost
// datagram loses (part of) a message, and sipgo, believing the transport reliable, never
// retransmits. The Endpoint therefore retransmits as RFC 3261 §17 does for unreliable
// transports, as a transaction user: requests until a response (Timers A and E), 2xx
// responses until the ACK (§13.3.1.4), error responses until the ACK (Timer G), ACKs for
// retransmitted 2xx (§13.2.2.4). A duplicate on a loss-free connection is absorbed by the
// peer's transactions.

// backoff fires at T1, 2*T1, 4*T1, ... at most T2 apart.
type backoff struct {
	d time.Duration
	t *time.Timer
}

func newBackoff() *backoff { return &backoff{d: sip.T1, t: time.NewTimer(sip.T1)} }

func (b *backoff) C() <-chan time.Time { return b.t.C }

func (b *backoff) next() {
	b.d = min(2*b.d, sip.T2)
	b.t.Reset(b.d)
}

func (b *backoff) stop() { b.t.Stop() }

// resend writes m again, as it was sent.
func (c *sipConn) resend(m sip.Message) {
	b := []byte(m.String())
	if _, err := c.Write(b); err == nil {
		c.log.Debug("SIP retransmission", "message", firstLine(b))
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
