package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// typeFocused types s into whatever has keyboard focus, as the window would.
func typeFocused(t *testing.T, c fyne.Canvas, s string) {
	t.Helper()
	f := c.Focused()
	if f == nil {
		t.Fatal("nothing has keyboard focus")
	}
	for _, r := range s {
		f.TypedRune(r)
	}
}

func pressReturn(c fyne.Canvas) {
	c.Focused().TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
}

func TestDialFieldHasFocusAtStart(t *testing.T) {
	h := newHarness(t, "alice")
	if got := h.g.win.Canvas().Focused(); got != h.g.dial {
		t.Fatalf("focused at start: %T, want the dial entry", got)
	}
	if h.g.win.Title() != "Chordphone" {
		t.Errorf("title %q", h.g.win.Title())
	}
	if h.g.firstRun != nil {
		t.Error("asked for a user name although the phone has one")
	}
}

func TestTypingAndReturnCallsByName(t *testing.T) {
	h := newHarness(t, "alice")
	typeFocused(t, h.g.win.Canvas(), "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	if !h.g.call.root.Visible() || h.g.mainView.Visible() {
		t.Fatal("the in-call view is not showing while calling")
	}
	if h.g.call.peerLabel.Text != "bob" || h.g.call.stateLabel.Text != "Calling…" {
		t.Errorf("call view shows %q / %q", h.g.call.peerLabel.Text, h.g.call.stateLabel.Text)
	}
	h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
	h.emit(phone.Event{Kind: phone.EventRinging, CallID: "c1"})
	if h.g.call.stateLabel.Text != "Ringing…" {
		t.Errorf("after ringing: %q", h.g.call.stateLabel.Text)
	}
}

func TestCallButtonAndContactNameResolve(t *testing.T) {
	h := newHarness(t, "alice")
	if _, err := h.st.AddContact(store.Contact{Name: "Bob Smith", User: "bob"}); err != nil {
		t.Fatal(err)
	}
	h.g.reloadContacts()
	test.Type(h.g.dial, "bob smith")
	test.Tap(h.g.callBtn)
	h.expect("call bob")
}

func TestCallErrorShowsInlineUnderEntry(t *testing.T) {
	h := newHarness(t, "alice")
	h.p.callErr = fmt.Errorf("bob is not registered in example.org")
	test.Type(h.g.dial, "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	h.waitFor("the inline error", func() bool { return h.g.dialErr.Visible() })
	if h.g.dialErr.Text != "Bob is not registered in example.org." {
		t.Errorf("inline error %q", h.g.dialErr.Text)
	}
	if !h.g.mainView.Visible() || h.g.call.root.Visible() {
		t.Error("a failed call should leave the main view showing")
	}
	if h.g.win.Canvas().Overlays().Top() != nil {
		t.Error("the error went into a modal dialog, not under the entry")
	}
	if h.g.win.Canvas().Focused() != h.g.dial {
		t.Error("the dial field should have focus again")
	}
	// Typing again clears the error.
	test.Type(h.g.dial, "x")
	if h.g.dialErr.Visible() {
		t.Error("the error stays while typing")
	}
}

func TestInvalidUserNameIsRejectedWithoutCalling(t *testing.T) {
	h := newHarness(t, "alice")
	test.Type(h.g.dial, "bo b")
	pressReturn(h.g.win.Canvas())
	if !h.g.dialErr.Visible() || !strings.Contains(h.g.dialErr.Text, "only letters, digits") {
		t.Fatalf("inline error %q (visible %v)", h.g.dialErr.Text, h.g.dialErr.Visible())
	}
	h.settle()
	if len(h.p.calls) != 0 {
		t.Errorf("phone.Call was called with %v", h.p.calls)
	}
	h.g.dial.SetText("")
	pressReturn(h.g.win.Canvas())
	if h.g.dialErr.Text != "Type a user name to call." {
		t.Errorf("empty dial: %q", h.g.dialErr.Text)
	}
}

func TestNotJoinedErrorIsReadable(t *testing.T) {
	h := newHarness(t, "alice")
	h.p.callErr = fmt.Errorf("cannot call bob: %w", phone.ErrNotJoined)
	test.Type(h.g.dial, "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	h.waitFor("the inline error", func() bool { return h.g.dialErr.Visible() })
	if !strings.Contains(h.g.dialErr.Text, "Not connected to an overlay") {
		t.Errorf("inline error %q", h.g.dialErr.Text)
	}
}

func incoming(h *harness) *incomingWindow {
	h.t.Helper()
	h.emit(phone.Event{Kind: phone.EventIncoming, CallID: "in1", From: "sip:carol@example.org"})
	iw := h.g.incoming
	if iw == nil {
		h.t.Fatal("no incoming-call window")
	}
	return iw
}

func TestIncomingCallAccept(t *testing.T) {
	h := newHarness(t, "alice")
	iw := incoming(h)
	if iw.from != "carol" || !strings.Contains(iw.w.Title(), "carol") {
		t.Errorf("incoming window for %q titled %q", iw.from, iw.w.Title())
	}
	if iw.accept.Importance != widget.SuccessImportance || iw.decline.Importance != widget.DangerImportance {
		t.Error("Accept should be green and Decline red")
	}
	if h.g.win.Canvas().Focused() != h.g.dial {
		t.Error("the incoming call took keyboard focus from the main window")
	}
	if len(h.p.rings) != 1 || !h.p.rings[0] {
		t.Errorf("ringtone: %v, want on", h.p.rings)
	}
	test.Tap(iw.accept)
	h.expect("answer")
	h.waitFor("the in-call view", func() bool { return h.g.call.root.Visible() })
	if h.g.incoming != nil {
		t.Error("the incoming window is still open after Accept")
	}
	if len(h.p.rings) != 2 || h.p.rings[1] {
		t.Errorf("ringtone: %v, want on then off", h.p.rings)
	}
	h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "in1"})
	if h.g.call.peerLabel.Text != "carol" || h.g.call.stateLabel.Text != "Connected" {
		t.Errorf("call view %q / %q", h.g.call.peerLabel.Text, h.g.call.stateLabel.Text)
	}
}

func TestIncomingCallDecline(t *testing.T) {
	h := newHarness(t, "alice")
	iw := incoming(h)
	test.Tap(iw.decline)
	h.expect("decline")
	h.waitFor("the incoming window to close", func() bool { return h.g.incoming == nil })
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "in1", Reason: "declined"})
	if h.g.call.root.Visible() || h.g.missed != 0 {
		t.Errorf("after declining: call view %v, missed %d", h.g.call.root.Visible(), h.g.missed)
	}
}

func TestMissedCallIsRedInRecent(t *testing.T) {
	h := newHarness(t, "alice")
	incoming(h)
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "in1", Reason: "cancelled"})
	if h.g.incoming != nil {
		t.Fatal("the incoming window stays after the caller gave up")
	}
	if h.g.missed != 1 {
		t.Errorf("missed = %d", h.g.missed)
	}
	if len(h.g.history) != 1 || h.g.history[0].Direction != store.Missed || h.g.history[0].Peer != "carol" {
		t.Fatalf("history %+v", h.g.history)
	}
	r := newHistoryRow()
	r.set(h.g.history[0], "carol")
	if r.name.Importance != widget.DangerImportance {
		t.Error("a missed call is not shown in red")
	}
	if !strings.HasSuffix(r.detail.Text, "missed") {
		t.Errorf("detail %q", r.detail.Text)
	}
}

func activeCall(h *harness) {
	h.t.Helper()
	test.Type(h.g.dial, "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
	h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "c1"})
}

func TestHangUp(t *testing.T) {
	h := newHarness(t, "alice")
	activeCall(h)
	if h.g.call.hangup.Importance != widget.DangerImportance {
		t.Error("Hang up should be red")
	}
	test.Tap(h.g.call.hangup)
	h.expect("hangup")
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "c1", Reason: "local"})
	if !h.g.mainView.Visible() || h.g.call.root.Visible() {
		t.Fatal("the main view is not back after hang-up")
	}
	if h.g.win.Canvas().Focused() != h.g.dial {
		t.Error("the dial field should have focus after a call")
	}
	if len(h.g.history) != 1 || h.g.history[0].Direction != store.Outgoing || h.g.history[0].Peer != "bob" {
		t.Errorf("history %+v", h.g.history)
	}
}

func TestInCallControls(t *testing.T) {
	h := newHarness(t, "alice")
	h.p.status.Calls = []phone.CallInfo{{ID: "c1", Peer: "bob", State: phone.CallActive,
		Stats: &phone.RTPStats{Codec: "opus/48000", Received: 990, Lost: 10, JitterMs: 4.2, RTTMs: 31.6}}}
	activeCall(h)
	c := h.g.call
	if c.quality.Text != "opus/48000 · loss 1.0% · jitter 4 ms · RTT 32 ms · direct" {
		t.Errorf("quality line %q", c.quality.Text)
	}
	if c.level.Value != 0.4 {
		t.Errorf("input level %v, want the phone's 0.4", c.level.Value)
	}

	test.Tap(c.mute)
	h.expect("mute")
	h.waitFor("Unmute", func() bool { return c.mute.Text == "Unmute" })
	test.Tap(c.mute)
	h.expect("unmute")
	h.waitFor("Mute", func() bool { return c.mute.Text == "Mute" })

	test.Tap(c.hold)
	h.expect("hold")
	h.waitFor("Resume", func() bool { return c.hold.Text == "Resume" && c.stateLabel.Text == "On hold" })
	test.Tap(c.hold)
	h.expect("resume")
	h.waitFor("Hold", func() bool { return c.hold.Text == "Hold" })

	if c.keypad.Visible() {
		t.Fatal("keypad open before asked")
	}
	test.Tap(c.keypadBtn)
	if !c.keypad.Visible() {
		t.Fatal("keypad did not open")
	}
	test.Tap(c.keys["5"])
	h.expect("dtmf 5")
	test.Tap(c.keys["#"])
	h.expect("dtmf #")
	if c.dtmfLabel.Text != "5#" {
		t.Errorf("sent digits shown as %q", c.dtmfLabel.Text)
	}
}

func TestQualityLine(t *testing.T) {
	if got := qualityLine(nil); got != "no media statistics yet" {
		t.Error(got)
	}
	got := qualityLine(&phone.RTPStats{Codec: "opus", Relayed: true})
	if got != "opus · loss 0.0% · jitter 0 ms · RTT 0 ms · relayed" {
		t.Error(got)
	}
}

func TestFirstStartAsksForUserName(t *testing.T) {
	h := newHarness(t, "")
	fr := h.g.firstRun
	if fr == nil {
		t.Fatal("no user-name dialog on first start")
	}
	if h.g.win.Canvas().Focused() != fr.entry {
		t.Error("the user-name entry should have focus")
	}
	test.Type(fr.entry, "bad name")
	test.Tap(fr.ok)
	if !fr.err.Visible() || !strings.Contains(fr.err.Text, "Letters, digits") {
		t.Fatalf("error %q (visible %v)", fr.err.Text, fr.err.Visible())
	}
	fr.entry.SetText("alice")
	pressReturn(h.g.win.Canvas())
	h.expect("user alice")
	if h.g.prefs.String(PrefUser) != "alice" {
		t.Errorf("preference user = %q", h.g.prefs.String(PrefUser))
	}
	if v, _, _ := h.st.Setting(PrefUser); v != "alice" {
		t.Errorf("profile setting user = %q", v)
	}
	if h.g.win.Canvas().Overlays().Top() != nil {
		t.Error("the dialog is still open")
	}
	if !strings.Contains(h.g.whoLabel.Text, "sip:alice@example.org") {
		t.Errorf("status line %q", h.g.whoLabel.Text)
	}
}

func TestStatusLine(t *testing.T) {
	h := newHarness(t, "alice")
	if h.g.bottomInfo.Text != "overlay example.org · 3 neighbours · storing 132 records for others" {
		t.Errorf("bottom line %q", h.g.bottomInfo.Text)
	}
	if l := statusLine(phone.Status{Overlay: "example.org", State: phone.Registered, Role: "client"}); l != "overlay example.org · client, storing nothing for others" {
		t.Errorf("client's bottom line %q", l)
	}
	if n := neighbours(phone.Status{Predecessors: []string{"x"}, Successors: []string{"x"}}); n != 1 {
		t.Errorf("one peer both predecessor and successor counts as %d neighbours", n)
	}
	if h.g.stateBtn.Text != "registered" {
		t.Errorf("state %q", h.g.stateBtn.Text)
	}
	h.p.mu.Lock()
	h.p.status.State = phone.Joined
	h.p.mu.Unlock()
	h.emit(phone.Event{Kind: phone.EventLeft})
	if h.g.stateBtn.Text != "joined" {
		t.Errorf("state after event %q", h.g.stateBtn.Text)
	}
	h.g.showPeerStatus()
	if h.g.win.Canvas().Overlays().Top() == nil {
		t.Error("tapping the state shows no details")
	}
}

func TestContactsAddEditCallRemove(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.editContact(store.Contact{})
	f := h.g.contactForm
	test.Type(f.name, "Bob")
	test.Type(f.user, "b o b")
	test.Tap(f.save)
	if !f.err.Visible() || f.saved {
		t.Fatal("an invalid user name was saved")
	}
	f.user.SetText("bob")
	test.Tap(f.save)
	if !f.saved {
		t.Fatalf("not saved: %q", f.err.Text)
	}
	if len(h.g.contacts) != 1 || h.g.contacts[0].AoR != "sip:bob@example.org" {
		t.Fatalf("contacts %+v", h.g.contacts)
	}
	// A duplicate is refused inline.
	h.g.editContact(store.Contact{})
	f = h.g.contactForm
	test.Type(f.user, "bob")
	test.Tap(f.save)
	if f.saved || !strings.Contains(f.err.Text, "already in your contacts") {
		t.Errorf("duplicate: saved %v, error %q", f.saved, f.err.Text)
	}
	test.Tap(f.cancel)

	// Edit.
	h.g.editContact(h.g.contacts[0])
	f = h.g.contactForm
	f.name.SetText("Robert")
	test.Tap(f.save)
	if h.g.contacts[0].Name != "Robert" {
		t.Errorf("after edit %+v", h.g.contacts[0])
	}
	// Call from the row.
	row := newContactRow(h.g)
	row.set(h.g.contacts[0])
	if !strings.Contains(row.detail.Text, "key not pinned yet") {
		t.Errorf("row detail %q", row.detail.Text)
	}
	test.Tap(row.call)
	h.expect("call bob")
	h.emit(phone.Event{Kind: phone.EventHangup, Reason: "local"})
	// Remove.
	test.Tap(row.remove)
	h.g.confirm.Confirm()
	if len(h.g.contacts) != 0 {
		t.Errorf("contacts after remove %+v", h.g.contacts)
	}
}

func TestRecentTapCallsBack(t *testing.T) {
	h := newHarness(t, "alice")
	if _, err := h.st.AddHistory(store.HistoryEntry{Direction: store.Missed, Peer: "dave", Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.g.reloadHistory()
	h.g.recent.Select(0)
	h.expect("call dave")
}

func TestCompletionFromContactsAndHistory(t *testing.T) {
	h := newHarness(t, "alice")
	h.st.AddContact(store.Contact{Name: "Bob", User: "bob"})
	h.st.AddContact(store.Contact{Name: "Zed", User: "zed"})
	h.st.AddHistory(store.HistoryEntry{Direction: store.Outgoing, Peer: "bobby", Start: time.Now()})
	h.st.AddHistory(store.HistoryEntry{Direction: store.Outgoing, Peer: "carol", Start: time.Now()})
	h.g.reloadContacts()
	h.g.reloadHistory()
	test.Type(h.g.dial, "bo")
	if got := strings.Join(h.g.completions, ","); got != "bob,bobby" {
		t.Errorf("completion for %q: %s", "bo", got)
	}
}

func TestSettingsValidation(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.showSettings()
	s := h.g.settings
	s.mode.SetSelected(modeNamed)
	s.overlay.SetText("bad name!")
	s.port.SetText("70000")
	s.limit.SetText("0")
	s.tabs.SelectIndex(4)
	test.Tap(s.save)
	if h.g.win.Canvas().Overlays().Top() == nil {
		t.Fatal("Settings closed although fields are wrong")
	}
	if s.tabs.SelectedIndex() != 0 {
		t.Errorf("selected tab %d, want Overlay (the first wrong one)", s.tabs.SelectedIndex())
	}
	for _, want := range []string{"Overlay", "Listen port", "Storage limit"} {
		if !strings.Contains(s.errLabel.Text, want) {
			t.Errorf("errors %q lack %q", s.errLabel.Text, want)
		}
	}
	for name, e := range map[string]*widget.Entry{"overlay": s.overlay, "port": s.port, "limit": s.limit} {
		if e.Validate() == nil {
			t.Errorf("%s not marked invalid", name)
		}
	}
	if _, ok, _ := h.st.Setting(PrefListenPort); ok {
		t.Error("an invalid port was saved")
	}

	s.overlay.SetText("example.org")
	s.port.SetText("5060")
	s.limit.SetText("128")
	s.storeForOthers.SetChecked(false)
	s.sipAdapter.SetChecked(true)
	s.sipAddr.SetText("0.0.0.0:99999")
	test.Tap(s.save)
	if !strings.Contains(s.errLabel.Text, "SIP address") || s.sipAddr.Validate() == nil {
		t.Fatalf("a SIP address with port 99999 was taken: %q", s.errLabel.Text)
	}
	s.sipAddr.SetText("0.0.0.0:5062")
	test.Tap(s.save)
	if s.errLabel.Visible() {
		t.Fatalf("still invalid: %q", s.errLabel.Text)
	}
	h.p.mu.Lock()
	if !slices.Equal(h.p.storeOthers, []bool{false}) {
		t.Errorf("phone asked to store for others %v, want [false]", h.p.storeOthers)
	}
	h.p.mu.Unlock()
	want := map[string]string{PrefListenPort: "5060", PrefStorageLimitMB: "128", PrefStoreForOthers: "false",
		PrefAudioIn: "", PrefSIPAdapter: "0.0.0.0:5062"}
	for k, v := range want {
		if got, _, _ := h.st.Setting(k); got != v {
			t.Errorf("setting %s = %q, want %q", k, got, v)
		}
	}
	// Identity shows the Node-ID and fingerprint.
	if s.nodeID.Text != h.p.status.NodeID || s.fingerprint.Text != "SHA-256 AB:CD:EF:01" {
		t.Errorf("identity %q %q", s.nodeID.Text, s.fingerprint.Text)
	}
}

func TestValidators(t *testing.T) {
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{"example.org", true}, {"overlay-1.test", true}, {"https://example.org/reload.xml", true},
		{"http://127.0.0.1:8080/config", true}, {"", false}, {"bad name", false}, {"-x.org", false},
		{"a..b", false}, {"ftp://x/y", false}, {"https:///nohost", false}, {strings.Repeat("a", 64) + ".org", false},
	} {
		if err := ValidateOverlay(c.s); (err == nil) != c.ok {
			t.Errorf("ValidateOverlay(%q) = %v", c.s, err)
		}
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{{"0", true}, {"5060", true}, {"65535", true}, {"65536", false}, {"-1", false}, {"x", false}, {"", false}} {
		if err := ValidatePort(c.s); (err == nil) != c.ok {
			t.Errorf("ValidatePort(%q) = %v", c.s, err)
		}
	}
	if ValidateStorageLimit("0") == nil || ValidateStorageLimit("64") != nil {
		t.Error("ValidateStorageLimit")
	}
}

func TestPreferencesLiveInProfileDatabase(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newStorePrefs(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	p.AddChangeListener(func() { changed++ })
	p.SetInt("i", 42)
	p.SetBool("b", true)
	p.SetString("s", "x")
	p.SetFloat("f", 1.5)
	p.SetStringList("l", []string{"a", "b"})
	p.RemoveValue("s")
	st.Close()
	if changed != 6 {
		t.Errorf("change listener ran %d times, want 6", changed)
	}
	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, _ = newStorePrefs(st, nil)
	if p.Int("i") != 42 || !p.Bool("b") || p.String("s") != "" || p.Float("f") != 1.5 ||
		strings.Join(p.StringList("l"), ",") != "a,b" || p.IntWithFallback("missing", 7) != 7 {
		t.Errorf("after reopen: %d %v %q %v %v", p.Int("i"), p.Bool("b"), p.String("s"), p.Float("f"), p.StringList("l"))
	}
}

func TestHistoryDetail(t *testing.T) {
	now := time.Date(2026, 5, 1, 18, 0, 0, 0, time.Local)
	h := store.HistoryEntry{Direction: store.Outgoing, Start: now.Add(-time.Hour), Duration: 151 * time.Second}
	if got := historyDetail(h, now); got != "17:00 · 2:31" {
		t.Error(got)
	}
	h.Direction, h.Duration = store.Missed, 0
	if got := historyDetail(h, now); got != "17:00 · missed" {
		t.Error(got)
	}
	// The history names what happened to a call that was never answered, and an answered
	// call that ended badly.
	for _, c := range []struct {
		dir    store.Direction
		dur    time.Duration
		reason string
		want   string
	}{
		{store.Outgoing, 0, "", "17:00 · no answer"}, // an entry written before reasons were kept
		{store.Outgoing, 0, "no answer", "17:00 · no answer"},
		{store.Outgoing, 0, "declined", "17:00 · declined"},
		{store.Outgoing, 0, "local hangup", "17:00 · cancelled"},
		{store.Outgoing, 0, "failed: bob is not registered in lab", "17:00 · failed: bob is not registered in lab"},
		{store.Outgoing, 0, "failed: cannot reach bob: connecting to 0123abcd: no route to the peer", "17:00 · failed: cannot reach bob: connecting to 0123abc…"},
		{store.Missed, 0, "failed: the caller's media offer is unusable", "17:00 · missed, failed: the caller's media offer is unusable"},
		{store.Incoming, 61 * time.Second, "remote hangup", "17:00 · 1:01"},
		{store.Incoming, 61 * time.Second, "media connection lost", "17:00 · 1:01 · media connection lost"},
	} {
		h := store.HistoryEntry{Direction: c.dir, Start: now.Add(-time.Hour), Duration: c.dur, Reason: c.reason}
		if got := historyDetail(h, now); got != c.want {
			t.Errorf("%s call, %v, %q: %q, want %q", c.dir, c.dur, c.reason, got, c.want)
		}
	}
	if formatDuration(3725*time.Second) != "1:02:05" {
		t.Error(formatDuration(3725 * time.Second))
	}
}

func TestFailedCallSaysWhy(t *testing.T) {
	h := newHarness(t, "alice")
	activeCallDialing := func() {
		typeFocused(t, h.g.win.Canvas(), "bob")
		pressReturn(h.g.win.Canvas())
		h.expect("call bob")
		h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
	}
	activeCallDialing()
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "c1", Reason: "declined"})
	if h.g.dialErr.Text != "bob declined the call." || !h.g.mainView.Visible() {
		t.Errorf("after decline: %q", h.g.dialErr.Text)
	}
	h.g.dial.SetText("")
	// The phone's own error (not registered) wins over the hangup reason.
	activeCallDialing()
	h.emit(phone.Event{Kind: phone.EventError, CallID: "c1", Message: "bob is not registered in example.org"})
	h.emit(phone.Event{Kind: phone.EventHangup, CallID: "c1", Reason: "not registered"})
	if h.g.dialErr.Text != "Bob is not registered in example.org." {
		t.Errorf("after not registered: %q", h.g.dialErr.Text)
	}
}

func TestStoreAttachesWhenThePhoneOpensIt(t *testing.T) {
	h := newHarness(t, "alice", func(c *config) { c.store = nil })
	if h.g.st != nil || !h.g.contactsNote.Visible() {
		t.Fatal("contacts should say they are unavailable before the phone opened its profile")
	}
	h.st.AddContact(store.Contact{Name: "Bob", User: "bob"})
	h.p.mu.Lock()
	h.p.storeLater = false
	h.p.mu.Unlock()
	h.emit(phone.Event{Kind: phone.EventJoined})
	if h.g.st != h.st || len(h.g.contacts) != 1 || h.g.contactsNote.Visible() {
		t.Fatalf("after the store appeared: st %v, contacts %v", h.g.st != nil, h.g.contacts)
	}
	if _, ok := h.g.prefs.(*storePrefs); !ok {
		t.Error("preferences did not move to the profile database")
	}
}

func TestSettingsJoinNamedOverlay(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.showSettings()
	s := h.g.settings
	if s.mode.Selected != modeNamed || s.overlay.Text != "example.org" {
		t.Fatalf("Settings shows %q %q for the phone in example.org", s.mode.Selected, s.overlay.Text)
	}
	// A failed join keeps Settings open with the reason under the fields.
	h.p.joinErr = errors.New("enrollment refused: wrong password")
	s.overlay.SetText("https://other.test/config.xml")
	s.password.SetText("pw")
	test.Tap(s.save)
	h.expect("join |https://other.test/config.xml|alice|pw")
	h.waitFor("the join error", func() bool { return s.overlayErr.Visible() })
	if s.overlayErr.Text != "Could not join: Enrollment refused: wrong password." {
		t.Errorf("join error %q", s.overlayErr.Text)
	}
	if h.g.win.Canvas().Overlays().Top() == nil {
		t.Fatal("Settings closed although joining failed")
	}
	// Back to the local network's overlay.
	h.p.joinErr = nil
	s.mode.SetSelected(modeLocal)
	test.Tap(s.save)
	h.expect("join ||alice|")
	h.waitFor("Settings to close", func() bool { return h.g.win.Canvas().Overlays().Top() == nil })
}

func TestSettingsAudio(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.showSettings()
	s := h.g.settings
	if got := strings.Join(s.input.Options, ","); got != "System default,Mic A,Headset" {
		t.Errorf("inputs %s", got)
	}
	if s.input.Selected != "System default" || s.output.Selected != "System default" {
		t.Errorf("selected %q %q before any choice", s.input.Selected, s.output.Selected)
	}
	test.Tap(s.testTone)
	h.expect("tone")
	h.waitFor("the test tone to end", func() bool { return !s.testTone.Disabled() })
	s.input.SetSelected("Headset")
	test.Tap(s.save)
	h.expect("audio Headset|") // "" is the system default
	if v, _, _ := h.st.Setting(PrefAudioIn); v != "Headset" {
		t.Errorf("audio.input = %q", v)
	}
	h.g.showSettings()
	if h.g.settings.input.Selected != "Headset" || h.g.settings.output.Selected != "System default" {
		t.Errorf("reopened Settings shows %q %q", h.g.settings.input.Selected, h.g.settings.output.Selected)
	}
}

// findButton finds the button labelled text in o's tree of objects.
func findButton(o fyne.CanvasObject, text string) *widget.Button {
	if b, ok := o.(*widget.Button); ok && b.Text == text {
		return b
	}
	var kids []fyne.CanvasObject
	switch v := o.(type) {
	case *fyne.Container:
		kids = v.Objects
	case fyne.Widget:
		kids = test.WidgetRenderer(v).Objects()
	}
	for _, k := range kids {
		if b := findButton(k, text); b != nil {
			return b
		}
	}
	return nil
}

// TestSettingsInvitation: a pasted join link fills the overlay and user and pins its CA for
// the join; with no invitation, the CA the server presents is shown to be confirmed, and only
// a confirmed one is trusted.
func TestSettingsInvitation(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.showSettings()
	s := h.g.settings
	fp := strings.Repeat("ab12", 16)
	s.invite.SetText("chordphone:join?overlay=lab.test&ca=sha256:" + fp + "&user=bob")
	if s.mode.Selected != modeNamed || s.overlay.Text != "lab.test" || s.user.Text != "bob" {
		t.Fatalf("the invitation filled %q %q %q", s.mode.Selected, s.overlay.Text, s.user.Text)
	}
	if !s.pinNote.Visible() || !strings.Contains(s.pinNote.Text, "ab12 ab12") {
		t.Errorf("pin note %q", s.pinNote.Text)
	}
	s.password.SetText("pw")
	test.Tap(s.join)
	h.expect("join lab.test||bob|pw")
	h.expect("pinned " + fp)
	h.waitFor("the join to end", func() bool { return !s.join.Disabled() })

	// No invitation: the person confirms the fingerprint the server presents.
	other := strings.Repeat("cd34", 16)
	h.p.mu.Lock()
	h.p.untrustedCA = other
	h.p.mu.Unlock()
	s.invite.SetText("")
	s.overlay.SetText("other.test")
	test.Tap(s.join)
	h.expect("join untrusted other.test")
	h.waitFor("the fingerprint to confirm", func() bool { return s.confirm != nil })
	top := h.g.win.Canvas().Overlays().Top()
	if b := findButton(top, "Cancel"); b == nil {
		t.Fatal("no Cancel in the confirmation")
	} else {
		test.Tap(b)
	}
	h.waitFor("the refusal", func() bool { return s.overlayErr.Visible() })
	if !strings.Contains(s.overlayErr.Text, "was not confirmed") {
		t.Errorf("after Cancel: %q", s.overlayErr.Text)
	}
	test.Tap(s.join)
	h.expect("join untrusted other.test")
	h.waitFor("the fingerprint to confirm", func() bool { return s.confirm != nil })
	b := findButton(h.g.win.Canvas().Overlays().Top(), "Same: trust and join")
	if b == nil {
		t.Fatal("no confirm button")
	}
	test.Tap(b)
	h.expect("join other.test||bob|pw")
	h.expect("pinned " + other)
}

// A call without a sound device shows a banner in the call view that says so (the phone's
// warning events, then its call info); choosing a device in Settings during the call
// switches it, and the banner goes once the phone reports the device in use.
func TestCallViewShowsNoDeviceBanner(t *testing.T) {
	h := newHarness(t, "alice")
	typeFocused(t, h.g.win.Canvas(), "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
	if h.g.call.bannerBox.Visible() {
		t.Fatal("a banner before any warning")
	}
	noMic := "No microphone (no sound device found): the other side hears silence. Connect one: the next call uses it."
	noSpk := "No speaker (no sound device found): you cannot hear the other side. Connect one: the next call uses it."
	h.emit(phone.Event{Kind: phone.EventWarning, CallID: "c1", Code: "no_capture_device", Message: noMic})
	h.emit(phone.Event{Kind: phone.EventWarning, CallID: "c1", Code: "no_playback_device", Message: noSpk})
	h.emit(phone.Event{Kind: phone.EventWarning, Code: "something_else", Message: "not about the call"})
	if !h.g.call.bannerBox.Visible() || h.g.call.banner.Text != noMic+"\n"+noSpk+"\n"+audioSettingsHint {
		t.Fatalf("banner shown %v: %q", h.g.call.bannerBox.Visible(), h.g.call.banner.Text)
	}
	h.p.mu.Lock()
	h.p.status.Calls = []phone.CallInfo{{ID: "c1", Peer: "bob", State: phone.CallActive, AudioWarning: noMic + " " + noSpk}}
	h.p.mu.Unlock()
	h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "c1", Peer: "bob"})
	if !h.g.call.bannerBox.Visible() || !strings.Contains(h.g.call.banner.Text, "No speaker") {
		t.Fatalf("banner after the answer: %v %q", h.g.call.bannerBox.Visible(), h.g.call.banner.Text)
	}
	w := h.g.win
	w.Resize(fyne.NewSize(420, 640))
	savePNG(t, artifactsDir(t), "in-call-no-device.png", w.Canvas().Capture())

	// A headset appears; the person chooses it in Settings during the call.
	h.g.showSettings()
	h.g.settings.input.SetSelected("Headset")
	h.g.settings.output.SetSelected("Headset")
	h.p.mu.Lock()
	h.p.status.Calls[0].AudioWarning = "" // what the phone reports once it switched
	h.p.mu.Unlock()
	test.Tap(h.g.settings.save)
	h.expect("audio Headset|Headset")
	h.waitFor("the banner to go", func() bool { return !h.g.call.bannerBox.Visible() })
}

// TestSettingsOpenedWithInvitation: a link the phone was started with (the desktop's
// chordphone: handler) fills Settings → Overlay; a damaged one is said so under the fields.
func TestSettingsOpenedWithInvitation(t *testing.T) {
	h := newHarness(t, "alice")
	h.g.showSettings()
	s := h.g.settings
	s.tabs.SelectIndex(2)
	s.SetInvitation("chordphone:join?overlay=lab.test&ca=sha256:" + strings.Repeat("0a", 32))
	if s.tabs.SelectedIndex() != 0 || s.overlay.Text != "lab.test" || s.mode.Selected != modeNamed || !s.pinNote.Visible() {
		t.Errorf("tab %d, overlay %q, mode %q", s.tabs.SelectedIndex(), s.overlay.Text, s.mode.Selected)
	}
	if s.user.Text != "alice" {
		t.Errorf("a link without a user changed the user name to %q", s.user.Text)
	}
	s.SetInvitation("chordphone:join?overlay=lab.test&ca=sha256:0a0a")
	if !s.overlayErr.Visible() || !strings.Contains(s.overlayErr.Text, "no valid CA fingerprint") {
		t.Errorf("damaged link: %q", s.overlayErr.Text)
	}
}

// A call whose connection died says "Reconnecting…" until the phone has moved it to a new
// connection (an address changed), then "Connected" again; no banner for it.
func TestCallViewShowsReconnecting(t *testing.T) {
	h := newHarness(t, "alice")
	typeFocused(t, h.g.win.Canvas(), "bob")
	pressReturn(h.g.win.Canvas())
	h.expect("call bob")
	h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
	h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "c1", Peer: "bob"})
	h.emit(phone.Event{Kind: phone.EventWarning, CallID: "c1", Code: phone.CodeCallReconnecting,
		Message: "The connection to bob was lost (no media from the peer); reconnecting…"})
	if got := h.g.call.stateLabel.Text; got != "Reconnecting…" || h.g.call.bannerBox.Visible() {
		t.Fatalf("state %q, banner %v", got, h.g.call.bannerBox.Visible())
	}
	h.emit(phone.Event{Kind: phone.EventReconnected, CallID: "c1", Peer: "bob"})
	if got := h.g.call.stateLabel.Text; got != "Connected" {
		t.Fatalf("state after reconnecting %q", got)
	}
}
