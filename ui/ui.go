// Package ui is Chordphone's desktop interface: Fyne views over app/phone's API only.
package ui

import (
	"context"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/version"
)

// AppID is the application's unique identifier (also in FyneApp.toml).
const AppID = "org.chordphone.chordphone"

// Run shows the main window and runs the phone until the window closes or ctx ends.
func Run(ctx context.Context, p *phone.Phone) error {
	a := fyneapp.NewWithID(AppID)
	w := NewMainWindow(a, p)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }() // owner: Run; ends with ctx
	go func() { // owner: Run; quits the app when ctx ends (SIGINT/SIGTERM)
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	w.ShowAndRun()
	cancel()
	return <-done
}

// NewMainWindow builds the main window for p in a.
func NewMainWindow(a fyne.App, p *phone.Phone) fyne.Window {
	w := a.NewWindow(version.Name)
	st := p.Status()
	status := widget.NewLabel("Chordphone " + version.Version + " — " + string(st.State))
	w.SetContent(container.NewVBox(status))
	w.Resize(fyne.NewSize(420, 640))
	return w
}
