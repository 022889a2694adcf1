package phone

import (
	"time"

	"github.com/chordphone/chordphone/app/store"
)

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
