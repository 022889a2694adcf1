package ui

import (
	"errors"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
)

// troubleTitles are the codes of trouble shown in a dialog (README "When something goes
// wrong"), with the dialog's title. The phone has already done what it can; the event's
// message says what happened and what the person may do. The window stays.
var troubleTitles = map[string]string{
	phone.CodeListenPortTaken:    "Listening on another port",
	phone.CodeProfileDBDamaged:   "Profile database repaired",
	phone.CodePinsDamaged:        "Pinned keys set aside",
	phone.CodeIdentityUnreadable: "Your identity cannot be read",
	phone.CodeConfigUnreachable:  "Overlay configuration not reachable",
	phone.CodePeerFailed:         "The phone cannot join an overlay",
	phone.CodeConfigCached:       "Using the saved overlay configuration",
	join.CodeUnreachable:         "Overlay configuration not reachable",
	join.CodeNotResolved:         "Overlay configuration not reachable",
}

// showLaterTrouble shows again the trouble the person put off ("Not now"); it reports whether
// there was one.
func (g *gui) showLaterTrouble() bool {
	if g.laterTrouble == nil {
		return false
	}
	return g.showTrouble(*g.laterTrouble)
}

// showTrouble shows a trouble event in a dialog; it reports whether e was one.
func (g *gui) showTrouble(e phone.Event) bool {
	title, ok := troubleTitles[e.Code]
	if !ok || (e.Kind != phone.EventError && e.Kind != phone.EventWarning) {
		return false
	}
	if s := g.settings; s != nil && s.joinProgress != nil && s.joinProgress.Visible() {
		return false // Settings → Overlay is joining: it shows the trouble itself
	}
	text := errorText(errors.New(e.Message))
	if e.Code == phone.CodeListenPortTaken {
		text += " Settings → Network sets the port." // the phone's messages name no front end
	}
	msg := widget.NewLabel(text)
	msg.Wrapping = fyne.TextWrapWord
	var d dialog.Dialog
	if im, ok := g.p.(IdentityMaker); ok && e.Code == phone.CodeIdentityUnreadable {
		d = dialog.NewCustomConfirm(title, "Make a new identity", "Not now", msg, func(yes bool) {
			if !yes {
				g.laterTrouble = &e // the state button at the top shows it again
				g.setDialError("Not in an overlay: your identity cannot be read. Restore identity.pem and " +
					"start again, or choose a new identity with the state button at the top (\"not joined\").")
				return
			}
			g.laterTrouble = nil
			g.setDialError("")
			if err := im.NewIdentity(); err != nil {
				dialog.ShowError(err, g.win)
				return
			}
			g.log.Info("a new identity was chosen")
		}, g.win)
	} else {
		d = dialog.NewCustom(title, "OK", container.NewVBox(msg), g.win)
	}
	d.Resize(fyne.NewSize(380, 300))
	d.Show()
	g.log.Info("trouble shown in a dialog", "code", e.Code, "title", title)
	return true
}
