package ui

import (
	"log/slog"
	"time"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// recorder writes call history from the phone's events, as the real phone does (app/phone
// records each call when it ends, before its hangup event): the fake phone's history.
type recorder struct {
	st    *store.Store
	log   *slog.Logger
	calls map[string]*recCall
}

type recCall struct {
	dir      store.Direction
	peer     string
	start    time.Time
	answered time.Time
}

func newRecorder(st *store.Store, log *slog.Logger) *recorder {
	if log == nil {
		log = slog.Default()
	}
	return &recorder{st: st, log: log, calls: map[string]*recCall{}}
}

func (r *recorder) event(e phone.Event) {
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	switch e.Kind {
	case phone.EventCalling:
		r.calls[e.CallID] = &recCall{dir: store.Outgoing, peer: e.Peer, start: at}
	case phone.EventIncoming:
		u, _ := caller(e)
		r.calls[e.CallID] = &recCall{dir: store.Incoming, peer: u, start: at}
	case phone.EventAnswered:
		if c := r.calls[e.CallID]; c != nil {
			c.answered = at
		}
	case phone.EventHangup:
		c := r.calls[e.CallID]
		if c == nil {
			return
		}
		delete(r.calls, e.CallID)
		h := store.HistoryEntry{Direction: c.dir, Peer: c.peer, Start: c.start}
		if !c.answered.IsZero() {
			h.Duration = at.Sub(c.answered)
		} else if c.dir == store.Incoming && e.Reason != "declined" {
			h.Direction = store.Missed
		}
		if h.Peer == "" {
			return
		}
		if _, err := r.st.AddHistory(h); err != nil {
			r.log.Error("recording call history", "err", err)
		}
	}
}
