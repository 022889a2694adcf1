// Package ui is Chordphone's desktop interface: Fyne views over app/phone's API only.
//
// The main window holds the status line, the dial row, Recent and Contacts; a call replaces
// them with the in-call view. An incoming call gets its own small window. Every update from
// background work goes through fyne.Do.
package ui

import (
	"context"
	"log/slog"
	"os"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/chordphone/chordphone/app/handoff"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/assets"
)

// AppID is the application's unique identifier (also in FyneApp.toml).
const AppID = "org.chordphone.chordphone"

// quitGrace is how long a quit asked by a signal waits for Fyne's window loop to return.
const quitGrace = 10 * time.Second

// Run shows the main window and runs the phone until the window closes (or Quit from the
// tray) or ctx ends.
func Run(ctx context.Context, p *phone.Phone) error { return RunWithInvitation(ctx, p, "") }

// RunWithInvitation is Run that opens Settings → Overlay filled from a join link (chordphone:
// join?..., given as the argument: the desktop entry handles the chordphone: URI scheme).
func RunWithInvitation(ctx context.Context, p *phone.Phone, invite string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := slog.Default()

	fa := fyneapp.NewWithID(AppID)
	fa.SetIcon(assets.Icon)
	nameApp(fa)
	host := newTrayHost(log)
	if host != nil {
		defer host.Close()
	}
	// The phone owns the profile database (it records call history); the GUI uses it through
	// StoreOwner, attaching once the phone has opened it. The GUI never opens the profile
	// itself: bbolt allows one opener, and it does not know --profile.
	gui, err := newGUI(fa, p, config{
		store:       storeOf(p),
		tickers:     true,
		tray:        host != nil,
		trayHost:    host,
		showNoFocus: showWithoutFocus,
		log:         log,
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { // owner: Run; ends with ctx
		err := p.Run(ctx)
		done <- err
		if err != nil {
			log.Error("phone stopped", "err", err)
		}
		fyne.Do(fa.Quit)
	}()
	// returned is closed when ShowAndRun has returned.
	returned := make(chan struct{})
	go func() { // owner: Run; quits the app when ctx ends (SIGINT/SIGTERM)
		<-ctx.Done()
		fyne.Do(fa.Quit)
		select {
		case <-returned:
		case <-time.After(quitGrace):
			// Fyne's ShowAndRun at times does not return after Quit (fyne-io/fyne#6021: its
			// run loop has ended, but Run still waits on its lifecycle queue). The phone stops
			// with ctx; then the program ends as the signal asked instead of hanging.
			log.Warn("the window system did not finish closing; exiting without it")
			gui.closed.Store(true)
			gui.Close()
			err := <-done
			if host != nil {
				host.Close()
			}
			if err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		}
	}()
	if invite != "" {
		fa.Lifecycle().SetOnStarted(func() { fyne.Do(func() { gui.openInvitation(invite) }) })
	}
	// A link opened while the phone runs starts the program again, which hands it over here.
	if links, err := handoff.Listen(ctx, p.Profile()); err != nil {
		log.Warn("links opened later cannot reach this phone", "err", err)
	} else {
		go func() { // owner: Run; ends when ctx ends (the listener closes links)
			for link := range links {
				log.Info("a join link was handed over", "link", link)
				fyne.Do(func() { gui.openInvitation(link) })
			}
		}()
	}
	gui.win.ShowAndRun()
	close(returned)
	gui.closed.Store(true) // no more UI updates: the windows are gone
	cancel()               // stop the phone first, so call actions in flight return
	gui.Close()
	return <-done
}

// NewMainWindow builds the main window for p in a, using the phone's profile database when the
// phone offers one (StoreOwner); until then, contacts and history are unavailable.
func NewMainWindow(a fyne.App, p Phone) fyne.Window {
	g, err := newGUI(a, p, config{store: storeOf(p), log: slog.Default()})
	if err != nil {
		w := a.NewWindow("Chordphone")
		w.SetContent(newErrorLabel(err.Error()))
		return w
	}
	return g.win
}

// storeOf returns the phone's profile database, or nil when it has none (yet).
func storeOf(p Phone) *store.Store {
	if so, ok := p.(StoreOwner); ok {
		return so.Store()
	}
	return nil
}

// openInvitation shows the window and Settings → Overlay filled from a join link.
func (g *gui) openInvitation(link string) {
	if g.closed.Load() {
		return
	}
	g.win.Show()
	g.win.RequestFocus()
	if g.settings != nil {
		g.settings.d.Hide()
	}
	g.showSettings()
	g.settings.SetInvitation(link)
}
