package phone

import (
	"fmt"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
)

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
