package phone

import (
	"context"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/media/rtc"
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
	// addrGone is told when an address the call's media went out from was removed (this
	// device moved): the call reconnects at once, whichever side placed it.
	addrGone chan struct{}
}

// newCall makes the current call; p.mu is held.
func (p *Phone) newCall(peerName string, dir Direction, st CallState) *call {
	ctx, cancel := context.WithCancel(p.runCtx)
	p.callSeq++
	c := &call{p: p, ctx: ctx, cancel: cancel, answer: make(chan bool, 1), addrGone: make(chan struct{}, 1), info: CallInfo{
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
