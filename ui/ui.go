// Package ui is Chordphone's desktop interface: Fyne views over app/phone's API only.
//
// The main window holds the status line, the dial row, Recent and Contacts; a call replaces
// them with the in-call view. An incoming call gets its own small window. Every update from
// background work goes through fyne.Do.
package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/assets"
)

// AppID is the application's unique identifier (also in FyneApp.toml).
const AppID = "org.chordphone.chordphone"

// Run shows the main window and runs the phone until the window closes (or Quit from the
// tray) or ctx ends.
func Run(ctx context.Context, p *phone.Phone) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := slog.Default()

	var p2 Phone = p
	st, ownStore, err := storeFor(p2)
	if err != nil {
		return err
	}
	if ownStore {
		defer st.Close()
	}

	fa := fyneapp.NewWithID(AppID)
	fa.SetIcon(assets.Icon)
	gui, err := newGUI(fa, p2, config{
		store:       st,
		recordCalls: ownStore, // the phone records history itself when it owns the store
		tickers:     true,
		tray:        trayAvailable(),
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
	go func() { // owner: Run; quits the app when ctx ends (SIGINT/SIGTERM)
		<-ctx.Done()
		fyne.Do(fa.Quit)
	}()
	gui.win.ShowAndRun()
	gui.Close()
	cancel()
	return <-done
}

// NewMainWindow builds the main window for p in a, using the phone's profile database when the
// phone offers one (StoreOwner); otherwise contacts and history are unavailable.
func NewMainWindow(a fyne.App, p Phone) fyne.Window {
	var st *store.Store
	if so, ok := p.(StoreOwner); ok {
		st = so.Store()
	}
	g, err := newGUI(a, p, config{store: st, log: slog.Default()})
	if err != nil {
		w := a.NewWindow("Chordphone")
		w.SetContent(newErrorLabel(err.Error()))
		return w
	}
	return g.win
}

// storeFor returns the phone's profile database, or opens one in the default profile
// directory when the phone does not offer it (then the GUI owns and closes it).
func storeFor(p Phone) (st *store.Store, owned bool, err error) {
	if so, ok := p.(StoreOwner); ok && so.Store() != nil {
		return so.Store(), false, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return nil, false, fmt.Errorf("finding the profile directory: %w", err)
	}
	st, err = store.Open(filepath.Join(dir, "chordphone"))
	if errors.Is(err, store.ErrLocked) {
		return nil, false, fmt.Errorf("another Chordphone is running with this profile: %w", err)
	}
	if err != nil {
		return nil, false, err
	}
	return st, true, nil
}
