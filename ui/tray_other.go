//go:build !linux

package ui

import (
	"context"
	"log/slog"

	"fyne.io/systray"
)

// newTrayHost: Windows and macOS always have a tray (notification area, menu bar).
func newTrayHost(*slog.Logger) trayHost { return alwaysTray{} }

type alwaysTray struct{}

func (alwaysTray) Present() bool                       { return true }
func (alwaysTray) Watch(ctx context.Context, _ func()) { <-ctx.Done() }
func (alwaysTray) Close()                              {}

// setTrayText sets the tray icon's tooltip (a title would show as text in macOS's menu bar).
func setTrayText(_, tooltip string) { systray.SetTooltip(tooltip) }

// setTrayActivate sets what a click on the icon does.
func setTrayActivate(f func()) { systray.SetOnTapped(f) }
