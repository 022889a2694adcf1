package ui

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/version"
	"github.com/chordphone/chordphone/assets"
)

// trayHost tells whether a system tray shows our icon right now (on Linux: a
// StatusNotifierWatcher with a host lists our item). Closing the main window hides it to the
// tray only then; otherwise the window could never come back, and closing quits.
type trayHost interface {
	Present() bool
	// Watch calls changed whenever the answer may have changed, until ctx ends or Close.
	Watch(ctx context.Context, changed func())
	Close()
}

// trayTexter sets the tray icon's title and tooltip, which Fyne's desktop.App cannot; the
// real app uses fyne.io/systray (setTrayText), tests record them.
type trayTexter interface {
	SetTrayText(title, tooltip string)
}

// trayMenu is the system tray: an icon whose dot shows the state (grey, amber, green; blue
// while ringing, violet in a call, red after missed calls), a tooltip saying the same in
// words, and quick actions: Show, Answer/Decline while ringing, Hang up in a call, Call the
// last peer otherwise, Quit.
type trayMenu struct {
	g      *gui
	da     desktop.App
	host   trayHost // nil: the tray is always there (Windows, macOS, tests)
	menu   *fyne.Menu
	state  *fyne.MenuItem
	show   *fyne.MenuItem
	quit   *fyne.MenuItem
	hidden bool   // the main window is hidden to the tray
	last   string // what the menu, icon and tooltip show now
}

func newTray(g *gui) *trayMenu {
	da, ok := g.fa.(desktop.App)
	if !ok {
		return nil
	}
	t := &trayMenu{g: g, da: da, host: g.cfg.trayHost}
	t.state = fyne.NewMenuItem("", nil)
	t.state.Disabled = true
	t.show = fyne.NewMenuItem("Show Chordphone", t.showWindow)
	t.quit = fyne.NewMenuItem("Quit", func() { g.fa.Quit() })
	t.quit.IsQuit = true
	t.menu = fyne.NewMenu(version.Name, t.show, t.state, fyne.NewMenuItemSeparator(), t.quit)
	da.SetSystemTrayMenu(t.menu)
	da.SetSystemTrayWindow(g.win)
	if _, test := g.fa.(trayTexter); !test {
		// A click on the icon shows the window as Show does (Fyne's own handler would leave
		// the missed calls counted and the window marked hidden).
		setTrayActivate(func() { g.do(t.showWindow) })
	}
	t.update()
	if t.host != nil {
		g.goFunc(func(ctx context.Context) {
			t.host.Watch(ctx, func() { g.do(t.hostChanged) })
		})
	}
	return t
}

// showWindow brings the main window back (tray's Show, or the tray went away).
func (t *trayMenu) showWindow() {
	t.hidden = false
	t.g.win.Show()
	t.g.win.RequestFocus()
	t.g.missed = 0 // seen: they are in Recent
	t.update()
}

// closeWindow is the main window's close intercept: hide to the tray when a tray shows our
// icon, quit otherwise.
func (g *gui) closeWindow() {
	t := g.tray
	if t != nil && (t.host == nil || t.host.Present()) {
		t.hidden = true
		g.win.Hide()
		g.log.Info("window hidden to the system tray")
		return
	}
	g.fa.Quit()
}

// hostChanged: when the tray goes away while the window is hidden, show the window again.
func (t *trayMenu) hostChanged() {
	if t.hidden && !t.host.Present() {
		t.g.log.Info("the system tray went away: showing the window")
		t.showWindow()
	}
}

// trayView is what the tray shows for the GUI's state.
type trayView struct {
	dot     trayDot
	state   string // the disabled state line of the menu
	tooltip string
	actions []*fyne.MenuItem
}

type trayDot int

const (
	dotNotJoined trayDot = iota
	dotJoined
	dotRegistered
	dotRinging
	dotInCall
	dotMissed
)

func (t *trayMenu) view() trayView {
	g := t.g
	s := g.status
	v := trayView{state: "State: " + string(s.State)}
	switch s.State {
	case phone.Joined:
		v.dot = dotJoined
	case phone.Registered:
		v.dot = dotRegistered
	}
	who := g.userName()
	ov := s.Overlay
	if ov == "" {
		ov = "local network"
	}
	switch s.State {
	case phone.Registered:
		v.tooltip = fmt.Sprintf("%s — %s, registered in %s", version.Name, who, ov)
	case phone.Joined:
		v.tooltip = fmt.Sprintf("%s — %s, joined %s", version.Name, who, ov)
	default:
		v.tooltip = fmt.Sprintf("%s — not connected", version.Name)
	}
	if s.Role == "client" && s.State != phone.NotJoined {
		v.tooltip += " as a client" // RFC 6940 §4.2: storing nothing for others
	}
	if g.missed > 0 {
		m := plural(g.missed, "missed call", "missed calls")
		v.state += " — " + m
		v.tooltip += " — " + m
		v.dot = dotMissed
	}
	if u := g.unreadText(); u != "" { // chat.go
		v.state += " — " + u
		v.tooltip += " — " + u
		if v.dot < dotMissed {
			v.dot = dotMissed
		}
	}
	switch {
	case g.incoming != nil:
		iw := g.incoming
		v.dot = dotRinging
		v.tooltip = fmt.Sprintf("%s — %s is calling", version.Name, iw.from)
		v.actions = append(v.actions,
			fyne.NewMenuItem("Answer "+iw.from, func() { t.tapIncoming(iw, true) }),
			fyne.NewMenuItem("Decline", func() { t.tapIncoming(iw, false) }))
	case g.call.active():
		v.dot = dotInCall
		v.tooltip = fmt.Sprintf("%s — in a call with %s", version.Name, g.call.peer)
		v.actions = append(v.actions, fyne.NewMenuItem("Hang up "+g.call.peer, func() {
			if g.call.active() {
				g.call.doHangup()
			}
		}))
	default:
		if n, from := g.unreadTotal(); n > 0 {
			v.actions = append(v.actions, fyne.NewMenuItem("Read messages from "+from, func() {
				t.showWindow()
				g.openChat(from)
			}))
		}
		if peer := t.lastPeer(); peer != "" {
			v.actions = append(v.actions, fyne.NewMenuItem("Call "+peer, func() {
				t.showWindow()
				g.dial.SetText(peer)
				g.dialUser(peer)
			}))
		}
	}
	return v
}

// tapIncoming answers or declines through the incoming-call window's buttons (the same path,
// the same error display).
func (t *trayMenu) tapIncoming(iw *incomingWindow, accept bool) {
	if t.g.incoming != iw {
		return // that call is gone
	}
	b := iw.decline
	if accept {
		b = iw.accept
		t.showWindow() // the call view is in the main window
	}
	if !b.Disabled() {
		b.OnTapped()
	}
}

// lastPeer is the peer of the most recent call in the history.
func (t *trayMenu) lastPeer() string {
	for _, h := range t.g.history {
		if h.Peer != "" {
			return h.Peer
		}
	}
	return ""
}

// update shows the GUI's state in the tray: menu, icon and tooltip (only when it changed:
// every refresh rebuilds the platform's menu).
func (t *trayMenu) update() {
	if t == nil {
		return
	}
	v := t.view()
	labels := []string{v.state, v.tooltip, fmt.Sprint(v.dot)}
	for _, a := range v.actions {
		labels = append(labels, a.Label)
	}
	key := strings.Join(labels, "\x00")
	if key == t.last {
		return
	}
	t.last = key
	// Icon and tooltip first: a panel that sees the new menu sees them too.
	t.da.SetSystemTrayIcon(trayIcon(v.dot))
	if tt, ok := t.g.fa.(trayTexter); ok {
		tt.SetTrayText(version.Name, v.tooltip)
	} else {
		setTrayText(version.Name, v.tooltip)
	}
	t.state.Label = v.state
	items := []*fyne.MenuItem{t.show, t.state}
	items = append(items, v.actions...)
	t.menu.Items = append(items, fyne.NewMenuItemSeparator(), t.quit)
	t.menu.Refresh()
}

// nameApp gives the app its name when the binary was built without `fyne package` (which
// embeds FyneApp.toml): the tray's title is the app's name, not its ID.
func nameApp(fa fyne.App) {
	m := fa.Metadata()
	if m.Name != "" {
		return
	}
	m.Name, m.ID, m.Version, m.Icon = version.Name, AppID, version.Version, assets.Icon
	fyneapp.SetMetadata(m)
}

var trayIcons = map[trayDot]fyne.Resource{}

var dotColours = map[trayDot]color.NRGBA{
	dotNotJoined:  {0x9E, 0x9E, 0x9E, 0xFF}, // grey
	dotJoined:     {0xF5, 0x9E, 0x0B, 0xFF}, // amber
	dotRegistered: {0x22, 0xC5, 0x5E, 0xFF}, // green
	dotRinging:    {0x3B, 0x82, 0xF6, 0xFF}, // blue
	dotInCall:     {0x8B, 0x5C, 0xF6, 0xFF}, // violet
	dotMissed:     {0xEF, 0x44, 0x44, 0xFF}, // red
}

// trayIcon is the 64 px icon with a dot in the state's colour.
func trayIcon(d trayDot) fyne.Resource {
	if r, ok := trayIcons[d]; ok {
		return r
	}
	c := dotColours[d]
	src, err := png.Decode(bytes.NewReader(assets.Icon64.Content()))
	if err != nil {
		return assets.Icon64
	}
	img := image.NewNRGBA(src.Bounds())
	draw.Draw(img, img.Bounds(), src, image.Point{}, draw.Src)
	// A dot of radius 13 with a white rim in the bottom-right corner.
	cx, cy, r := 50, 50, 13
	for y := cy - r - 2; y <= cy+r+2; y++ {
		for x := cx - r - 2; x <= cx+r+2; x++ {
			d := (x-cx)*(x-cx) + (y-cy)*(y-cy)
			switch {
			case d <= r*r:
				img.SetNRGBA(x, y, c)
			case d <= (r+2)*(r+2):
				img.SetNRGBA(x, y, color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return assets.Icon64
	}
	res := fyne.NewStaticResource(fmt.Sprintf("chordphone-tray-%d.png", d), buf.Bytes())
	trayIcons[d] = res
	return res
}
