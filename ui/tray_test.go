package ui

import (
	"context"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"

	"github.com/chordphone/chordphone/app/phone"
)

// fakeHost is a tray host whose presence the test sets; changed() is what a watcher signal does.
type fakeHost struct {
	mu      sync.Mutex
	present bool
	changed func()
	watched chan struct{} // closed when the GUI watches
}

func (f *fakeHost) Present() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.present }
func (f *fakeHost) set(p bool) {
	f.mu.Lock()
	f.present = p
	c := f.changed
	f.mu.Unlock()
	if c != nil {
		c()
	}
}
func (f *fakeHost) Watch(ctx context.Context, changed func()) {
	f.mu.Lock()
	f.changed = changed
	f.mu.Unlock()
	close(f.watched)
	<-ctx.Done()
}
func (f *fakeHost) Close() {}

func newTrayHarness(t *testing.T, host trayHost) (*harness, *trayApp) {
	t.Helper()
	h := newHarness(t, "tray:alice", func(c *config) { c.tray, c.trayHost = true, host })
	ta := h.app.(*trayApp)
	if ta.menu == nil || ta.icon == nil || ta.win != h.g.win {
		t.Fatal("no tray menu, icon or window")
	}
	return h, ta
}

func menuLabels(m *fyne.Menu) string {
	var labels []string
	for _, it := range m.Items {
		labels = append(labels, it.Label)
	}
	return strings.Join(labels, "|")
}

func menuItem(t *testing.T, m *fyne.Menu, prefix string) *fyne.MenuItem {
	t.Helper()
	for _, it := range m.Items {
		if strings.HasPrefix(it.Label, prefix) {
			return it
		}
	}
	t.Fatalf("no %q in the tray menu %s", prefix, menuLabels(m))
	return nil
}

func TestTrayIconColours(t *testing.T) {
	seen := map[string]trayDot{}
	for d := dotNotJoined; d <= dotMissed; d++ {
		c := string(trayIcon(d).Content())
		if o, ok := seen[c]; ok {
			t.Errorf("tray icons %d and %d are the same", o, d)
		}
		seen[c] = d
	}
	if trayIcon(dotRegistered) != trayIcon(dotRegistered) {
		t.Error("tray icons are not cached")
	}
}

func TestTrayShowsStateAndMissedCalls(t *testing.T) {
	h, ta := newTrayHarness(t, nil)
	if got := menuLabels(ta.menu); got != "Show Chordphone|State: registered||Quit" {
		t.Errorf("tray menu %s", got)
	}
	if ta.title != "Chordphone" || ta.tooltip != "Chordphone — alice, registered in example.org" {
		t.Errorf("tray title %q tooltip %q", ta.title, ta.tooltip)
	}
	registered := ta.icon
	incoming(h)
	if ta.tooltip != "Chordphone — carol is calling" || ta.icon != trayIcon(dotRinging) {
		t.Errorf("while ringing: tooltip %q, ringing icon %v", ta.tooltip, ta.icon == trayIcon(dotRinging))
	}
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "in1", Reason: "cancelled"})
	if ta.menu.Items[1].Label != "State: registered — 1 missed call" || ta.icon != trayIcon(dotMissed) ||
		!strings.HasSuffix(ta.tooltip, "— 1 missed call") {
		t.Errorf("after a missed call: %q, tooltip %q, icon changed %v", ta.menu.Items[1].Label, ta.tooltip, ta.icon != registered)
	}
	ta.menu.Items[0].Action() // Show: the missed calls have been seen
	if ta.menu.Items[1].Label != "State: registered" || ta.icon != registered {
		t.Errorf("after Show: %q", ta.menu.Items[1].Label)
	}
	// Settings → Peer off: the phone rejoins as a RELOAD client, and the tray says so.
	h.p.mu.Lock()
	h.p.status.Role = "client"
	h.p.mu.Unlock()
	h.emit(phone.Event{Kind: phone.EventJoined, Role: "client"})
	if ta.tooltip != "Chordphone — alice, registered in example.org as a client" {
		t.Errorf("as a client: tooltip %q", ta.tooltip)
	}
}

// The tray answers and declines an incoming call, and hangs up the call in progress.
func TestTrayQuickActions(t *testing.T) {
	h, ta := newTrayHarness(t, nil)
	incoming(h)
	if got := menuLabels(ta.menu); got != "Show Chordphone|State: registered|Answer carol|Decline||Quit" {
		t.Fatalf("tray menu while ringing: %s", got)
	}
	menuItem(t, ta.menu, "Decline").Action()
	h.expect("decline")
	h.settle()
	if h.g.incoming != nil {
		t.Fatal("the incoming-call window stayed after Decline from the tray")
	}
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "in1", Reason: "declined"})

	h.emit(phone.Event{Kind: phone.EventIncoming, CallID: "in2", From: "sip:carol@example.org"})
	menuItem(t, ta.menu, "Answer carol").Action()
	h.expect("answer")
	h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "in2", Peer: "carol"})
	if got := menuLabels(ta.menu); got != "Show Chordphone|State: registered|Hang up carol||Quit" {
		t.Fatalf("tray menu in a call: %s", got)
	}
	if ta.icon != trayIcon(dotInCall) || ta.tooltip != "Chordphone — in a call with carol" {
		t.Errorf("in a call: tooltip %q", ta.tooltip)
	}
	menuItem(t, ta.menu, "Hang up").Action()
	h.expect("hangup")
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "in2", Reason: "local hangup"})

	// Idle again: the last peer is one click away.
	menuItem(t, ta.menu, "Call carol").Action()
	h.expect("call carol")
	if !h.g.call.active() || h.g.call.peer != "carol" {
		t.Error("Call carol from the tray did not open the call view")
	}
}

// Closing the window hides it to the tray only while a tray shows the icon; otherwise it
// quits. When the tray goes away, a hidden window comes back.
func TestTrayCloseHidesOnlyWithAHost(t *testing.T) {
	host := &fakeHost{present: true, watched: make(chan struct{})}
	h, ta := newTrayHarness(t, host)
	<-host.watched

	h.g.closeWindow()
	if !h.g.tray.hidden || ta.quits != 0 {
		t.Fatalf("with a tray: hidden %v, quits %d", h.g.tray.hidden, ta.quits)
	}
	host.set(false) // the panel quits
	h.waitFor("the window shown again", func() bool { return !h.g.tray.hidden })

	h.g.closeWindow()
	if h.g.tray.hidden || ta.quits != 1 {
		t.Errorf("without a tray: hidden %v, quits %d", h.g.tray.hidden, ta.quits)
	}
}
