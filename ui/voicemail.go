package ui

import (
	"context"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Voicemailer records, leaves and plays voice messages (issue 19); *phone.Phone satisfies it.
type Voicemailer interface {
	RecordVoicemail(ctx context.Context) ([]int16, error)
	SendVoicemailSamples(user string, samples []int16) (string, error)
	PlayVoicemail(ctx context.Context, path string) error
}

// voicemailReasons are the ends of an outgoing call after which the caller is offered to
// leave a voice message.
var voicemailReasons = map[string]bool{"declined": true, "busy": true, "no answer": true, "not registered": true, "unreachable": true}

// recording is the voice-message dialog while it records.
type recording struct {
	d      *dialog.CustomDialog
	send   *widget.Button
	cancel *widget.Button
	stop   context.CancelFunc
	keep   bool // Send (true) or Cancel (false) ended it
}

// newVoicemailOffer is the button under the dial field that offers, after an outgoing call
// ended unanswered, to leave a voice message; hidden until then.
func (g *gui) newVoicemailOffer() *widget.Button {
	b := widget.NewButtonWithIcon("", theme.MailComposeIcon(), nil)
	b.Importance = widget.LowImportance
	b.Hide()
	return b
}

// offerVoicemail offers, after an outgoing call to peer ended unanswered (reason), to leave
// a voice message; it takes no focus (the dial field keeps it for the next call).
func (g *gui) offerVoicemail(peer, reason string) {
	vm, ok := g.p.(Voicemailer)
	if !ok || !voicemailReasons[reason] {
		g.vmOffer.Hide()
		return
	}
	g.vmOffer.SetText(fmt.Sprintf("Leave %s a voice message", g.displayName(peer)))
	g.vmOffer.OnTapped = func() {
		g.vmOffer.Hide()
		g.recordVoicemail(vm, peer)
	}
	g.vmOffer.Show()
}

// recordVoicemail records from the microphone until Send (which leaves the message) or Cancel.
func (g *gui) recordVoicemail(vm Voicemailer, peer string) {
	r := &recording{}
	msg := widget.NewLabel(fmt.Sprintf("Recording your message for %s… Send when you are done (at most 1 minute).", g.displayName(peer)))
	msg.Wrapping = fyne.TextWrapWord
	r.send = widget.NewButton("Send", func() { r.keep = true; r.stop() })
	r.send.Importance = widget.HighImportance
	r.cancel = widget.NewButton("Cancel", func() { r.stop() })
	r.d = dialog.NewCustomWithoutButtons("Voice message", container.NewVBox(msg), g.win)
	r.d.SetButtons([]fyne.CanvasObject{r.cancel, r.send})
	r.d.Resize(fyne.NewSize(360, 180))
	r.d.Show()
	g.recording = r
	ctx, stop := context.WithCancel(g.ctx)
	r.stop = stop
	g.goFunc(func(context.Context) {
		defer stop()
		samples, err := vm.RecordVoicemail(ctx)
		g.do(func() {
			r.d.Hide()
			if g.recording == r {
				g.recording = nil
			}
			switch {
			case err != nil:
				g.setDialError(errorText(err))
			case !r.keep:
			case len(samples) == 0:
				g.setDialError("Nothing was recorded.")
			default:
				if _, err := vm.SendVoicemailSamples(peer, samples); err != nil {
					g.setDialError(errorText(err))
				}
			}
		})
	})
}

// playVoice plays a voice message of the history.
func (g *gui) playVoice(path string) {
	vm, ok := g.p.(Voicemailer)
	if !ok {
		return
	}
	g.goFunc(func(ctx context.Context) {
		if err := vm.PlayVoicemail(ctx, path); err != nil {
			g.do(func() { g.chat.showErr(errorText(err)) })
		}
	})
}
