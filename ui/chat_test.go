package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// SendMessage records "msg USER TEXT" and keeps the message as the phone does.
func (f *fakePhone) SendMessage(user, text string) (string, error) {
	f.mu.Lock()
	f.msgs++
	id := fmt.Sprintf("m%d", f.msgs)
	f.mu.Unlock()
	_, _, err := f.st.AddMessage(store.MessageEntry{ID: id, Peer: user, Direction: store.Outgoing, Text: text,
		Time: time.Now(), Status: store.MessageSending})
	f.act("msg " + user + " " + text)
	return id, err
}

// receive keeps a message from peer as the phone does, and sends its event.
func (h *harness) receive(peer, id, text string) {
	h.t.Helper()
	if _, _, err := h.st.AddMessage(store.MessageEntry{ID: id, Peer: peer, Direction: store.Incoming, Text: text,
		Time: time.Now(), Status: store.MessageReceived}); err != nil {
		h.t.Fatal(err)
	}
	h.emit(phone.Event{Kind: phone.EventMessage, ID: id, From: peer, Peer: peer, Text: text})
}

func chatDetails(v *chatView) []string {
	var out []string
	for _, m := range v.msgs {
		out = append(out, m.Text+" | "+messageDetail(m, time.Now()))
	}
	return out
}

// TestChatWithContact (issue 19): a message from a contact arrives while the main view
// shows: a desktop notification, the unread count on the contact and in the tray. Opening
// the conversation shows it and clears the count; typing and Return sends a reply, whose
// state follows the phone's events: sending, delivered; a second one waits in the overlay,
// a third fails and says so.
func TestChatWithContact(t *testing.T) {
	h, ta := newTrayHarness(t, nil)
	if _, err := h.st.AddContact(store.Contact{Name: "Bob Smith", User: "bob"}); err != nil {
		t.Fatal(err)
	}
	h.g.reloadContacts()
	test.AssertNotificationSent(t, fyne.NewNotification("Message from Bob Smith", "are you free at 5?"), func() {
		h.receive("bob", "b1", "are you free at 5?")
	})
	h.receive("bob", "b2", "or at 6?")
	if h.g.unread["bob"] != 2 {
		t.Fatalf("unread %v", h.g.unread)
	}
	r := newContactRow(h.g)
	r.set(h.g.contacts[0])
	if r.chat.Text != "2" {
		t.Errorf("contact row's chat button says %q, want the 2 unread", r.chat.Text)
	}
	if !strings.Contains(ta.tooltip, "2 unread messages") || !strings.Contains(menuLabels(ta.menu), "Read messages from bob") {
		t.Errorf("tray: tooltip %q, menu %s", ta.tooltip, menuLabels(ta.menu))
	}

	r.chat.OnTapped() // open the conversation from the contact
	if !h.g.chat.root.Visible() || h.g.mainView.Visible() || h.g.chat.title.Text != "Bob Smith" {
		t.Fatal("the conversation is not showing")
	}
	if got := chatDetails(h.g.chat); len(got) != 2 || !strings.HasPrefix(got[0], "are you free at 5? | ") {
		t.Fatalf("conversation shows %q", got)
	}
	if u, _ := h.st.Unread(); u["bob"] != 0 || h.g.unread["bob"] != 0 || strings.Contains(ta.tooltip, "unread") {
		t.Errorf("still unread after opening: store %v, view %v, tray %q", u, h.g.unread, ta.tooltip)
	}

	typeFocused(t, h.g.win.Canvas(), "5 is fine")
	pressReturn(h.g.win.Canvas())
	h.expect("msg bob 5 is fine")
	if got := chatDetails(h.g.chat); len(got) != 3 || !strings.HasSuffix(got[2], "sending…") || h.g.chat.entry.Text != "" {
		t.Fatalf("after sending: %q, entry %q", got, h.g.chat.entry.Text)
	}
	h.st.SetMessageStatus(store.Outgoing, "bob", "m1", store.MessageDelivered)
	h.emit(phone.Event{Kind: phone.EventDelivered, ID: "m1", Peer: "bob"})
	if got := chatDetails(h.g.chat); !strings.HasSuffix(got[2], "delivered") {
		t.Errorf("after delivery: %q", got[2])
	}

	// A message from somebody else while bob's conversation shows counts as unread.
	h.receive("carol", "c1", "hello")
	if h.g.unread["carol"] != 1 || len(h.g.chat.msgs) != 3 {
		t.Errorf("carol's message: unread %v, bob's conversation %d messages", h.g.unread, len(h.g.chat.msgs))
	}

	h.g.chat.entry.SetText("see you")
	h.g.chat.send.OnTapped()
	h.expect("msg bob see you")
	h.st.SetMessageStatus(store.Outgoing, "bob", "m2", store.MessageStored)
	h.emit(phone.Event{Kind: phone.EventStored, ID: "m2", Peer: "bob"})
	h.g.chat.entry.SetText("bring the keys")
	h.g.chat.send.OnTapped()
	h.expect("msg bob bring the keys")
	h.st.SetMessageStatus(store.Outgoing, "bob", "m3", store.MessageFailed)
	h.emit(phone.Event{Kind: phone.EventError, Code: phone.CodeMessageFailed, ID: "m3", Peer: "bob", Message: "not delivered"})
	got := chatDetails(h.g.chat)
	if !strings.HasSuffix(got[3], "waiting in the overlay until they come online") || !strings.HasSuffix(got[4], "not delivered") {
		t.Errorf("stored and failed messages show %q", got[3:])
	}

	h.g.closeChat()
	if !h.g.mainView.Visible() || h.g.chat.root.Visible() {
		t.Error("back did not return to the main view")
	}

	h.emit(phone.Event{Kind: phone.EventPresence, Peer: "bob", Presence: "in a call"})
	r.set(h.g.contacts[0])
	if !strings.HasPrefix(r.detail.Text, "in a call · ") {
		t.Errorf("contact row with presence: %q", r.detail.Text)
	}
}

// RecordVoicemail records until ctx ends (Send or Cancel) and returns a second of sound.
func (f *fakePhone) RecordVoicemail(ctx context.Context) ([]int16, error) {
	f.act("record")
	<-ctx.Done()
	return make([]int16, 48000), nil
}

func (f *fakePhone) SendVoicemailSamples(user string, samples []int16) (string, error) {
	f.act(fmt.Sprintf("voicemail %s %d", user, len(samples)))
	return "v1", nil
}

func (f *fakePhone) PlayVoicemail(_ context.Context, path string) error {
	f.act("play " + path)
	return nil
}

// TestVoicemailOffer (issue 19): when bob declines alice's call, alice is offered to leave
// a voice message (a button under the dial field, which keeps the focus): Send leaves what
// was recorded; Cancel leaves nothing. A
// voice message in a conversation has Play.
func TestVoicemailOffer(t *testing.T) {
	h := newHarness(t, "alice")
	decline := func() {
		t.Helper()
		typeFocused(t, h.g.win.Canvas(), "bob")
		pressReturn(h.g.win.Canvas())
		h.expect("call bob")
		h.emit(phone.Event{Kind: phone.EventCalling, CallID: "c1", Peer: "bob"})
		h.emit(phone.Event{Kind: phone.EventHangup, CallID: "c1", Reason: "declined"})
		if !h.g.vmOffer.Visible() || h.g.vmOffer.Text != "Leave bob a voice message" {
			t.Fatalf("no offer to leave a voice message: %q", h.g.vmOffer.Text)
		}
		if h.g.win.Canvas().Focused() != h.g.dial {
			t.Error("the offer took the dial field's focus")
		}
	}
	decline()
	test.Tap(h.g.vmOffer)
	h.expect("record")
	if h.g.recording == nil {
		t.Fatal("no recording dialog")
	}
	test.Tap(h.g.recording.send)
	h.expect("voicemail bob 48000")

	h.g.dial.SetText("")
	h.g.win.Canvas().Focus(h.g.dial)
	decline()
	test.Tap(h.g.vmOffer)
	h.expect("record")
	r := h.g.recording
	test.Tap(r.cancel)
	h.waitFor("the recording to end", func() bool { return h.g.recording == nil })
	select {
	case a := <-h.p.acted:
		t.Fatalf("after Cancel the phone was asked to %q", a)
	default:
	}

	if _, _, err := h.st.AddMessage(store.MessageEntry{ID: "v9", Peer: "bob", Direction: store.Incoming, Text: "Voice message (3 s)",
		File: "/tmp/v9.wav", Time: time.Now(), Status: store.MessageReceived}); err != nil {
		t.Fatal(err)
	}
	h.g.openChat("bob")
	row := newMessageRow(h.g)
	row.set(h.g.chat.msgs[len(h.g.chat.msgs)-1])
	if !row.play.Visible() {
		t.Fatal("a voice message has no Play")
	}
	test.Tap(row.play)
	h.expect("play /tmp/v9.wav")
}
