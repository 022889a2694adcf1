package sipadapter

import "github.com/chordphone/chordphone/app/phone"

// LineConfig says how a user's line joins the overlay: as the adapter peer's phone does.
type LineConfig struct {
	// Phone is the adapter peer's own phone: its peer is the lines' way into the overlay.
	Phone   *phone.Phone
	Overlay string
	Config  string
	// Listen is the adapter peer's --listen: lines listen on the same host.
	Listen string
}

type lines struct{}

func newLines(a *Adapter, cfg LineConfig) *lines { return &lines{} }
func (l *lines) set(user string, registered bool) {}
func (l *lines) closeAll()                         {}
