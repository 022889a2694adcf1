package ui

import (
	"context"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
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

// offerVoicemail asks, after an outgoing call to peer ended unanswered (reason), whether to
// leave a voice message.
func (g *gui) offerVoicemail(peer, reason string) {
	vm, ok := g.p.(Voicemailer)
	if !ok || !voicemailReasons[reason] {
		return
	}
	d := dialog.NewConfirm("Voice message", fmt.Sprintf("Leave %s a voice message? It waits in the overlay until they can hear it (at most 1 minute).", g.displayName(peer)),
		func(ok bool) {
			if ok {
				g.recordVoicemail(vm, peer)
			}
		}, g.win)
	d.SetConfirmText("Record")
	d.Show()
	g.confirm = d
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
