package ui

import (
	"errors"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// Messenger sends text messages (issue 19); *phone.Phone satisfies it. The conversation
// itself is read from the profile's database, where the phone keeps it.
type Messenger interface {
	SendMessage(user, text string) (string, error)
}

// chatLimit is how many messages of a conversation the view shows.
const chatLimit = 200

// chatView is the conversation with one contact: its history (sent / delivered / waiting
// in the overlay / failed for ours), an entry and Send.
type chatView struct {
	g     *gui
	root  *fyne.Container
	peer  string
	title *widget.Label
	list  *widget.List
	msgs  []store.MessageEntry
	entry *widget.Entry
	send  *widget.Button
	err   *widget.Label
	// presence of contacts as the phone reports it (online, offline, in a call)
	presence map[string]string
}

func newChatView(g *gui) *chatView {
	v := &chatView{g: g, title: widget.NewLabel(""), entry: widget.NewEntry(), err: newErrorLabel(""), presence: map[string]string{}}
	v.title.TextStyle = fyne.TextStyle{Bold: true}
	v.title.Truncation = fyne.TextTruncateEllipsis
	v.err.Hide()
	back := widget.NewButtonWithIcon("", theme.NavigateBackIcon(), g.closeChat)
	back.Importance = widget.LowImportance
	call := widget.NewButtonWithIcon("", theme.NewSuccessThemedResource(callIcon), func() {
		peer := v.peer
		g.closeChat()
		g.dial.SetText(peer)
		g.dialUser(peer)
	})
	call.Importance = widget.LowImportance
	v.list = widget.NewList(
		func() int { return len(v.msgs) },
		func() fyne.CanvasObject { return newMessageRow(g) },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(v.msgs) {
				o.(*messageRow).set(v.msgs[i])
				v.list.SetItemHeight(i, o.MinSize().Height)
			}
		})
	v.entry.SetPlaceHolder("message")
	v.entry.OnSubmitted = func(string) { v.doSend() }
	v.send = widget.NewButtonWithIcon("Send", theme.MailSendIcon(), v.doSend)
	v.send.Importance = widget.HighImportance
	head := container.NewBorder(nil, nil, back, call, v.title)
	foot := container.NewVBox(v.err, container.NewBorder(nil, nil, nil, v.send, v.entry))
	v.root = container.NewBorder(container.NewVBox(head, widget.NewSeparator()), foot, nil, nil, v.list)
	return v
}

// open shows the conversation with peer and marks it read.
func (v *chatView) open(peer string) {
	v.peer = peer
	v.title.SetText(v.g.displayName(peer))
	v.entry.SetText("")
	v.err.Hide()
	v.reload()
}

func (v *chatView) showing(peer string) bool { return v.root.Visible() && v.peer == peer }

// reload reads the conversation again and marks what arrived as read.
func (v *chatView) reload() {
	g := v.g
	if g.st == nil {
		v.showErr("Messages are not available: the phone has no profile database.")
		return
	}
	ms, err := g.st.Messages(v.peer, chatLimit)
	if err != nil {
		v.showErr(errorText(err))
		return
	}
	v.msgs = ms
	if err := g.st.MarkRead(v.peer); err != nil {
		g.log.Warn("marking messages read", "err", err)
	}
	delete(g.unread, v.peer)
	v.list.Refresh()
	if n := len(v.msgs); n > 0 {
		v.list.ScrollToBottom()
	}
}

func (v *chatView) showErr(s string) {
	v.err.SetText(s)
	v.err.Show()
}

// doSend sends the entry's text to the conversation's peer.
func (v *chatView) doSend() {
	text := strings.TrimSpace(v.entry.Text)
	if text == "" {
		return
	}
	m, ok := v.g.p.(Messenger)
	if !ok {
		v.showErr("This phone cannot send messages.")
		return
	}
	if _, err := m.SendMessage(v.peer, text); err != nil {
		v.showErr(errorText(err))
		return
	}
	v.err.Hide()
	v.entry.SetText("")
	v.reload()
}

// messageRow is one message: the text (ours aligned to the right) and its time and state; a
// voice message has Play.
type messageRow struct {
	widget.BaseWidget
	text   *widget.Label
	detail *widget.Label
	play   *widget.Button
	file   string
	pad    *fyne.Container
}

func newMessageRow(g *gui) *messageRow {
	r := &messageRow{text: widget.NewLabel(""), detail: widget.NewLabel("")}
	r.text.Wrapping = fyne.TextWrapWord
	r.detail.SizeName = theme.SizeNameCaptionText
	r.play = widget.NewButtonWithIcon("Play", theme.MediaPlayIcon(), func() { g.playVoice(r.file) })
	r.play.Importance = widget.LowImportance
	r.play.Hide()
	r.pad = container.NewPadded(container.NewVBox(r.text, container.NewHBox(r.play), r.detail))
	r.ExtendBaseWidget(r)
	return r
}

func (r *messageRow) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(r.pad) }

func (r *messageRow) set(m store.MessageEntry) {
	r.text.SetText(m.Text)
	r.text.Alignment = fyne.TextAlignLeading
	r.detail.Alignment = fyne.TextAlignLeading
	r.text.Importance = widget.MediumImportance
	if m.Direction == store.Outgoing {
		r.text.Alignment, r.detail.Alignment = fyne.TextAlignTrailing, fyne.TextAlignTrailing
		if m.Status == store.MessageFailed {
			r.text.Importance = widget.DangerImportance
		}
	}
	r.file = m.File
	if m.File != "" {
		r.play.Show()
	} else {
		r.play.Hide()
	}
	r.detail.SetText(messageDetail(m, time.Now()))
	r.text.Refresh()
	r.detail.Refresh()
}

// messageDetail is "14:05 · delivered" (the time, and for ours the state in words).
func messageDetail(m store.MessageEntry, now time.Time) string {
	when := historyDetail(store.HistoryEntry{Start: m.Time, Duration: time.Second}, now)
	when, _, _ = strings.Cut(when, " · ")
	if m.Direction != store.Outgoing {
		if m.Offline {
			return when + " · kept for you by the overlay"
		}
		return when
	}
	switch m.Status {
	case store.MessageSending:
		return when + " · sending…"
	case store.MessageStored:
		return when + " · sent, waiting in the overlay until they come online"
	case store.MessageDelivered:
		return when + " · delivered"
	case store.MessageFailed:
		return when + " · not delivered"
	}
	return when
}

// openChat shows the conversation with peer in place of the main view.
func (g *gui) openChat(peer string) {
	g.chat.open(peer)
	g.mainView.Hide()
	g.chat.root.Show()
	g.content.Refresh()
	g.win.Canvas().Focus(g.chat.entry)
	g.tray.update()
	g.contactList.Refresh()
}

// closeChat goes back to the main view.
func (g *gui) closeChat() {
	g.chat.root.Hide()
	g.chat.peer = ""
	g.showMainView()
}

// chatEvent follows the phone's message events: a message that arrives is counted unread
// (and announced with a desktop notification) unless its conversation is showing; the
// state of one of ours shows in its conversation.
func (g *gui) chatEvent(e phone.Event) {
	peer := firstNonEmpty(e.Peer, e.From)
	if e.Kind == phone.EventPresence {
		g.chat.presence[peer] = e.Presence
		g.contactList.Refresh()
		return
	}
	if e.Kind == phone.EventMessage {
		if g.chat.showing(peer) && (g.tray == nil || !g.tray.hidden) {
			g.chat.reload()
			return
		}
		g.unread[peer]++
		g.fa.SendNotification(fyne.NewNotification("Message from "+g.displayName(peer), e.Text))
		g.contactList.Refresh()
		return
	}
	if g.chat.showing(peer) {
		g.chat.reload()
	} else if e.Kind == phone.EventError && e.Message != "" {
		g.setDialError(errorText(errors.New(e.Message)))
	}
}

// isChatEvent tells the events chatEvent takes.
func isChatEvent(e phone.Event) bool {
	switch e.Kind {
	case phone.EventMessage, phone.EventSent, phone.EventDelivered, phone.EventStored, phone.EventPresence:
		return true
	case phone.EventError:
		return e.Code == phone.CodeMessageFailed
	}
	return false
}

// loadUnread counts the messages not read yet, by peer, from the profile.
func (g *gui) loadUnread() {
	g.unread = map[string]int{}
	if g.st == nil {
		return
	}
	if u, err := g.st.Unread(); err == nil {
		g.unread = u
	}
}

// unreadTotal is the number of messages not read yet, and from whom the latest ones are.
func (g *gui) unreadTotal() (n int, from string) {
	for peer, c := range g.unread {
		n += c
		if c > 0 && (from == "" || peer < from) {
			from = peer
		}
	}
	return n, from
}

// unreadText is "3 unread messages" for the tray, "" with none.
func (g *gui) unreadText() string {
	n, _ := g.unreadTotal()
	if n == 0 {
		return ""
	}
	return plural(n, "unread message", "unread messages")
}
