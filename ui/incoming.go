package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
)

// incomingWindow is the small window of an incoming call: caller, Accept and Decline.
type incomingWindow struct {
	w       fyne.Window
	id      string
	from    string
	accept  *widget.Button
	decline *widget.Button
	err     *widget.Label
}

func (iw *incomingWindow) matches(id string) bool { return id == "" || iw.id == "" || id == iw.id }

// caller returns the user name and AoR of an incoming call's From.
func caller(e phone.Event) (user, aor string) {
	from := firstNonEmpty(e.From, e.Peer)
	aor = from
	u := from
	if len(u) >= 4 && strings.EqualFold(u[:4], "sip:") {
		u = u[4:]
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '@' {
			u = u[:i]
			break
		}
	}
	if aor == u {
		aor = ""
	}
	return u, aor
}

func (g *gui) showIncoming(e phone.Event) {
	user, aor := caller(e)
	if g.incoming != nil {
		g.closeIncoming(false)
	}
	iw := &incomingWindow{id: e.CallID, from: user, err: newErrorLabel("")}
	iw.err.Hide()
	iw.w = g.fa.NewWindow("Incoming call — " + user)
	name := widget.NewLabelWithStyle(g.displayName(user), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	name.SizeName = theme.SizeNameHeadingText
	sub := widget.NewLabelWithStyle(firstNonEmpty(aor, user)+" is calling", fyne.TextAlignCenter, fyne.TextStyle{})
	sub.Truncation = fyne.TextTruncateEllipsis
	iw.accept = widget.NewButtonWithIcon("Accept", callIcon, func() {
		iw.accept.Disable()
		g.goFunc(func(context.Context) {
			err := g.p.Answer()
			g.do(func() {
				if err != nil {
					iw.err.SetText(errorText(err))
					iw.err.Show()
					iw.accept.Enable()
					return
				}
				g.call.begin(iw.id, user, phone.Incoming)
				g.closeIncoming(false)
				g.showCallView()
				g.win.Show()
			})
		})
	})
	iw.accept.Importance = widget.SuccessImportance
	iw.decline = widget.NewButtonWithIcon("Decline", callEndIcon, func() {
		iw.decline.Disable()
		g.goFunc(func(context.Context) {
			err := g.p.Decline()
			g.do(func() {
				if err != nil {
					iw.err.SetText(errorText(err))
					iw.err.Show()
					iw.decline.Enable()
					return
				}
				g.closeIncoming(false)
			})
		})
	})
	iw.decline.Importance = widget.DangerImportance
	iw.w.SetContent(container.NewVBox(name, sub, container.NewGridWithColumns(2, iw.decline, iw.accept), iw.err))
	iw.w.SetIcon(g.win.Icon())
	iw.w.Resize(fyne.NewSize(320, 150))
	iw.w.SetFixedSize(true)
	iw.w.CenterOnScreen()
	// Closing the window is declining the call.
	iw.w.SetCloseIntercept(func() { iw.decline.OnTapped() })
	g.incoming = iw
	if g.cfg.showNoFocus != nil {
		g.cfg.showNoFocus(iw.w)
	} else {
		iw.w.Show()
	}
	if r, ok := g.p.(Ringer); ok {
		r.Ring(true)
	}
}

// closeIncoming stops ringing and closes the incoming-call window; missed counts a missed call
// (shown on the tray).
func (g *gui) closeIncoming(missed bool) {
	if g.incoming == nil {
		return
	}
	if r, ok := g.p.(Ringer); ok {
		r.Ring(false)
	}
	g.incoming.w.Close()
	g.incoming = nil
	if missed {
		g.missed++
		if g.tray != nil {
			g.tray.update()
		}
	}
}
