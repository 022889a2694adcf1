package sipadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/media/audio"
)

// LineConfig says how a user's line joins the overlay: as the adapter peer's phone does.
type LineConfig struct {
	// Phone is the adapter peer's own phone: its peer is the lines' way into the overlay
	// (its overlay, and its address as the lines' bootstrap peer and host).
	Phone *phone.Phone
	// Config is the overlay's configuration document (--config), "" for a self-signed
	// overlay.
	Config string
}

// settingConfig is the profile setting with the overlay's configuration document (the
// phone's and Settings' "config").
const settingConfig = "config"

// LineProfile is the profile directory of user's line inside the adapter peer's profile.
func LineProfile(profile, user string) string {
	return filepath.Join(profile, "adapter", user)
}

// lines are the running lines, one per registered user.
type lines struct {
	a      *Adapter
	cfg    LineConfig
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	byName map[string]*line
	wg     sync.WaitGroup
}

func newLines(a *Adapter, cfg LineConfig) *lines {
	ctx, cancel := context.WithCancel(context.Background())
	return &lines{a: a, cfg: cfg, ctx: ctx, cancel: cancel, byName: map[string]*line{}}
}

// line is one user's presence in the overlay: a headless phone with the user's identity,
// run as a RELOAD client, whose audio is the user agent's RTP (see the package doc).
type line struct {
	name   string
	ls     *lines
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	ph         *phone.Phone // nil until started
	registered bool
	call       *bridge // the bridged call, nil when idle
}

// set starts user's line when its first UA registers and stops it when the last one goes.
func (ls *lines) set(user string, registered bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.byName[user]
	switch {
	case registered && l == nil:
		ctx, cancel := context.WithCancel(ls.ctx)
		l = &line{name: user, ls: ls, log: ls.a.log.With("line", user), cancel: cancel, done: make(chan struct{})}
		ls.byName[user] = l
		ls.wg.Add(1)
		go func() { // owner: lines; ends when the line is stopped (set or closeAll)
			defer ls.wg.Done()
			defer close(l.done)
			l.run(ctx)
		}()
	case !registered && l != nil:
		delete(ls.byName, user)
		l.cancel()
	}
}

func (ls *lines) get(user string) *line {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.byName[user]
}

func (ls *lines) closeAll() {
	ls.cancel()
	ls.wg.Wait()
}

// run runs the line's phone until ctx ends; stopping it removes the user's registration
// from the overlay (the phone's peer unregisters when it closes).
func (l *line) run(ctx context.Context) {
	boot, host, overlay, err := l.ls.entry(ctx)
	if err != nil {
		return // ctx ended
	}
	doc := l.ls.cfg.Config
	if doc == "" { // the adapter peer's overlay chosen in its profile (Settings, enroll)
		doc, _, _ = l.ls.cfg.Phone.Store().Setting(settingConfig)
	}
	ph, err := phone.New(phone.Config{
		Profile: LineProfile(l.ls.a.cfg.Profile, l.name), User: l.name,
		Overlay: overlay, Config: doc, Bootstrap: boot, Listen: net.JoinHostPort(host, "0"),
		Client: true, Audio: l.audio, Logger: l.log,
	})
	if err != nil {
		l.log.Error("SIP adapter: the line cannot start", "err", err)
		l.ls.cfg.Phone.Warn("adapter_line_failed", fmt.Sprintf("The SIP phone %s registered, but its line into the overlay cannot start: %v", l.name, err))
		return
	}
	events, unsubscribe := ph.Subscribe(64)
	defer unsubscribe()
	l.mu.Lock()
	l.ph = ph
	l.mu.Unlock()
	runDone := make(chan struct{})
	go func() { // owner: run; ends with ctx
		defer close(runDone)
		_ = ph.Run(ctx)
	}()
	for e := range events { // closed when the phone's Run ends
		l.event(e)
	}
	<-runDone
	l.mu.Lock()
	b := l.call
	l.mu.Unlock()
	if b != nil {
		b.overlayEnded("line stopped")
	}
}

// entry waits until the adapter peer's phone has joined and returns its address (the line's
// bootstrap peer), the host the line listens on and the overlay's name.
func (ls *lines) entry(ctx context.Context) (boot []string, host, overlay string, err error) {
	events, unsubscribe := ls.cfg.Phone.Subscribe(16)
	defer unsubscribe()
	for {
		st := ls.cfg.Phone.Status()
		if st.State != phone.NotJoined && st.Listen != "" {
			h, port, err := net.SplitHostPort(st.Listen)
			if err != nil {
				return nil, "", "", fmt.Errorf("the adapter peer's address %q: %w", st.Listen, err)
			}
			host = h
			if ip := net.ParseIP(h); ip == nil || ip.IsUnspecified() {
				h = "127.0.0.1"
			}
			return []string{net.JoinHostPort(h, port)}, host, st.Overlay, nil
		}
		select {
		case <-ctx.Done():
			return nil, "", "", ctx.Err()
		case _, ok := <-events:
			if !ok {
				return nil, "", "", errors.New("the adapter peer's phone has stopped")
			}
		}
	}
}

// event follows the line's phone: its registration and the bridged call.
func (l *line) event(e phone.Event) {
	l.mu.Lock()
	b := l.call
	l.mu.Unlock()
	switch e.Kind {
	case phone.EventRegistered:
		l.mu.Lock()
		l.registered = true
		l.mu.Unlock()
		l.log.Info("SIP adapter: registered in the overlay", "aor", e.AoR)
	case phone.EventError:
		l.log.Warn("SIP adapter: line trouble", "code", e.Code, "message", e.Message)
		if b != nil && (e.CallID == "" || e.CallID == b.callID()) {
			b.setFailure(e.Code)
		}
		if e.CallID == "" { // the line itself: the adapter peer's user is told
			l.ls.cfg.Phone.Warn("adapter_"+e.Code, lineTrouble(l.name, e))
		}
	case phone.EventIncoming:
		l.ringUAs(e)
	case phone.EventDTMF: // RFC 4733 from the overlay side: on to the UA
		if b != nil && e.CallID == b.callID() {
			b.leg.sendDigits(e.Digits)
		}
	case phone.EventCalling:
		if b != nil {
			b.setCallID(e.CallID)
		}
	}
	if b != nil && e.CallID != "" && e.CallID == b.callID() {
		b.overlayEvent(e)
	}
}

// audio is the line phone's Config.Audio: the bridged call's leg.
func (l *line) audio() (audio.Source, audio.Sink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.call == nil {
		return nil, nil, errors.New("no user agent in this call")
	}
	return l.call.leg, l.call.leg, nil
}

// phone returns the line's phone once it is registered in the overlay.
func (l *line) phone() *phone.Phone {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.registered {
		return nil
	}
	return l.ph
}

// begin makes b the line's call; false when another call is in progress.
func (l *line) begin(b *bridge) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.call != nil {
		return false
	}
	l.call = b
	return true
}

func (l *line) finish(b *bridge) {
	l.mu.Lock()
	if l.call == b {
		l.call = nil
	}
	l.mu.Unlock()
}

// lineTrouble says what a line's error means for its SIP phone, and what to do.
func lineTrouble(name string, e phone.Event) string {
	msg := fmt.Sprintf("The SIP phone %s registered, but its line into the overlay has trouble: %s", name, e.Message)
	if e.Code == join.CodeNeedsEnrollment || e.Code == join.CodeCANotTrusted {
		msg += fmt.Sprintf(" Enroll the line: chordphone adapter user remove %s, then chordphone adapter user add %s --invite LINK (or --config URL), with the password the overlay's operator gave for %s.", name, name, name)
	}
	return msg
}
