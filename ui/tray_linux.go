package ui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// On Linux, Fyne's tray (fyne.io/systray) is a StatusNotifierItem on the session bus with a
// com.canonical.dbusmenu menu. It registers with org.kde.StatusNotifierWatcher; a panel that
// shows tray icons (a StatusNotifierHost) reads the watcher's list. Without a watcher (a bare
// X session, most Xvfb runs, GNOME without the AppIndicator extension) nobody shows the icon,
// so a window hidden to the tray could never be brought back.
const (
	sniWatcherName  = "org.kde.StatusNotifierWatcher"
	sniWatcherPath  = "/StatusNotifierWatcher"
	sniWatcherIface = "org.kde.StatusNotifierWatcher"
	sniItemPath     = "/StatusNotifierItem" // the path systray exports its item on
)

// sniHost asks the session bus whether our tray icon is shown: the watcher runs, a host is
// registered with it, and it lists our item. It uses its own connection, so its signal
// subscriptions never reach systray's (which stops watching on signals it does not expect).
type sniHost struct {
	conn *dbus.Conn // private: queries and the watcher's signals
	ids  []string   // bus names our item can be listed under (systray's connection)
	log  *slog.Logger

	mu      sync.Mutex
	stopped bool
	done    chan struct{}
}

// newTrayHost connects to the session bus (never starting one); nil when there is none, and
// then the GUI has no tray at all.
func newTrayHost(log *slog.Logger) trayHost {
	h, err := dialSNIHost(log)
	if err != nil {
		log.Info("no system tray: no session bus", "err", err)
		return nil
	}
	return h
}

func dialSNIHost(log *slog.Logger) (*sniHost, error) {
	conn, err := dbus.SessionBusPrivateNoAutoStartup()
	if err != nil {
		return nil, fmt.Errorf("connecting to the session bus: %w", err)
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("session bus authentication: %w", err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("session bus hello: %w", err)
	}
	// systray exports the item on the process's shared session bus connection: the watcher
	// lists it under that connection's unique name (or the well-known name systray asks for).
	shared, err := dbus.SessionBus()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to the session bus: %w", err)
	}
	ids := append([]string(nil), shared.Names()...)
	ids = append(ids, fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", os.Getpid()))
	return &sniHost{conn: conn, ids: ids, log: log, done: make(chan struct{})}, nil
}

// Present reports whether a tray shows our item now. It asks the bus (a few round trips),
// so the answer is current when the window is closed.
func (h *sniHost) Present() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, why := h.present(ctx)
	if !ok {
		h.log.Info("no system tray shows Chordphone", "why", why)
	}
	return ok
}

func (h *sniHost) present(ctx context.Context) (bool, string) {
	var has bool
	if err := h.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, sniWatcherName).Store(&has); err != nil {
		return false, "asking the bus: " + err.Error()
	}
	if !has {
		return false, "no " + sniWatcherName + " on the session bus"
	}
	w := h.conn.Object(sniWatcherName, sniWatcherPath)
	var hostOK bool
	if err := w.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, sniWatcherIface, "IsStatusNotifierHostRegistered").Store(&hostOK); err != nil {
		return false, "reading IsStatusNotifierHostRegistered: " + err.Error()
	}
	if !hostOK {
		return false, "the watcher has no tray host"
	}
	var items []string
	if err := w.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, sniWatcherIface, "RegisteredStatusNotifierItems").Store(&items); err != nil {
		return false, "reading RegisteredStatusNotifierItems: " + err.Error()
	}
	if !itemListed(items, h.ids) {
		return false, fmt.Sprintf("our item is not registered (watcher lists %d items)", len(items))
	}
	return true, ""
}

// itemListed reports whether one of the watcher's entries is ours. Watchers list an item as
// "SERVICE/PATH" (KDE, GNOME's AppIndicator extension: the sender's bus name and the path
// it registered) or as the bare service name.
func itemListed(items, ids []string) bool {
	for _, it := range items {
		svc, _, _ := strings.Cut(it, "/")
		for _, id := range ids {
			if id != "" && svc == id {
				return true
			}
		}
	}
	return false
}

// Watch calls changed whenever the watcher comes, goes, or its items or hosts change, until
// ctx ends or Close. The GUI uses it to bring a hidden window back when the tray goes.
func (h *sniHost) Watch(ctx context.Context, changed func()) {
	rules := [][]dbus.MatchOption{
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, sniWatcherName)},
		{dbus.WithMatchInterface(sniWatcherIface), dbus.WithMatchObjectPath(sniWatcherPath)},
		{dbus.WithMatchInterface("org.freedesktop.DBus.Properties"), dbus.WithMatchObjectPath(sniWatcherPath)},
	}
	for _, r := range rules {
		if err := h.conn.AddMatchSignalContext(ctx, r...); err != nil {
			h.log.Warn("watching the system tray", "err", err)
			return
		}
	}
	sigs := make(chan *dbus.Signal, 16)
	h.conn.Signal(sigs)
	defer h.conn.RemoveSignal(sigs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case s, ok := <-sigs:
			if !ok || s == nil {
				return
			}
			changed()
		}
	}
}

// Close ends Watch and the private connection.
func (h *sniHost) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	close(h.done)
	h.conn.Close()
}

// setTrayText sets the StatusNotifierItem's Title and ToolTip (fyne.io/systray keeps them until
// the item is exported, so it may run before the tray starts).
func setTrayText(title, tooltip string) {
	systray.SetTitle(title)
	systray.SetTooltip(tooltip)
}

// setTrayActivate sets what a click on the icon does (StatusNotifierItem.Activate).
func setTrayActivate(f func()) { systray.SetOnTapped(f) }
