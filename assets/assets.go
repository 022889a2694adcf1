// Package assets holds Chordphone's application icon for the window, the tray and the desktop
// entry. icon.svg is the source; the PNGs are rendered from it by `go generate ./assets`.
// Sounds live in assets/sounds, which does not depend on Fyne.
package assets

//go:generate go run ./gen -dir .

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

var (
	//go:embed icon.png
	iconPNG []byte
	//go:embed icon-64.png
	icon64PNG []byte
	//go:embed icon.svg
	iconSVG []byte
)

// Icon is the 512 px application icon (window and desktop entry).
var Icon fyne.Resource = fyne.NewStaticResource("chordphone.png", iconPNG)

// Icon64 is a 64 px rendering for small places such as the system tray.
var Icon64 fyne.Resource = fyne.NewStaticResource("chordphone-64.png", icon64PNG)

// IconSVG is the icon's SVG source.
var IconSVG fyne.Resource = fyne.NewStaticResource("chordphone.svg", iconSVG)
