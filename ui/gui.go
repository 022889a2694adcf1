package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/app/version"
	"github.com/chordphone/chordphone/assets"
)

// config is how the GUI is put together; Run and tests fill it differently.
type config struct {
	store       *store.Store
	prefs       fyne.Preferences // nil: kept in store's settings (or Fyne's when there is no store)
	tickers     bool             // poll status and refresh the call timer and level meter
	tray        bool             // show a tray icon (closeWindow decides whether closing hides)
	trayHost    trayHost         // whether a tray shows the icon now; nil: always
	do          func(func())     // runs UI updates on Fyne's thread; fyne.Do when nil
	showNoFocus func(fyne.Window)
	log         *slog.Logger
}

// gui is the running desktop interface of one phone.
type gui struct {
	fa    fyne.App
	p     Phone
	st    *store.Store
	prefs fyne.Preferences
	log   *slog.Logger
	cfg   config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	unsub  func()

	win     fyne.Window
	content *fyne.Container // stack: main view or call view

	// status line
	stateIcon  *widget.Icon
	whoLabel   *widget.Label
	stateBtn   *widget.Button
	bottomInfo *widget.Label
	status     phone.Status

	// dial row
	dial        *widget.SelectEntry
	completions []string
	dialErr     *widget.Label
	callBtn     *widget.Button

	tabs         *container.AppTabs
	mainView     fyne.CanvasObject
	recent       *widget.List
	history      []store.HistoryEntry
	contactList  *widget.List
	contacts     []store.Contact
	contactsNote *widget.Label

	call      *callView
	chat      *chatView      // chat.go
	recording *recording     // a voice message being recorded (voicemail.go)
	vmOffer   *widget.Button // "Leave NAME a voice message" after an unanswered call
	unread    map[string]int // messages not read yet, by peer (chat.go)
	incoming  *incomingWindow
	missed    int
	tray      *trayMenu

	settings    *settingsDialog
	firstRun    *firstRunDialog
	contactForm *contactForm
	confirm     *dialog.ConfirmDialog
	handled     int // events handled (tests wait on it)

	callErrShown bool         // an error event for the current call is showing under the entry
	laterTrouble *phone.Event // trouble put off with "Not now" (trouble.go)
}

// firstRunDialog asks for the user name on first start.
type firstRunDialog struct {
	d     *dialog.CustomDialog
	entry *widget.Entry
	err   *widget.Label
	ok    *widget.Button
}

func newGUI(fa fyne.App, p Phone, cfg config) (*gui, error) {
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	g := &gui{fa: fa, p: p, st: cfg.store, log: cfg.log, cfg: cfg}
	g.prefs = cfg.prefs
	if g.prefs == nil {
		g.prefs = fa.Preferences() // until the profile database is there (attachStore)
	}
	if g.st != nil {
		if err := g.attachStore(g.st); err != nil {
			return nil, err
		}
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())

	g.win = fa.NewWindow(version.Name)
	g.win.SetIcon(assets.Icon)
	g.buildMain()
	g.call = newCallView(g)
	g.chat = newChatView(g)
	g.content = container.NewStack(g.mainView, g.call.root, g.chat.root)
	g.call.root.Hide()
	g.chat.root.Hide()
	g.win.SetContent(g.content)
	g.win.Resize(fyne.NewSize(420, 640))
	g.win.Canvas().Focus(g.dial)
	g.win.SetMaster()

	if cfg.tray {
		g.tray = newTray(g)
		g.win.SetCloseIntercept(g.closeWindow)
	}

	g.status = p.Status()
	g.refreshStatus()
	g.reloadHistory()
	g.loadUnread()
	g.reloadContacts()
	g.start()
	if g.userName() == "" {
		g.askUserName()
	}
	return g, nil
}

// attachStore starts using the profile database: preferences, history and contacts.
func (g *gui) attachStore(st *store.Store) error {
	if g.cfg.prefs == nil {
		sp, err := newStorePrefs(st, g.log)
		if err != nil {
			return fmt.Errorf("reading settings: %w", err)
		}
		g.prefs = sp
	}
	g.st = st
	if g.recent != nil {
		g.contactsNote.Hide()
		g.reloadHistory()
		g.loadUnread()
		g.reloadContacts()
	}
	return nil
}

// maybeAttachStore attaches the phone's profile database once the phone has opened it.
func (g *gui) maybeAttachStore() {
	if g.st != nil {
		return
	}
	if st := storeOf(g.p); st != nil {
		if err := g.attachStore(st); err != nil {
			g.log.Error("using the profile database", "err", err)
		}
	}
}

// do runs f on Fyne's thread, unless the GUI is closed.
func (g *gui) do(f func()) {
	if g.closed.Load() {
		return
	}
	run := func() {
		if !g.closed.Load() {
			f()
		}
	}
	if g.cfg.do != nil {
		g.cfg.do(run)
		return
	}
	fyne.Do(run)
}

// start subscribes to the phone's events and starts the status poller.
func (g *gui) start() {
	events, unsub := g.p.Subscribe(128)
	g.unsub = unsub
	g.wg.Add(1)
	go func() { // owner: gui; ends when the phone closes the subscription or Close unsubscribes
		defer g.wg.Done()
		for e := range events {
			g.do(func() { g.handle(e) })
		}
	}()
	if g.cfg.tickers {
		g.wg.Add(1)
		go func() { // owner: gui; ends with g.ctx
			defer g.wg.Done()
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-g.ctx.Done():
					return
				case <-t.C:
					st := g.p.Status()
					g.do(func() { g.maybeAttachStore(); g.status = st; g.refreshStatus() })
				}
			}
		}()
	}
}

// Close stops the GUI's background work; the windows are left to the app.
func (g *gui) Close() {
	g.closed.Store(true)
	g.cancel()
	if g.unsub != nil {
		g.unsub()
	}
	g.wg.Wait()
}

// go runs f in a goroutine owned by the GUI (ends with g.ctx or sooner).
func (g *gui) goFunc(f func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
}

func (g *gui) userName() string {
	if g.status.User != "" {
		return g.status.User
	}
	return g.prefs.String(PrefUser)
}

// ---- main view ----

func (g *gui) buildMain() {
	g.stateIcon = widget.NewIcon(stateResource(phone.NotJoined))
	g.whoLabel = widget.NewLabel("")
	g.whoLabel.TextStyle = fyne.TextStyle{Bold: true}
	g.whoLabel.Truncation = fyne.TextTruncateEllipsis
	g.stateBtn = widget.NewButton("", g.showPeerStatus)
	g.stateBtn.Importance = widget.LowImportance
	top := container.NewBorder(nil, nil, g.stateIcon, g.stateBtn, g.whoLabel)

	g.dial = widget.NewSelectEntry(nil)
	g.dial.SetPlaceHolder("user name")
	g.dial.OnSubmitted = func(s string) { g.dialUser(s) }
	g.dial.OnChanged = func(s string) { g.complete(s) }
	g.callBtn = widget.NewButtonWithIcon("Call", theme.NewSuccessThemedResource(callIcon), func() { g.dialUser(g.dial.Text) })
	g.callBtn.Importance = widget.SuccessImportance
	g.dialErr = widget.NewLabel("")
	g.dialErr.Importance = widget.DangerImportance
	g.dialErr.Wrapping = fyne.TextWrapWord
	g.dialErr.Hide()
	dialRow := container.NewBorder(nil, nil, nil, g.callBtn, g.dial)

	g.recent = widget.NewList(
		func() int { return len(g.history) },
		func() fyne.CanvasObject { return newHistoryRow() },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(g.history) {
				o.(*historyRow).set(g.history[i], g.displayName(g.history[i].Peer))
			}
		})
	g.recent.OnSelected = func(i widget.ListItemID) {
		g.recent.UnselectAll()
		if i < len(g.history) {
			g.dial.SetText(g.history[i].Peer)
			g.dialUser(g.history[i].Peer)
		}
	}

	g.contactList = widget.NewList(
		func() int { return len(g.contacts) },
		func() fyne.CanvasObject { return newContactRow(g) },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(g.contacts) {
				o.(*contactRow).set(g.contacts[i])
			}
		})
	g.contactsNote = widget.NewLabel("")
	g.contactsNote.Wrapping = fyne.TextWrapWord
	g.contactsNote.Hide()
	addBtn := widget.NewButtonWithIcon("Add contact", theme.ContentAddIcon(), func() { g.editContact(store.Contact{}) })
	contactsTab := container.NewBorder(container.NewVBox(addBtn, g.contactsNote), nil, nil, nil, g.contactList)

	g.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Recent", theme.HistoryIcon(), g.recent),
		container.NewTabItemWithIcon("Contacts", theme.AccountIcon(), contactsTab),
	)
	g.tabs.SelectIndex(g.prefs.Int(PrefLastTab))
	g.tabs.OnSelected = func(*container.TabItem) { g.prefs.SetInt(PrefLastTab, g.tabs.SelectedIndex()) }

	g.bottomInfo = widget.NewLabel("")
	g.bottomInfo.Wrapping = fyne.TextWrapWord
	g.bottomInfo.SizeName = theme.SizeNameCaptionText
	settingsBtn := widget.NewButtonWithIcon("", theme.SettingsIcon(), g.showSettings)
	settingsBtn.Importance = widget.LowImportance
	aboutBtn := widget.NewButtonWithIcon("", theme.InfoIcon(), g.showAbout)
	aboutBtn.Importance = widget.LowImportance
	bottom := container.NewBorder(nil, nil, nil, container.NewHBox(aboutBtn, settingsBtn), g.bottomInfo)

	g.vmOffer = g.newVoicemailOffer() // voicemail.go
	head := container.NewVBox(top, widget.NewSeparator(), dialRow, g.dialErr, g.vmOffer)
	g.mainView = container.NewBorder(head, container.NewVBox(widget.NewSeparator(), bottom), nil, nil, g.tabs)
}

// stateResource is the state dot: grey, orange (joined) or green (registered).
func stateResource(s phone.PeerState) fyne.Resource {
	switch s {
	case phone.Registered:
		return theme.NewSuccessThemedResource(theme.RadioButtonCheckedIcon())
	case phone.Joined:
		return theme.NewWarningThemedResource(theme.RadioButtonCheckedIcon())
	default:
		return theme.NewDisabledResource(theme.RadioButtonCheckedIcon())
	}
}

func (g *gui) refreshStatus() {
	s := g.status
	g.stateIcon.SetResource(stateResource(s.State))
	who := g.userName()
	if who == "" {
		who = "no user name"
	}
	if s.AoR != "" {
		who += " — " + s.AoR
	}
	g.whoLabel.SetText(who)
	g.stateBtn.SetText(string(s.State))
	g.bottomInfo.SetText(statusLine(s))
	g.settings.refreshRing(s)
	if g.tray != nil {
		g.tray.update()
	}
}

// statusLine is the bottom line: overlay, neighbours, records stored for others.
func statusLine(s phone.Status) string {
	var parts []string
	ov := s.Overlay
	if ov == "" {
		ov = "local network"
	}
	parts = append(parts, "overlay "+ov)
	if s.Role == "client" { // RFC 6940 §4.2: no neighbours, nothing stored for others
		return strings.Join(append(parts, "client, storing nothing for others"), " · ")
	}
	if s.State != phone.NotJoined {
		parts = append(parts, plural(neighbours(s), "neighbour", "neighbours"))
	}
	parts = append(parts, fmt.Sprintf("storing %s for others", plural(s.StoredRecords, "record", "records")))
	return strings.Join(parts, " · ")
}

// neighbours counts the distinct peers among predecessors and successors (in a small ring
// the same peer is both).
func neighbours(s phone.Status) int {
	seen := map[string]bool{}
	for _, id := range append(append([]string(nil), s.Predecessors...), s.Successors...) {
		seen[id] = true
	}
	return len(seen)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (g *gui) showPeerStatus() {
	if g.showLaterTrouble() { // trouble.go
		return
	}
	s := g.status
	node := s.NodeID
	if node == "" {
		node = "—"
	}
	ov := s.Overlay
	if ov == "" {
		ov = "local network"
	}
	form := widget.NewForm(
		widget.NewFormItem("State", widget.NewLabel(string(s.State))),
		widget.NewFormItem("Overlay", widget.NewLabel(ov)),
		widget.NewFormItem("Node-ID", selectableLabel(node)),
		widget.NewFormItem("Predecessors", widget.NewLabel(fmt.Sprint(len(s.Predecessors)))),
		widget.NewFormItem("Successors", widget.NewLabel(fmt.Sprint(len(s.Successors)))),
		widget.NewFormItem("Fingers", widget.NewLabel(fmt.Sprint(len(s.Fingers)))),
		widget.NewFormItem("Stored for others", widget.NewLabel(plural(s.StoredRecords, "record", "records"))),
	)
	dialog.ShowCustom("Peer status", "Close", form, g.win)
}

func selectableLabel(s string) fyne.CanvasObject {
	l := widget.NewLabel(s)
	l.Selectable = true
	l.Wrapping = fyne.TextWrapBreak
	return l
}

func newErrorLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Importance = widget.DangerImportance
	l.Wrapping = fyne.TextWrapWord
	return l
}

func (g *gui) showAbout() {
	img := widget.NewIcon(assets.Icon)
	box := container.NewVBox(
		container.NewCenter(container.NewGridWrap(fyne.NewSize(96, 96), img)),
		widget.NewLabelWithStyle(version.Name+" "+version.Version, fyne.TextAlignCenter, fyne.TextStyle{Bold: true}),
		widget.NewLabelWithStyle("A softphone that is its own P2PSIP (RELOAD) peer.", fyne.TextAlignCenter, fyne.TextStyle{}),
	)
	dialog.ShowCustom("About "+version.Name, "Close", box, g.win)
}

// ---- dialling ----

// complete offers contacts and recent peers that start with what was typed.
func (g *gui) complete(typed string) {
	g.setDialError("")
	typed = strings.ToLower(strings.TrimSpace(typed))
	seen := map[string]bool{}
	var opts []string
	add := func(s string) {
		if s != "" && !seen[s] && (typed == "" || strings.HasPrefix(strings.ToLower(s), typed)) {
			seen[s] = true
			opts = append(opts, s)
		}
	}
	for _, c := range g.contacts {
		add(c.User)
		if strings.HasPrefix(strings.ToLower(c.Name), typed) {
			add(c.User)
		}
	}
	for _, h := range g.history {
		add(h.Peer)
	}
	if len(opts) > 10 {
		opts = opts[:10]
	}
	g.completions = opts
	g.dial.SetOptions(opts)
}

// resolve maps what was typed (a contact's name or a user name) to a user name.
func (g *gui) resolve(typed string) string {
	typed = strings.TrimSpace(typed)
	for _, c := range g.contacts {
		if c.User == typed {
			return c.User
		}
	}
	for _, c := range g.contacts {
		if strings.EqualFold(c.Name, typed) {
			return c.User
		}
	}
	if u, ok := strings.CutPrefix(typed, "sip:"); ok { // sip:user@overlay
		if at := strings.IndexByte(u, '@'); at > 0 {
			return u[:at]
		}
	}
	return typed
}

func (g *gui) setDialError(msg string) {
	if msg == "" {
		g.dialErr.Hide()
		g.dialErr.SetText("")
		return
	}
	g.dialErr.SetText(msg)
	g.dialErr.Show()
}

// dialUser places a call to what was typed; errors show under the entry.
func (g *gui) dialUser(typed string) {
	user := g.resolve(typed)
	if user == "" {
		g.setDialError("Type a user name to call.")
		g.win.Canvas().Focus(g.dial)
		return
	}
	if err := phone.ValidateUser(user); err != nil {
		g.setDialError(errorText(err))
		g.win.Canvas().Focus(g.dial)
		return
	}
	if g.call.active() {
		g.setDialError("Already in a call.")
		return
	}
	g.setDialError("")
	g.call.begin("", user, phone.Outgoing)
	g.showCallView()
	g.goFunc(func(ctx context.Context) {
		err := g.p.Call(ctx, user)
		if err == nil {
			return
		}
		g.do(func() {
			if g.call.peer == user && !g.call.answeredYet() {
				g.call.end()
				g.showMainView()
			}
			g.setDialError(callErrorText(user, g.status.Overlay, err))
			g.win.Canvas().Focus(g.dial)
		})
	})
}

// callErrorText is an error for a person: "bob is not registered in example.org".
func callErrorText(user, overlay string, err error) string {
	switch {
	case errors.Is(err, phone.ErrNotJoined):
		return "Not connected to an overlay yet; cannot call " + user + "."
	case errors.Is(err, phone.ErrBusy):
		return "Already in a call."
	case errors.Is(err, phone.ErrBadUser):
		return errorText(err)
	}
	return errorText(err)
}

// errorText turns an error into one readable sentence.
func errorText(err error) string {
	s := err.Error()
	if s == "" {
		return "Failed."
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func (g *gui) showCallView() {
	g.vmOffer.Hide()
	g.mainView.Hide()
	g.chat.root.Hide()
	g.call.root.Show()
	g.content.Refresh()
}

func (g *gui) showMainView() {
	g.call.root.Hide()
	g.mainView.Show()
	g.content.Refresh()
	g.win.Canvas().Focus(g.dial)
}

// ---- events ----

// handle updates the window for one phone event. It is one piece: one switch case per
// event kind, each a few lines that call the view that shows it.
func (g *gui) handle(e phone.Event) {
	defer func() { g.handled++; g.tray.update() }()
	g.maybeAttachStore()
	if isChatEvent(e) { // messages (chat.go)
		g.chatEvent(e)
		return
	}
	if g.showTrouble(e) { // trouble the phone met and worked around (trouble.go)
		return
	}
	switch e.Kind {
	case phone.EventJoined, phone.EventRegistered, phone.EventLeft, phone.EventStarted:
		g.status = g.p.Status()
		g.refreshStatus()
	case phone.EventStatus:
		if e.Status != nil {
			g.status = *e.Status
		} else {
			g.status = g.p.Status()
		}
		g.refreshStatus()
	case phone.EventCalling:
		peer := firstNonEmpty(e.Peer, g.call.peer)
		g.call.begin(e.CallID, peer, phone.Outgoing)
		g.showCallView()
	case phone.EventRinging:
		if g.call.matches(e.CallID) {
			g.call.setRinging()
		}
	case phone.EventIncoming:
		g.showIncoming(e)
	case phone.EventAnswered:
		g.closeIncoming(false)
		if !g.call.active() || !g.call.matches(e.CallID) {
			g.call.begin(e.CallID, firstNonEmpty(e.Peer, e.From), phone.Incoming)
		}
		g.call.setAnswered(e.Time)
		g.showCallView()
	case phone.EventHeld:
		g.call.setHeld(true)
	case phone.EventResumed:
		g.call.setHeld(false)
	case phone.EventHangup:
		wasIncoming := g.incoming != nil && g.incoming.matches(e.CallID)
		if wasIncoming {
			missed := e.Reason != "declined" && e.Reason != "decline"
			g.closeIncoming(missed)
		}
		if g.call.active() && g.call.matches(e.CallID) {
			answered := g.call.answeredYet()
			peer, outgoing := g.call.peer, g.call.dir == phone.Outgoing
			g.call.end()
			g.showMainView()
			if !answered && outgoing && !g.callErrShown {
				if msg := failedCallText(peer, e.Reason); msg != "" {
					g.setDialError(msg)
				}
			}
			if !answered && outgoing {
				g.offerVoicemail(peer, e.Reason) // voicemail.go
			}
			g.callErrShown = false
		}
		g.reloadHistory()
	case phone.EventWarning:
		switch {
		case e.CallID == "" || !g.call.active() || !g.call.matches(e.CallID):
		case e.Code == phone.CodeCallReconnecting:
			g.call.setReconnecting(true)
		default:
			g.call.addWarning(e.Message)
		}
	case phone.EventReconnected:
		if g.call.active() && g.call.matches(e.CallID) {
			g.call.setReconnecting(false)
		}
	case phone.EventError:
		if e.Message != "" {
			g.setDialError(errorText(errors.New(e.Message)))
			if e.CallID != "" && g.call.active() && g.call.matches(e.CallID) {
				g.callErrShown = true
			}
		}
	}
}

// failedCallText says why an outgoing call ended before it was answered ("" for the caller's
// own hang-up).
func failedCallText(peer, reason string) string {
	switch reason {
	case "", "local hangup", "local", "cancelled", "hangup":
		return ""
	case "declined":
		return peer + " declined the call."
	case "busy":
		return peer + " is busy."
	case "no answer":
		return peer + " did not answer."
	case "unreachable":
		return peer + " could not be reached."
	}
	return fmt.Sprintf("Call to %s ended: %s.", peer, reason)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// ---- history and contacts ----

func (g *gui) reloadHistory() {
	if g.st == nil {
		return
	}
	h, err := g.st.History(200)
	if err != nil {
		g.log.Error("reading call history", "err", err)
		return
	}
	g.history = h
	g.recent.Refresh()
}

func (g *gui) reloadContacts() {
	if g.st == nil {
		g.contactsNote.SetText("Contacts are not available: the phone has no profile database.")
		g.contactsNote.Show()
		return
	}
	cs, err := g.st.Contacts()
	if err != nil {
		g.contactsNote.SetText(errorText(err))
		g.contactsNote.Show()
		return
	}
	g.contacts = cs
	g.contactList.Refresh()
	g.recent.Refresh() // names in Recent come from contacts
}

// displayName is the contact's name for a user, or the user name.
func (g *gui) displayName(user string) string {
	for _, c := range g.contacts {
		if c.User == user {
			return c.Name
		}
	}
	return user
}

// ---- first start ----

// askUserName leads a person through choosing a user name on first start.
func (g *gui) askUserName() {
	entry := widget.NewEntry()
	entry.SetPlaceHolder("e.g. alice")
	entry.Validator = validateUserField
	errLabel := newErrorLabel("")
	errLabel.Hide()
	var d *dialog.CustomDialog
	submit := func() {
		name := strings.TrimSpace(entry.Text)
		if err := entry.Validator(name); err != nil {
			errLabel.SetText(errorText(err))
			errLabel.Show()
			g.win.Canvas().Focus(entry)
			return
		}
		if us, ok := g.p.(UserSetter); ok {
			if err := us.SetUser(name); err != nil {
				errLabel.SetText(errorText(err))
				errLabel.Show()
				return
			}
		}
		g.prefs.SetString(PrefUser, name)
		d.Hide()
		g.status = g.p.Status()
		g.refreshStatus()
		g.win.Canvas().Focus(g.dial)
	}
	entry.OnSubmitted = func(string) { submit() }
	ok := widget.NewButton("Continue", submit)
	ok.Importance = widget.HighImportance
	intro := widget.NewLabel("Choose the name people call you by. Your address will be sip:NAME@OVERLAY.")
	intro.Wrapping = fyne.TextWrapWord
	content := container.NewVBox(intro, widget.NewForm(widget.NewFormItem("User name", entry)), errLabel)
	d = dialog.NewCustomWithoutButtons("Welcome to Chordphone", content, g.win)
	d.SetButtons([]fyne.CanvasObject{ok})
	d.Resize(fyne.NewSize(380, 240))
	d.Show()
	g.win.Canvas().Focus(entry)
	g.firstRun = &firstRunDialog{d: d, entry: entry, err: errLabel, ok: ok}
}
