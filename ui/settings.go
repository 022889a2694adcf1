package ui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/overlay/enroll"
)

// Settings defaults.
const (
	DefaultStorageLimitMB = 64
	maxStorageLimitMB     = 1 << 20
	modeLocal             = "Local network"
	modeNamed             = "Named overlay"
	defaultDevice         = "System default"
)

// ValidateOverlay checks an overlay name (a DNS-style name, RFC 6940 §11.1 "instance-name")
// or a configuration document URL (https, or http for tests).
func ValidateOverlay(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return errors.New("enter a name or a configuration URL")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("not a valid URL")
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return errors.New("a configuration URL starts with https://")
		}
		if u.Host == "" {
			return errors.New("the configuration URL has no host")
		}
		return nil
	}
	if len(s) > 253 {
		return errors.New("at most 253 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return errors.New("empty part between dots")
		}
		if len(label) > 63 {
			return errors.New("a part is longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("a part starts or ends with '-'")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return errors.New("use letters, digits, '-' and '.'")
			}
		}
	}
	return nil
}

// DefaultSIPAdapter is the address Settings proposes for the SIP adapter: every interface,
// the SIP port (RFC 3261 §19.1.2).
const DefaultSIPAdapter = "0.0.0.0:5060"

// ValidateSIPAdapter checks the SIP adapter's address: host:port with a port 1 to 65535.
func ValidateSIPAdapter(v string) error {
	host, port, err := net.SplitHostPort(strings.TrimSpace(v))
	if err != nil || (host != "" && net.ParseIP(host) == nil) {
		return errors.New("an address such as 0.0.0.0:5060")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("a port from 1 to 65535")
	}
	return nil
}

// ValidatePort checks a listen port: 0 (any free port) to 65535.
func ValidatePort(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 65535 {
		return errors.New("a number from 0 to 65535")
	}
	return nil
}

// ValidateStorageLimit checks the storage limit for others' records, in MB.
func ValidateStorageLimit(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > maxStorageLimitMB {
		return fmt.Errorf("a number from 1 to %d", maxStorageLimitMB)
	}
	return nil
}

// validateUserField is phone.ValidateUser with a message short enough for a form hint.
func validateUserField(s string) error {
	s = strings.TrimSpace(s)
	if err := phone.ValidateUser(s); err != nil {
		switch {
		case s == "":
			return errors.New("enter a user name")
		case len(s) > 64:
			return errors.New("at most 64 characters")
		}
		return errors.New("letters, digits and -_.!~*'+ only")
	}
	return nil
}

// settingsDialog is Settings: Overlay, Audio, Network, Peer, Identity.
type settingsDialog struct {
	g    *gui
	d    *dialog.CustomDialog
	tabs *container.AppTabs
	ring *fyne.Container // Settings → Ring: the picture of the ring (ring.go), redrawn live

	mode         *widget.RadioGroup
	joined       overlayChoice // the overlay the phone is in (or set up for) now
	overlayForm  *widget.Form
	overlay      *widget.Entry
	user         *widget.Entry
	password     *widget.Entry
	join         *widget.Button
	joinProgress *widget.ProgressBarInfinite
	overlayErr   *widget.Label
	invite       *widget.Entry // a join link from the operator (chordphone:join?...)
	invited      enroll.Invitation
	pinNote      *widget.Label // which CA the invitation trusts
	confirm      dialog.Dialog // the CA fingerprint to confirm, while shown

	input, output *widget.Select
	testTone      *widget.Button
	level         *widget.ProgressBar
	echo, noise   *widget.Check
	audioNote     *widget.Label

	port *widget.Entry

	storeForOthers *widget.Check
	limit          *widget.Entry
	sipAdapter     *widget.Check // serve ordinary SIP phones (app/sipadapter)
	sipAddr        *widget.Entry

	nodeID      *widget.Label
	fingerprint *widget.Label

	save     *widget.Button
	cancel   *widget.Button
	errLabel *widget.Label
	note     *widget.Label
}

func (g *gui) showSettings() {
	s := newSettingsDialog(g)
	g.settings = s
	s.d.Show()
}

func newSettingsDialog(g *gui) *settingsDialog {
	s := &settingsDialog{g: g}
	overlayTab := s.overlayTab()
	audioTab := s.audioTab()
	networkTab := s.networkTab()
	peerTab := s.peerTab()
	identityTab := s.identityTab()
	s.tabs = container.NewAppTabs(
		container.NewTabItem("Overlay", overlayTab),
		container.NewTabItem("Audio", audioTab),
		container.NewTabItem("Network", networkTab),
		container.NewTabItem("Peer", peerTab),
		container.NewTabItem("Identity", identityTab),
		container.NewTabItem("Ring", s.ringTab()),
	)
	s.errLabel = newErrorLabel("")
	s.errLabel.Wrapping = fyne.TextWrapOff
	s.errLabel.Truncation = fyne.TextTruncateEllipsis
	s.errLabel.Hide()
	s.note = widget.NewLabel("")
	s.note.Wrapping = fyne.TextWrapWord
	s.note.Hide()
	s.save = widget.NewButton("Save", s.doSave)
	s.save.Importance = widget.HighImportance
	s.cancel = widget.NewButton("Cancel", func() { s.d.Hide() })
	s.d = dialog.NewCustomWithoutButtons("Settings", container.NewBorder(nil, container.NewVBox(s.errLabel, s.note), nil, nil, s.tabs), g.win)
	s.d.SetButtons([]fyne.CanvasObject{s.cancel, s.save})
	s.d.Resize(fyne.NewSize(400, 500))
	s.modeChanged()
	return s
}

// overlayTab builds Settings → Overlay: the overlay to join and the account in it.
func (s *settingsDialog) overlayTab() fyne.CanvasObject {
	g, pr := s.g, s.g.prefs
	s.mode = widget.NewRadioGroup([]string{modeLocal, modeNamed}, func(string) { s.modeChanged() })
	s.mode.Required = true
	s.overlay = widget.NewEntry()
	s.overlay.SetPlaceHolder("example.org or https://…")
	s.overlay.Validator = func(v string) error {
		if s.mode.Selected != modeNamed {
			return nil
		}
		return ValidateOverlay(v)
	}
	s.user = widget.NewEntry()
	s.user.Validator = validateUserField
	s.password = widget.NewPasswordEntry()
	s.password.SetPlaceHolder("enrollment")
	s.password.OnSubmitted = func(string) { // Return after the password joins
		if s.mode.Selected == modeNamed && !s.join.Disabled() {
			s.doJoin()
		}
	}
	s.overlayErr = newErrorLabel("")
	s.overlayErr.Hide()
	s.joinProgress = widget.NewProgressBarInfinite()
	s.joinProgress.Stop()
	s.joinProgress.Hide()
	s.join = widget.NewButtonWithIcon("Join", theme.LoginIcon(), s.doJoin)
	s.user.SetText(g.userName())
	s.joined = currentOverlay(pr, g.status)
	s.overlay.SetText(firstNonEmpty(s.joined.name, s.joined.url))
	if s.joined.local() {
		s.mode.SetSelected(modeLocal)
	} else {
		s.mode.SetSelected(modeNamed)
	}
	s.invite = widget.NewEntry()
	s.invite.SetPlaceHolder("chordphone:join?… from the operator")
	s.invite.Validator = func(v string) error {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		_, err := enroll.ParseInvitation(v)
		return err
	}
	s.invite.OnChanged = s.inviteChanged
	s.pinNote = widget.NewLabel("")
	s.pinNote.Wrapping = fyne.TextWrapWord
	s.pinNote.Hide()
	s.overlayForm = widget.NewForm(
		hinted("Invitation", s.invite, "paste the link, or leave empty"),
		widget.NewFormItem("Overlay", s.overlay),
		widget.NewFormItem("User name", s.user),
		widget.NewFormItem("Password", s.password),
	)
	return container.NewVBox(
		s.mode,
		s.overlayForm,
		s.pinNote, container.NewHBox(s.join), s.joinProgress, s.overlayErr,
	)
}

// audioTab builds Settings → Audio: sound devices, level, test tone, echo and noise.
func (s *settingsDialog) audioTab() fyne.CanvasObject {
	g, pr := s.g, s.g.prefs
	s.input = widget.NewSelect(nil, nil)
	s.output = widget.NewSelect(nil, nil)
	s.audioNote = widget.NewLabel("")
	s.audioNote.Wrapping = fyne.TextWrapWord
	s.audioNote.Hide()
	ins, outs := []string{defaultDevice}, []string{defaultDevice}
	if al, ok := g.p.(AudioDeviceLister); ok {
		i, o, err := al.AudioDevices()
		if err != nil {
			s.audioNote.SetText("Could not list sound devices: " + err.Error())
			s.audioNote.Show()
		}
		ins, outs = append(ins, i...), append(outs, o...)
	} else {
		s.audioNote.SetText("This build cannot choose sound devices; the system default is used.")
		s.audioNote.Show()
	}
	s.input.SetOptions(ins)
	s.output.SetOptions(outs)
	s.input.SetSelected(deviceLabel(pr.String(PrefAudioIn)))
	s.output.SetSelected(deviceLabel(pr.String(PrefAudioOut)))
	s.level = widget.NewProgressBar()
	s.level.TextFormatter = func() string { return "" }
	s.testTone = widget.NewButtonWithIcon("Test tone", theme.MediaPlayIcon(), s.doTestTone)
	if _, ok := g.p.(TonePlayer); !ok {
		s.testTone.Disable()
	}
	s.echo = widget.NewCheck("Echo cancellation", nil)
	s.echo.SetChecked(pr.BoolWithFallback(PrefEchoCancel, true))
	s.noise = widget.NewCheck("Noise suppression", nil)
	s.noise.SetChecked(pr.BoolWithFallback(PrefNoiseSuppress, true))
	return container.NewVBox(
		widget.NewForm(
			widget.NewFormItem("Input", s.input),
			widget.NewFormItem("Output", s.output),
			widget.NewFormItem("Level", s.level),
		),
		container.NewHBox(s.testTone), s.echo, s.noise, s.audioNote,
	)
}

// networkTab builds Settings → Network: the listen port.
func (s *settingsDialog) networkTab() fyne.CanvasObject {
	pr := s.g.prefs
	s.port = widget.NewEntry()
	s.port.Validator = ValidatePort
	s.port.SetText(strconv.Itoa(pr.Int(PrefListenPort)))
	netNote := widget.NewLabel("The UDP/TCP port other peers reach this phone on; 0 picks a free port. A --listen flag overrides it. Takes effect at the next start.")
	netNote.Wrapping = fyne.TextWrapWord
	return container.NewVBox(widget.NewForm(
		hinted("Listen port", s.port, "0 = any free port"),
	), netNote)
}

// peerTab builds Settings → Peer: storing records for others and how much, and the SIP
// adapter.
func (s *settingsDialog) peerTab() fyne.CanvasObject {
	g, pr := s.g, s.g.prefs
	s.storeForOthers = widget.NewCheck("Store records for others while idle", nil)
	s.storeForOthers.SetChecked(pr.BoolWithFallback(PrefStoreForOthers, true))
	s.limit = widget.NewEntry()
	s.limit.Validator = ValidateStorageLimit
	s.limit.SetText(strconv.Itoa(pr.IntWithFallback(PrefStorageLimitMB, DefaultStorageLimitMB)))
	peerNote := widget.NewLabel(fmt.Sprintf("Now storing %s for others.", plural(g.status.StoredRecords, "record", "records")))
	saved := pr.String(PrefSIPAdapter)
	s.sipAdapter = widget.NewCheck("Serve SIP phones (desk phones, Linphone) on", nil)
	s.sipAdapter.SetChecked(saved != "")
	s.sipAddr = widget.NewEntry()
	s.sipAddr.Validator = func(v string) error {
		if !s.sipAdapter.Checked {
			return nil
		}
		return ValidateSIPAdapter(v)
	}
	s.sipAddr.SetText(firstNonEmpty(saved, DefaultSIPAdapter))
	sipNote := widget.NewLabel("SIP phones register with an account made by: chordphone adapter user add NAME (see the README). UDP and TCP on this port, TLS on the next. Takes effect at the next start; a --sip-adapter flag overrides it.")
	sipNote.Wrapping = fyne.TextWrapWord
	return container.NewVBox(s.storeForOthers, widget.NewForm(
		hinted("Storage limit (MB)", s.limit, "space for other users' registrations"),
	), peerNote, s.sipAdapter, widget.NewForm(hinted("SIP address", s.sipAddr, "host:port, e.g. 0.0.0.0:5060")), sipNote)
}

// ringTab builds Settings → Ring: the picture of this peer's place on the ring (ring.go).
func (s *settingsDialog) ringTab() fyne.CanvasObject {
	s.ring = container.NewStack(newRing(s.g.status))
	return s.ring
}

// refreshRing redraws the ring from the phone's status.
func (s *settingsDialog) refreshRing(st phone.Status) {
	if s == nil || s.ring == nil {
		return
	}
	s.ring.Objects = []fyne.CanvasObject{newRing(st)}
	s.ring.Refresh()
}

// identityTab builds Settings → Identity: the user, Node-ID and certificate fingerprint.
func (s *settingsDialog) identityTab() fyne.CanvasObject {
	g := s.g
	nid := g.status.NodeID
	if nid == "" {
		nid = "not assigned yet"
	}
	s.nodeID = widget.NewLabel(nid)
	s.nodeID.Selectable = true
	s.nodeID.Wrapping = fyne.TextWrapBreak
	fp := "not available in this build"
	if f, ok := g.p.(Fingerprinter); ok && f.Fingerprint() != "" {
		fp = f.Fingerprint()
	}
	s.fingerprint = widget.NewLabel(fp)
	s.fingerprint.Selectable = true
	s.fingerprint.Wrapping = fyne.TextWrapBreak
	return widget.NewForm(
		widget.NewFormItem("User", widget.NewLabel(firstNonEmpty(g.status.AoR, g.userName(), "—"))),
		widget.NewFormItem("Node-ID", s.nodeID),
		widget.NewFormItem("Certificate", s.fingerprint),
	)
}

func (s *settingsDialog) modeChanged() {
	if s.overlay == nil {
		return
	}
	if s.mode.Selected == modeNamed {
		s.overlay.Enable()
		s.password.Enable()
	} else {
		s.overlay.Disable()
		s.password.Disable()
	}
	s.overlay.Validate()
	if s.overlayForm != nil {
		s.overlayForm.Refresh()
	}
}

// validate checks every field, marks the wrong ones inline and shows the first wrong tab.
func (s *settingsDialog) validate() bool {
	type field struct {
		e   *widget.Entry
		tab int
		lbl string
	}
	fields := []field{{s.overlay, 0, "Overlay"}, {s.user, 0, "User name"}, {s.port, 2, "Listen port"}, {s.limit, 3, "Storage limit"},
		{s.sipAddr, 3, "SIP address"}}
	var bad []string
	first := -1
	for _, f := range fields {
		if err := f.e.Validate(); err != nil {
			f.e.SetValidationError(err) // the form shows the message under the field
			bad = append(bad, f.lbl)
			if first < 0 {
				first = f.tab
			}
		}
	}
	if len(bad) == 0 {
		s.errLabel.Hide()
		return true
	}
	s.tabs.SelectIndex(first)
	s.errLabel.SetText("Please correct: " + strings.Join(bad, ", ") + ".")
	s.errLabel.Show()
	s.d.Refresh()
	return false
}

func (s *settingsDialog) doSave() {
	if !s.validate() {
		return
	}
	g, pr := s.g, s.g.prefs
	var later []string
	choice := s.choice()
	overlayChanged := choice != s.joined
	_, canJoin := g.p.(OverlayJoiner)

	user := strings.TrimSpace(s.user.Text)
	if user != g.userName() && !(overlayChanged && canJoin) { // JoinOverlay sets the user too
		if us, ok := g.p.(UserSetter); ok {
			if err := us.SetUser(user); err != nil {
				s.user.SetValidationError(err)
				s.tabs.SelectIndex(0)
				s.errLabel.SetText("User name: " + errorText(err))
				s.errLabel.Show()
				return
			}
		} else {
			pr.SetString(PrefUser, user)
			later = append(later, "user name")
		}
	}

	in, out := devName(s.input.Selected), devName(s.output.Selected)
	if in != pr.String(PrefAudioIn) || out != pr.String(PrefAudioOut) {
		if al, ok := g.p.(AudioDeviceLister); ok {
			err := al.SetAudioDevices(in, out) // a call switches to them at once
			if g.call.active() {
				g.call.syncStatus()
			}
			if err != nil {
				s.tabs.SelectIndex(1)
				s.errLabel.SetText("Audio: " + errorText(err))
				s.errLabel.Show()
				return
			}
		}
		pr.SetString(PrefAudioIn, in)
		pr.SetString(PrefAudioOut, out)
	}
	pr.SetBool(PrefEchoCancel, s.echo.Checked)
	pr.SetBool(PrefNoiseSuppress, s.noise.Checked)

	port, _ := strconv.Atoi(strings.TrimSpace(s.port.Text))
	if port != pr.Int(PrefListenPort) {
		later = append(later, "listen port")
	}
	pr.SetInt(PrefListenPort, port)
	limit, _ := strconv.Atoi(strings.TrimSpace(s.limit.Text))
	if on := s.storeForOthers.Checked; on != pr.BoolWithFallback(PrefStoreForOthers, true) {
		if ss, ok := g.p.(StoreForOthersSetter); ok {
			if err := ss.SetStoreForOthers(on); err != nil {
				s.errLabel.SetText("Peer: " + errorText(err))
				s.errLabel.Show()
				return
			}
		} else {
			later = append(later, "storing choice")
		}
	}
	pr.SetBool(PrefStoreForOthers, s.storeForOthers.Checked)
	pr.SetInt(PrefStorageLimitMB, limit)
	sip := ""
	if s.sipAdapter.Checked {
		sip = strings.TrimSpace(s.sipAddr.Text)
	}
	if sip != pr.String(PrefSIPAdapter) {
		later = append(later, "SIP adapter")
	}
	pr.SetString(PrefSIPAdapter, sip)

	if overlayChanged {
		if canJoin {
			s.tabs.SelectIndex(0)
			s.doJoinThen(func() { s.finish(later) })
			return
		}
		pr.SetString(PrefOverlay, choice.name)
		pr.SetString(PrefConfig, choice.url)
		later = append(later, "overlay")
	}
	s.finish(later)
}

// finish closes Settings and says which changes wait for the next start.
func (s *settingsDialog) finish(later []string) {
	g := s.g
	s.d.Hide()
	g.status = g.p.Status()
	g.refreshStatus()
	if len(later) > 0 {
		dialog.ShowInformation("Settings saved", "Chordphone uses the new "+strings.Join(later, ", ")+" from its next start.", g.win)
	}
}

// overlayChoice is where to be: a named overlay, a configuration URL, or neither (the local
// network's overlay).
type overlayChoice struct{ name, url string }

func (c overlayChoice) local() bool { return c.name == "" && c.url == "" }

// currentOverlay is the overlay the phone is set up for: the profile's choice, else the one it
// runs in (from --overlay).
func currentOverlay(pr fyne.Preferences, st phone.Status) overlayChoice {
	c := overlayChoice{name: pr.String(PrefOverlay), url: pr.String(PrefConfig)}
	if c.name != "" {
		c.url = "" // joined by name (the phone keeps the URL it derived from it)
	}
	if c.local() && st.Overlay != "" && st.Overlay != phone.LocalOverlay {
		c.name = st.Overlay
	}
	return c
}

// choice is the overlay the dialog's fields select.
func (s *settingsDialog) choice() overlayChoice {
	if s.mode.Selected != modeNamed {
		return overlayChoice{}
	}
	v := strings.TrimSpace(s.overlay.Text)
	if strings.Contains(v, "://") {
		if v == s.joined.url || (s.joined.name != "" && v == s.joined.name) {
			return s.joined
		}
		return overlayChoice{url: v}
	}
	return overlayChoice{name: v}
}

func devName(s string) string {
	if s == defaultDevice {
		return ""
	}
	return s
}

func deviceLabel(s string) string {
	if s == "" {
		return defaultDevice
	}
	return s
}

// doJoin joins the chosen overlay now, showing progress and errors in the Overlay tab.
func (s *settingsDialog) doJoin() {
	s.doJoinThen(func() {
		s.note.SetText("Joined " + s.g.status.Overlay + ".")
		s.note.Show()
	})
}

// doJoinThen joins the chosen overlay and runs done once joined.
func (s *settingsDialog) doJoinThen(done func()) {
	s.overlayErr.Hide()
	if err := s.overlay.Validate(); err != nil {
		s.overlay.SetValidationError(err)
		s.overlayErr.SetText(errorText(err))
		s.overlayErr.Show()
		return
	}
	if err := s.user.Validate(); err != nil {
		s.user.SetValidationError(err)
		s.overlayErr.SetText("User name: " + errorText(err))
		s.overlayErr.Show()
		return
	}
	j, ok := s.g.p.(OverlayJoiner)
	if !ok {
		s.overlayErr.SetText("Joining another overlay needs a restart in this build: save, then start Chordphone again (or use --overlay/--config).")
		s.overlayErr.Show()
		return
	}
	choice := s.choice()
	req := phone.JoinRequest{Overlay: choice.name, Config: choice.url, User: strings.TrimSpace(s.user.Text), Password: s.password.Text}
	if choice.local() {
		req.Password = "" // the local network's overlay has no enrollment
	}
	if s.invited.Overlay != "" && strings.EqualFold(choice.name, s.invited.Overlay) {
		req.Config, req.CAFingerprint = s.invited.Config, s.invited.CAFingerprint
	}
	s.runJoin(choice, req, j, done)
}

// runJoin joins in the background; a CA the phone does not trust yet is shown to the person
// to compare with what the operator gave them, and trusted only when they confirm it.
func (s *settingsDialog) runJoin(choice overlayChoice, req phone.JoinRequest, j OverlayJoiner, done func()) {
	s.overlayErr.Hide()
	s.join.Disable()
	s.joinProgress.Show()
	s.joinProgress.Start()
	s.g.goFunc(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var err error
		if tj, ok := j.(TrustingJoiner); ok {
			err = tj.Join(ctx, req)
		} else {
			err = j.JoinOverlay(ctx, req.Overlay, req.Config, req.User, req.Password)
		}
		s.g.do(func() {
			s.joinProgress.Stop()
			s.joinProgress.Hide()
			s.join.Enable()
			var je *join.Error
			if errors.As(err, &je) && je.Code == join.CodeCANotTrusted && je.CAFingerprint != "" && req.CAFingerprint == "" {
				s.confirmCA(choice, req, je, j, done)
				return
			}
			if err != nil {
				s.overlayErr.SetText("Could not join: " + errorText(err))
				s.overlayErr.Show()
				return
			}
			s.joined = choice
			s.g.status = s.g.p.Status()
			s.g.refreshStatus()
			done()
		})
	})
}

// doTestTone plays the test tone and shows the microphone level meanwhile.
func (s *settingsDialog) doTestTone() {
	tp, ok := s.g.p.(TonePlayer)
	if !ok {
		return
	}
	s.testTone.Disable()
	s.g.goFunc(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- tp.PlayTestTone(ctx) }() // owner: this goroutine; ends with ctx
		lm, hasLevel := s.g.p.(LevelMeter)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case err := <-done:
				s.g.do(func() {
					s.testTone.Enable()
					s.level.SetValue(0)
					if err != nil {
						s.audioNote.SetText("Test tone: " + errorText(err))
						s.audioNote.Show()
					}
				})
				return
			case <-t.C:
				if hasLevel {
					v := lm.InputLevel()
					s.g.do(func() { s.level.SetValue(v) })
				}
			}
		}
	})
}

func hinted(label string, w fyne.CanvasObject, hint string) *widget.FormItem {
	fi := widget.NewFormItem(label, w)
	fi.HintText = hint
	return fi
}

// inviteChanged fills the dialog from a pasted join link: the overlay, the user when the link
// names one, and the CA it pins.
func (s *settingsDialog) inviteChanged(v string) {
	inv, err := enroll.ParseInvitation(v)
	if err != nil {
		s.invited = enroll.Invitation{}
		s.pinNote.Hide()
		return
	}
	s.invited = inv
	s.mode.SetSelected(modeNamed)
	s.overlay.SetText(inv.Overlay)
	if inv.User != "" {
		s.user.SetText(inv.User)
	}
	s.pinNote.SetText("The invitation trusts only the certificate authority of " + inv.Overlay + ": SHA-256 " + join.FingerprintText(inv.CAFingerprint))
	s.pinNote.Show()
	s.overlayErr.Hide()
}

// SetInvitation puts a join link into the dialog (an invitation opened with the phone).
func (s *settingsDialog) SetInvitation(link string) {
	s.tabs.SelectIndex(0)
	s.invite.SetText(link)
	if err := s.invite.Validate(); err != nil {
		s.invite.SetValidationError(err)
		s.overlayErr.SetText("Invitation: " + errorText(err))
		s.overlayErr.Show()
	}
}

// confirmCA shows the fingerprint of the CA the overlay's server presents and asks the person
// to compare it with what the operator gave them; the phone trusts it (and remembers it for
// the overlay once joined) only when they say it is the same.
func (s *settingsDialog) confirmCA(choice overlayChoice, req phone.JoinRequest, je *join.Error, j OverlayJoiner, done func()) {
	name := firstNonEmpty(je.Overlay, req.Overlay, req.Config)
	fp := widget.NewLabelWithStyle("SHA-256 "+join.FingerprintText(je.CAFingerprint), fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	fp.Wrapping = fyne.TextWrapWord
	text := widget.NewLabel("The server of " + name + " presents this certificate authority. Compare its fingerprint with the one the operator gave you. Trust it only if they are the same.")
	text.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("Trust "+name+"?", "Same: trust and join", "Cancel", container.NewVBox(text, fp), func(ok bool) {
		s.confirm = nil
		if !ok {
			s.overlayErr.SetText("Not joined: the certificate authority of " + name + " was not confirmed.")
			s.overlayErr.Show()
			return
		}
		req.CAFingerprint = je.CAFingerprint
		s.runJoin(choice, req, j, done)
	}, s.g.win)
	d.Resize(fyne.NewSize(380, 260))
	s.confirm = d
	d.Show()
}
