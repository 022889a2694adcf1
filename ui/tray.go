package ui

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/assets"
)

// trayMenu is the system tray: the icon with a state-coloured dot, and Show, state, Quit.
type trayMenu struct {
	g     *gui
	da    desktop.App
	menu  *fyne.Menu
	state *fyne.MenuItem
	last  string
}

func newTray(g *gui) *trayMenu {
	da, ok := g.fa.(desktop.App)
	if !ok {
		return nil
	}
	t := &trayMenu{g: g, da: da}
	t.state = fyne.NewMenuItem("", nil)
	t.state.Disabled = true
	show := fyne.NewMenuItem("Show Chordphone", func() {
		g.win.Show()
		g.win.RequestFocus()
		g.missed = 0 // seen: they are in Recent
		t.update()
	})
	quit := fyne.NewMenuItem("Quit", func() { g.fa.Quit() })
	quit.IsQuit = true
	t.menu = fyne.NewMenu("Chordphone", show, t.state, fyne.NewMenuItemSeparator(), quit)
	da.SetSystemTrayMenu(t.menu)
	da.SetSystemTrayWindow(g.win)
	t.update()
	return t
}

// update shows the state (and missed calls) in the menu and the icon's colour.
func (t *trayMenu) update() {
	if t == nil {
		return
	}
	s := t.g.status
	label := "State: " + string(s.State)
	if t.g.missed > 0 {
		label += fmt.Sprintf(" — %s", plural(t.g.missed, "missed call", "missed calls"))
	}
	key := label
	if key == t.last {
		return
	}
	t.last = key
	t.state.Label = label
	t.menu.Refresh()
	t.da.SetSystemTrayIcon(trayIcon(s.State, t.g.missed > 0))
}

var trayIcons = map[string]fyne.Resource{}

// trayIcon is the 64 px icon with a dot in the state colour (red when calls were missed).
func trayIcon(s phone.PeerState, missed bool) fyne.Resource {
	key := fmt.Sprint(s, missed)
	if r, ok := trayIcons[key]; ok {
		return r
	}
	c := color.NRGBA{0x9E, 0x9E, 0x9E, 0xFF} // grey: not joined
	switch s {
	case phone.Joined:
		c = color.NRGBA{0xF5, 0x9E, 0x0B, 0xFF}
	case phone.Registered:
		c = color.NRGBA{0x22, 0xC5, 0x5E, 0xFF}
	}
	if missed {
		c = color.NRGBA{0xEF, 0x44, 0x44, 0xFF}
	}
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
	res := fyne.NewStaticResource("chordphone-tray-"+key+".png", buf.Bytes())
	trayIcons[key] = res
	return res
}
