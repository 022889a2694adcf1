package ui

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/store"
)

// historyRow is one line of Recent: direction icon, name, time and duration.
type historyRow struct {
	widget.BaseWidget
	box    *fyne.Container
	icon   *widget.Icon
	name   *widget.Label
	detail *widget.Label
}

func newHistoryRow() *historyRow {
	r := &historyRow{icon: widget.NewIcon(callReceivedIcon), name: widget.NewLabel(""), detail: widget.NewLabel("")}
	r.name.Truncation = fyne.TextTruncateEllipsis
	r.box = container.NewBorder(nil, nil, r.icon, r.detail, r.name)
	r.ExtendBaseWidget(r)
	return r
}

func (r *historyRow) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(r.box)
}

func (r *historyRow) set(h store.HistoryEntry, name string) {
	switch h.Direction {
	case store.Missed:
		r.icon.SetResource(theme.NewErrorThemedResource(callMissedIcon))
		r.name.Importance = widget.DangerImportance
	case store.Outgoing:
		r.icon.SetResource(callMadeIcon)
		r.name.Importance = widget.MediumImportance
	default:
		r.icon.SetResource(callReceivedIcon)
		r.name.Importance = widget.MediumImportance
	}
	r.name.SetText(name)
	r.name.Refresh()
	r.detail.SetText(historyDetail(h, time.Now()))
	r.box.Refresh() // the detail's width changed: lay the row out again
}

// historyDetail is "14:05 · 2:31", or the date for older calls; missed calls say so.
func historyDetail(h store.HistoryEntry, now time.Time) string {
	t := h.Start.Local()
	var when string
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Local().Date()
	switch {
	case y1 == y2 && m1 == m2 && d1 == d2:
		when = t.Format("15:04")
	case y1 == y2:
		when = t.Format("Jan 2 15:04")
	default:
		when = t.Format("2006-01-02")
	}
	failed := strings.HasPrefix(h.Reason, "failed")
	switch {
	case h.Direction == store.Missed && failed:
		return when + " · missed, " + shortReason(h.Reason)
	case h.Direction == store.Missed:
		return when + " · missed"
	case h.Duration <= 0 && h.Reason == "": // written before history kept the reason
		return when + " · no answer"
	case h.Duration <= 0 && (h.Reason == "hangup" || h.Reason == "local hangup"):
		return when + " · cancelled"
	case h.Duration <= 0:
		return when + " · " + shortReason(h.Reason)
	}
	switch h.Reason {
	case "", "hangup", "local hangup", "remote hangup":
		return when + " · " + formatDuration(h.Duration)
	}
	return when + " · " + formatDuration(h.Duration) + " · " + shortReason(h.Reason)
}

// shortReason keeps a history row's reason to one short line.
func shortReason(r string) string {
	const limit = 48
	if rs := []rune(r); len(rs) > limit {
		return string(rs[:limit-1]) + "…"
	}
	return r
}

// formatDuration is m:ss, or h:mm:ss from an hour.
func formatDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// contactRow is one contact: name, AoR and pinned-key status, with Call, Edit and Remove.
type contactRow struct {
	widget.BaseWidget
	g      *gui
	c      store.Contact
	name   *widget.Label
	detail *widget.Label
	call   *widget.Button
	chat   *widget.Button // the conversation, with the number of unread messages (chat.go)
	edit   *widget.Button
	remove *widget.Button
	box    *fyne.Container
}

func newContactRow(g *gui) *contactRow {
	r := &contactRow{g: g, name: widget.NewLabel(""), detail: widget.NewLabel("")}
	r.name.TextStyle = fyne.TextStyle{Bold: true}
	r.name.Truncation = fyne.TextTruncateEllipsis
	r.detail.Truncation = fyne.TextTruncateEllipsis
	r.detail.SizeName = theme.SizeNameCaptionText
	r.call = widget.NewButtonWithIcon("", theme.NewSuccessThemedResource(callIcon), func() { g.dial.SetText(r.c.User); g.dialUser(r.c.User) })
	r.chat = widget.NewButtonWithIcon("", theme.MailComposeIcon(), func() { g.openChat(r.c.User) })
	r.edit = widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), func() { g.editContact(r.c) })
	r.remove = widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { g.removeContact(r.c) })
	for _, b := range []*widget.Button{r.call, r.chat, r.edit, r.remove} {
		b.Importance = widget.LowImportance
	}
	r.box = container.NewBorder(nil, nil, nil, container.NewHBox(r.call, r.chat, r.edit, r.remove), container.NewVBox(r.name, r.detail))
	r.ExtendBaseWidget(r)
	return r
}

func (r *contactRow) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(r.box)
}

func (r *contactRow) set(c store.Contact) {
	r.c = c
	r.name.SetText(c.Name)
	aor := c.AoR
	if aor == "" {
		aor = c.User
	}
	key := "key not pinned yet"
	if c.Fingerprint != "" {
		key = "key pinned"
	}
	detail := aor + " · " + key
	if pr := r.g.chat.presence[c.User]; pr != "" {
		detail = pr + " · " + detail // presence (chat.go)
	}
	r.detail.SetText(detail)
	r.chat.SetText("")
	r.chat.Importance = widget.LowImportance
	if n := r.g.unread[c.User]; n > 0 {
		r.chat.SetText(fmt.Sprint(n))
		r.chat.Importance = widget.HighImportance
	}
	r.chat.Refresh()
}
