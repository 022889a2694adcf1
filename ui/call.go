package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
)

// callView is the in-call view: peer, timer, mute, hold, keypad, hang up, input level and
// call quality. It replaces the main view while a call is up.
type callView struct {
	g    *gui
	root fyne.CanvasObject

	inCall   bool
	id       string
	peer     string
	dir      phone.Direction
	answered time.Time
	muted    bool
	held     bool
	reconn   bool // the call's connection died; the phone is moving it to a new one
	digits   string
	warnings []string // the banner's lines: what is wrong with the sound devices
	stopTick context.CancelFunc

	peerLabel  *widget.Label
	stateLabel *widget.Label
	timer      *widget.Label
	quality    *widget.Label
	level      *widget.ProgressBar
	levelNote  *widget.Label
	errLabel   *widget.Label
	banner     *widget.Label // the audio warning banner (no microphone, no speaker)
	bannerBox  *fyne.Container
	dtmfLabel  *widget.Label
	mute       *widget.Button
	hold       *widget.Button
	keypadBtn  *widget.Button
	hangup     *widget.Button
	keypad     *fyne.Container
	keys       map[string]*widget.Button
}

func newCallView(g *gui) *callView {
	c := &callView{g: g, keys: map[string]*widget.Button{}}
	c.peerLabel = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	c.peerLabel.SizeName = theme.SizeNameHeadingText
	c.peerLabel.Truncation = fyne.TextTruncateEllipsis
	c.stateLabel = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{})
	c.timer = widget.NewLabelWithStyle("0:00", fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	c.quality = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{})
	c.quality.SizeName = theme.SizeNameCaptionText
	c.quality.Wrapping = fyne.TextWrapWord
	c.level = widget.NewProgressBar()
	c.level.TextFormatter = func() string { return "" }
	c.levelNote = widget.NewLabel("")
	c.levelNote.SizeName = theme.SizeNameCaptionText
	c.errLabel = newErrorLabel("")
	c.errLabel.Hide()
	c.dtmfLabel = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	c.banner = widget.NewLabel("")
	c.banner.Importance = widget.WarningImportance
	c.banner.Wrapping = fyne.TextWrapWord
	c.bannerBox = container.NewVBox(c.banner)
	c.bannerBox.Hide()

	c.mute = widget.NewButtonWithIcon("Mute", theme.VolumeMuteIcon(), c.toggleMute)
	c.hold = widget.NewButtonWithIcon("Hold", theme.MediaPauseIcon(), c.toggleHold)
	c.keypadBtn = widget.NewButtonWithIcon("Keypad", dialpadIcon, c.toggleKeypad)
	c.hangup = widget.NewButtonWithIcon("Hang up", callEndIcon, c.doHangup)
	c.hangup.Importance = widget.DangerImportance

	var keys []fyne.CanvasObject
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"} {
		b := widget.NewButton(k, func() { c.sendDTMF(k) })
		c.keys[k] = b
		keys = append(keys, b)
	}
	c.keypad = container.NewGridWithColumns(3, keys...)
	c.keypad.Hide()

	levelRow := container.NewBorder(nil, nil, widget.NewLabel("Mic"), nil, c.level)
	top := container.NewVBox(
		layoutSpacer(),
		widget.NewIcon(theme.AccountIcon()),
		c.peerLabel, c.stateLabel, c.timer,
		widget.NewSeparator(),
	)
	middle := container.NewVBox(
		container.NewGridWithColumns(3, c.mute, c.hold, c.keypadBtn),
		c.keypad, c.dtmfLabel,
	)
	bottom := container.NewVBox(c.bannerBox, levelRow, c.levelNote, c.quality, c.errLabel, c.hangup)
	c.root = container.NewBorder(top, bottom, nil, nil, container.NewVScroll(middle))
	return c
}

func layoutSpacer() fyne.CanvasObject {
	return container.NewGridWrap(fyne.NewSize(1, theme.Padding()*4))
}

func (c *callView) active() bool           { return c.inCall }
func (c *callView) answeredYet() bool      { return !c.answered.IsZero() }
func (c *callView) matches(id string) bool { return id == "" || c.id == "" || id == c.id }

// begin shows a new call to or from peer (id may be empty until the phone names the call).
func (c *callView) begin(id, peer string, dir phone.Direction) {
	if c.inCall && c.peer == peer && (c.id == "" || id == "" || c.id == id) {
		if id != "" {
			c.id = id
		}
		return
	}
	c.stopTicker()
	*c = callView{g: c.g, root: c.root, keys: c.keys,
		peerLabel: c.peerLabel, stateLabel: c.stateLabel, timer: c.timer, quality: c.quality,
		level: c.level, levelNote: c.levelNote, errLabel: c.errLabel, dtmfLabel: c.dtmfLabel,
		banner: c.banner, bannerBox: c.bannerBox,
		mute: c.mute, hold: c.hold, keypadBtn: c.keypadBtn, hangup: c.hangup, keypad: c.keypad}
	c.inCall, c.id, c.peer, c.dir = true, id, peer, dir
	c.peerLabel.SetText(c.g.displayName(peer))
	if dir == phone.Outgoing {
		c.stateLabel.SetText("Calling…")
	} else {
		c.stateLabel.SetText("Connecting…")
	}
	c.timer.SetText("0:00")
	c.quality.SetText("")
	c.level.SetValue(0)
	c.levelNote.SetText("")
	c.errLabel.Hide()
	c.showWarnings()
	c.dtmfLabel.SetText("")
	c.keypad.Hide()
	c.mute.SetText("Mute")
	c.mute.Importance = widget.MediumImportance
	c.mute.Refresh()
	c.hold.SetText("Hold")
	c.hold.SetIcon(theme.MediaPauseIcon())
	c.setControls(false)
}

func (c *callView) setControls(on bool) {
	for _, b := range []*widget.Button{c.mute, c.hold, c.keypadBtn} {
		if on {
			b.Enable()
		} else {
			b.Disable()
		}
	}
}

func (c *callView) setRinging() { c.stateLabel.SetText("Ringing…") }

func (c *callView) setAnswered(at time.Time) {
	if at.IsZero() {
		at = time.Now()
	}
	c.answered = at
	c.stateLabel.SetText("Connected")
	c.setControls(true)
	c.tick()
	if c.g.cfg.tickers {
		c.startTicker()
	}
}

// setReconnecting shows that the call's connection died and is being replaced (an address
// changed), or that it is back.
func (c *callView) setReconnecting(on bool) {
	if on == c.reconn {
		return
	}
	c.reconn = on
	if on {
		c.stateLabel.SetText("Reconnecting…")
		return
	}
	c.setHeld(c.held)
}

func (c *callView) setHeld(held bool) {
	c.held = held
	if held {
		c.stateLabel.SetText("On hold")
		c.hold.SetText("Resume")
		c.hold.SetIcon(theme.MediaPlayIcon())
	} else {
		c.stateLabel.SetText("Connected")
		c.hold.SetText("Hold")
		c.hold.SetIcon(theme.MediaPauseIcon())
	}
}

// end forgets the call; the caller switches back to the main view.
func (c *callView) end() {
	c.stopTicker()
	c.inCall = false
	c.id = ""
}

func (c *callView) startTicker() {
	ctx, cancel := context.WithCancel(c.g.ctx)
	c.stopTick = cancel
	c.g.goFunc(func(context.Context) {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.g.do(c.tick)
			}
		}
	})
}

func (c *callView) stopTicker() {
	if c.stopTick != nil {
		c.stopTick()
		c.stopTick = nil
	}
}

// tick refreshes the timer, the input level and the quality line.
func (c *callView) tick() {
	if !c.inCall || c.answered.IsZero() {
		return
	}
	c.timer.SetText(formatDuration(time.Since(c.answered)))
	if lm, ok := c.g.p.(LevelMeter); ok {
		c.level.SetValue(lm.InputLevel())
		c.levelNote.SetText("")
	} else {
		c.levelNote.SetText("input level not available")
	}
	c.syncStatus()
}

// syncStatus shows the call's quality line and its audio warning as the phone has them.
func (c *callView) syncStatus() {
	st := c.g.p.Status()
	for _, ci := range st.Calls {
		if (c.id == "" || ci.ID == c.id) && ci.State != phone.CallEnded {
			if !c.answered.IsZero() {
				c.quality.SetText(qualityLine(ci.Stats))
			}
			c.setReconnecting(ci.Reconnecting)
			c.warnings = nil
			if ci.AudioWarning != "" {
				c.warnings = []string{ci.AudioWarning}
			}
			c.showWarnings()
			break
		}
	}
}

// addWarning puts a line in the call's banner (a warning event: no microphone, no speaker).
func (c *callView) addWarning(msg string) {
	if msg == "" || slices.Contains(c.warnings, msg) {
		return
	}
	c.warnings = append(c.warnings, msg)
	c.showWarnings()
}

func (c *callView) showWarnings() {
	if len(c.warnings) == 0 {
		c.bannerBox.Hide()
		return
	}
	c.banner.SetText(strings.Join(c.warnings, "\n") + "\n" + audioSettingsHint)
	c.bannerBox.Show()
}

// audioSettingsHint follows the call's sound-device warnings: the phone's messages name no
// front end, so the GUI says where devices are chosen.
const audioSettingsHint = "Settings → Audio chooses the devices."

// qualityLine is "Opus · loss 0.5% · jitter 4 ms · RTT 12 ms · direct".
func qualityLine(s *phone.RTPStats) string {
	if s == nil {
		return "no media statistics yet"
	}
	var parts []string
	if s.Codec != "" {
		parts = append(parts, s.Codec)
	}
	loss := 0.0
	if total := float64(s.Received) + float64(s.Lost); total > 0 && s.Lost > 0 {
		loss = 100 * float64(s.Lost) / total
	}
	parts = append(parts,
		fmt.Sprintf("loss %.1f%%", loss),
		fmt.Sprintf("jitter %.0f ms", s.JitterMs),
		fmt.Sprintf("RTT %.0f ms", s.RTTMs))
	if s.Relayed {
		parts = append(parts, "relayed")
	} else {
		parts = append(parts, "direct")
	}
	return strings.Join(parts, " · ")
}

func (c *callView) showErr(err error) {
	if err == nil {
		c.errLabel.Hide()
		return
	}
	c.errLabel.SetText(errorText(err))
	c.errLabel.Show()
}

// act runs a phone action off the UI thread and shows its error, or runs ok on success.
func (c *callView) act(f func() error, ok func()) {
	c.g.goFunc(func(context.Context) {
		err := f()
		c.g.do(func() {
			c.showErr(err)
			if err == nil && ok != nil {
				ok()
			}
		})
	})
}

func (c *callView) toggleMute() {
	want := !c.muted
	c.act(func() error { return c.g.p.SetMute(want) }, func() {
		c.muted = want
		if want {
			c.mute.SetText("Unmute")
			c.mute.Importance = widget.WarningImportance
		} else {
			c.mute.SetText("Mute")
			c.mute.Importance = widget.MediumImportance
		}
		c.mute.Refresh()
	})
}

func (c *callView) toggleHold() {
	if c.held {
		c.act(c.g.p.Resume, func() { c.setHeld(false) })
	} else {
		c.act(c.g.p.Hold, func() { c.setHeld(true) })
	}
}

func (c *callView) toggleKeypad() {
	if c.keypad.Visible() {
		c.keypad.Hide()
	} else {
		c.keypad.Show()
	}
	c.g.content.Refresh()
}

func (c *callView) sendDTMF(d string) {
	c.digits += d
	c.dtmfLabel.SetText(c.digits)
	c.act(func() error { return c.g.p.SendDTMF(d) }, nil)
}

func (c *callView) doHangup() {
	c.stateLabel.SetText("Hanging up…")
	c.act(c.g.p.Hangup, nil)
}
