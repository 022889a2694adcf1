package ui

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// fakePhone stands in for *phone.Phone in the views' tests: it records what the GUI asks for
// and lets the test send the phone's events. Everything else (widgets, store) is real.
type fakePhone struct {
	st *store.Store

	mu       sync.Mutex
	status   phone.Status
	callErr  error
	calls    []string
	answers  int
	declines int
	hangups  int
	holds    int
	resumes  int
	mutes    []bool
	dtmf     string
	rings    []bool
	users    []string
	joins    []string
	level    float64
	joinErr  error
	// untrustedCA: Join without a pinned CA answers ca_not_trusted with this fingerprint.
	untrustedCA string
	// storeOthers records SetStoreForOthers calls.
	storeOthers []bool
	// storeLater: Store() is nil until the test clears it (the real phone opens it in Run).
	storeLater bool
	msgs       int // messages sent (chat_test.go)

	events chan phone.Event
	acted  chan string // one line per action the GUI took: "call bob", "answer", ...
	once   sync.Once
}

func newFakePhone(st *store.Store, user string) *fakePhone {
	s := phone.Status{Version: "test", User: user, Overlay: "example.org", State: phone.Registered,
		NodeID: "4f1a2b3c4d5e6f708192a3b4c5d6e7f8", Predecessors: []string{"a"}, Successors: []string{"b", "c"},
		Fingers: []string{"d"}, StoredRecords: 132}
	if user != "" {
		s.AoR = "sip:" + user + "@example.org"
	}
	return &fakePhone{st: st, status: s, events: make(chan phone.Event, 64), acted: make(chan string, 64)}
}

func (f *fakePhone) act(s string) { f.acted <- s }

func (f *fakePhone) Subscribe(int) (<-chan phone.Event, func()) {
	return f.events, func() { f.once.Do(func() { close(f.events) }) }
}

func (f *fakePhone) Status() phone.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	s.Calls = append([]phone.CallInfo(nil), f.status.Calls...)
	return s
}

func (f *fakePhone) Call(_ context.Context, user string) error {
	f.mu.Lock()
	f.calls = append(f.calls, user)
	err := f.callErr
	f.mu.Unlock()
	f.act("call " + user)
	return err
}

func (f *fakePhone) Answer() error {
	f.mu.Lock()
	f.answers++
	f.mu.Unlock()
	f.act("answer")
	return nil
}

func (f *fakePhone) Decline() error {
	f.mu.Lock()
	f.declines++
	f.mu.Unlock()
	f.act("decline")
	return nil
}

func (f *fakePhone) Hangup() error {
	f.mu.Lock()
	f.hangups++
	f.mu.Unlock()
	f.act("hangup")
	return nil
}

func (f *fakePhone) Hold() error   { f.act("hold"); return nil }
func (f *fakePhone) Resume() error { f.act("resume"); return nil }
func (f *fakePhone) SetMute(on bool) error {
	if on {
		f.act("mute")
	} else {
		f.act("unmute")
	}
	return nil
}
func (f *fakePhone) SendDTMF(d string) error { f.act("dtmf " + d); return nil }

// Optional capabilities.
func (f *fakePhone) Store() *store.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.storeLater {
		return nil
	}
	return f.st
}
func (f *fakePhone) SetUser(name string) error {
	f.mu.Lock()
	f.status.User = name
	f.status.AoR = "sip:" + name + "@example.org"
	f.mu.Unlock()
	f.act("user " + name)
	return nil
}
func (f *fakePhone) JoinOverlay(_ context.Context, overlay, configURL, user, password string) error {
	f.mu.Lock()
	err := f.joinErr
	if err == nil {
		f.status.Overlay = firstNonEmpty(overlay, "from-config.test")
	}
	f.mu.Unlock()
	f.act("join " + overlay + "|" + configURL + "|" + user + "|" + password)
	return err
}
func (f *fakePhone) Join(ctx context.Context, r phone.JoinRequest) error {
	f.mu.Lock()
	untrusted := f.untrustedCA
	f.mu.Unlock()
	if untrusted != "" && r.CAFingerprint == "" {
		f.act("join untrusted " + r.Overlay)
		return &join.Error{Code: join.CodeCANotTrusted, CAFingerprint: untrusted, Overlay: r.Overlay,
			Message: "The server of overlay " + r.Overlay + " presents a certificate authority this phone does not trust yet."}
	}
	err := f.JoinOverlay(ctx, r.Overlay, r.Config, r.User, r.Password)
	if r.CAFingerprint != "" {
		f.act("pinned " + r.CAFingerprint)
	}
	return err
}
func (f *fakePhone) AudioDevices() (inputs, outputs []string, err error) {
	return []string{"Mic A", "Headset"}, []string{"Speaker B", "Headset"}, nil
}
func (f *fakePhone) SetAudioDevices(in, out string) error {
	f.act("audio " + in + "|" + out)
	return f.st.SetSettings(map[string]string{"audio.input": in, "audio.output": out})
}
func (f *fakePhone) PlayTestTone(context.Context) error { f.act("tone"); return nil }
func (f *fakePhone) SetStoreForOthers(on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeOthers = append(f.storeOthers, on)
	return nil
}
func (f *fakePhone) Ring(on bool) {
	f.mu.Lock()
	f.rings = append(f.rings, on)
	f.mu.Unlock()
}
func (f *fakePhone) InputLevel() float64 { return 0.4 }
func (f *fakePhone) Fingerprint() string { return "SHA-256 AB:CD:EF:01" }

// harness is a GUI over a fakePhone and a real store, with UI updates queued for the test
// goroutine to run (the test driver has no event loop of its own).
type harness struct {
	t   *testing.T
	app fyne.App
	st  *store.Store
	p   *fakePhone
	g   *gui
	q   chan func()
	rec *recorder
}

type harnessOpt func(*config)

// trayApp is the test app with a system tray (desktop.App), recording what the GUI puts there.
type trayApp struct {
	fyne.App
	menu           *fyne.Menu
	icon           fyne.Resource
	win            fyne.Window
	title, tooltip string
	quits          int
}

func (a *trayApp) SetSystemTrayMenu(m *fyne.Menu)    { a.menu = m }
func (a *trayApp) SetSystemTrayIcon(r fyne.Resource) { a.icon = r }
func (a *trayApp) SetSystemTrayWindow(w fyne.Window) { a.win = w }
func (a *trayApp) SetTrayText(title, tooltip string) { a.title, a.tooltip = title, tooltip }
func (a *trayApp) Quit()                             { a.quits++ }

func newHarness(t *testing.T, user string, opts ...harnessOpt) *harness {
	t.Helper()
	var a fyne.App = test.NewTempApp(t)
	if user == "tray:alice" {
		user, a = "alice", &trayApp{App: a}
	}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, app: a, st: st, p: newFakePhone(st, user), q: make(chan func(), 256), rec: newRecorder(st, nil)}
	cfg := config{store: st, do: func(f func()) { h.q <- f }, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.store == nil {
		h.p.storeLater = true
	}
	g, err := newGUI(a, h.p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	t.Cleanup(func() {
		go func() { // drain UI work queued while closing
			for range h.q {
			}
		}()
		g.Close()
		close(h.q)
	})
	return h
}

// waitFor runs queued UI work until cond holds; it fails the test after 10 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case f := <-h.q:
			f()
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// expect waits for the phone to be asked for action (e.g. "call bob"), running UI work meanwhile.
func (h *harness) expect(action string) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-h.q:
			f()
		case got := <-h.p.acted:
			if got != action {
				h.t.Fatalf("phone was asked to %q, want %q", got, action)
			}
			return
		case <-deadline:
			h.t.Fatalf("timed out waiting for the phone to be asked to %q", action)
		}
	}
}

// settle runs UI work until the queue is empty and every action goroutine has reported.
func (h *harness) settle() {
	for {
		select {
		case f := <-h.q:
			f()
		default:
			return
		}
	}
}

// emit sends a phone event and waits until the GUI has handled it.
func (h *harness) emit(e phone.Event) {
	h.t.Helper()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	n := h.g.handled
	h.rec.event(e)
	h.p.events <- e
	h.waitFor(string(e.Kind)+" handled", func() bool { return h.g.handled > n })
}
