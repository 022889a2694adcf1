package ui

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/chordphone/chordphone/app/store"
)

// contactForm is the add/edit contact dialog.
type contactForm struct {
	d      *dialog.CustomDialog
	name   *widget.Entry
	user   *widget.Entry
	err    *widget.Label
	save   *widget.Button
	cancel *widget.Button
	saved  bool
}

// editContact adds (c.ID == 0) or edits a contact; errors show in the dialog.
func (g *gui) editContact(c store.Contact) {
	if g.st == nil {
		dialog.ShowError(errors.New("contacts are not available: the phone has no profile database"), g.win)
		return
	}
	f := &contactForm{name: widget.NewEntry(), user: widget.NewEntry(), err: newErrorLabel("")}
	f.err.Hide()
	f.name.SetText(c.Name)
	f.name.SetPlaceHolder("Bob Smith")
	f.user.SetText(c.User)
	f.user.SetPlaceHolder("bob")
	f.user.Validator = validateUserField
	key := "not pinned yet (pinned on the first call)"
	if c.Fingerprint != "" {
		key = c.Fingerprint
	}
	form := widget.NewForm(
		widget.NewFormItem("Name", f.name),
		widget.NewFormItem("User name", f.user),
		widget.NewFormItem("Key", selectableLabel(key)),
	)
	title := "Add contact"
	if c.ID != 0 {
		title = "Edit contact"
	}
	f.save = widget.NewButton("Save", func() {
		c2 := c
		c2.Name = strings.TrimSpace(f.name.Text)
		c2.User = strings.TrimSpace(f.user.Text)
		if err := f.user.Validator(c2.User); err != nil {
			f.user.SetValidationError(err)
			f.showErr("User name: " + err.Error())
			return
		}
		if c2.User != c.User || c2.AoR == "" {
			c2.AoR = ""
			if g.status.Overlay != "" {
				c2.AoR = "sip:" + c2.User + "@" + g.status.Overlay
			}
		}
		var err error
		if c2.ID == 0 {
			_, err = g.st.AddContact(c2)
		} else {
			err = g.st.UpdateContact(c2)
		}
		if errors.Is(err, store.ErrDuplicate) {
			f.showErr(fmt.Sprintf("%s is already in your contacts.", c2.User))
			return
		}
		if err != nil {
			f.showErr(errorText(err))
			return
		}
		f.saved = true
		f.d.Hide()
		g.reloadContacts()
	})
	f.save.Importance = widget.HighImportance
	f.cancel = widget.NewButton("Cancel", func() { f.d.Hide() })
	f.d = dialog.NewCustomWithoutButtons(title, container.NewVBox(form, f.err), g.win)
	f.d.SetButtons([]fyne.CanvasObject{f.cancel, f.save})
	f.d.Resize(fyne.NewSize(380, 260))
	f.d.Show()
	g.win.Canvas().Focus(f.name)
	g.contactForm = f
}

func (f *contactForm) showErr(s string) {
	f.err.SetText(s)
	f.err.Show()
}

func (g *gui) removeContact(c store.Contact) {
	d := dialog.NewConfirm("Remove contact", fmt.Sprintf("Remove %s (%s) from your contacts?", c.Name, c.User), func(ok bool) {
		if !ok {
			return
		}
		if err := g.st.DeleteContact(c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			dialog.ShowError(err, g.win)
		}
		g.reloadContacts()
	}, g.win)
	d.SetConfirmText("Remove")
	d.SetConfirmImportance(widget.DangerImportance)
	d.Show()
	g.confirm = d
}
