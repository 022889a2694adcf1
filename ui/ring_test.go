package ui

import (
	"image"
	"image/color"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/phone"
)

func nodeID(prefix string) string { return prefix + strings.Repeat("0", 32-len(prefix)) }

// hasColor reports whether img has a pixel within 8 of c on each channel.
func hasColor(img image.Image, c color.NRGBA) bool {
	b := img.Bounds()
	near := func(a uint32, v uint8) bool { d := int(a>>8) - int(v); return d > -8 && d < 8 }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				return true
			}
		}
	}
	return false
}

// TestRingPicture (issue 20 item 3): Settings → Ring draws this peer, its predecessor,
// successors and fingers on the circle with the responsible range, and redraws when the
// phone's status says the ring changed. Saved as settings-ring.png.
func TestRingPicture(t *testing.T) {
	h := newHarness(t, "alice")
	st := h.p.Status()
	st.State, st.Role, st.NodeID = phone.Registered, "peer", nodeID("80")
	st.Predecessors = []string{nodeID("40"), nodeID("30")}
	st.Successors = []string{nodeID("c0"), nodeID("d0")}
	st.Fingers = []string{nodeID("c0"), nodeID("e0"), nodeID("10")}
	st.StoredRecords = 3
	st.Links = map[string]peer.LinkInfo{nodeID("c0"): {Type: "TLS", RTT: 12 * time.Millisecond}, nodeID("40"): {Type: "DTLS"}}
	h.emit(phone.Event{Kind: phone.EventStatus, Status: &st})
	h.g.showSettings()
	h.g.settings.tabs.SelectIndex(5)
	w := h.g.win
	w.Resize(fyne.NewSize(420, 640))
	img := w.Canvas().Capture()
	savePNG(t, artifactsDir(t), "settings-ring.png", img)
	for name, c := range map[string]color.NRGBA{"this peer": ringSelf, "predecessor": ringPred, "successor": ringSucc, "finger": ringFing, "responsible range": ringRange} {
		if !hasColor(img, c) {
			t.Errorf("the picture has no %s", name)
		}
	}
	for _, want := range []string{"c000 TLS 12ms", "4000 DTLS", "e000"} {
		if !ringHasText(h.g.settings.ring, want) {
			t.Errorf("no label %q on the ring", want)
		}
	}
	before := h.g.settings.ring.Objects[0]
	st.Successors = []string{nodeID("a0"), nodeID("c0")}
	h.emit(phone.Event{Kind: phone.EventStatus, Status: &st})
	if h.g.settings.ring.Objects[0] == before {
		t.Error("the ring was not redrawn when the successors changed")
	}
	st.Role = "client"
	h.emit(phone.Event{Kind: phone.EventStatus, Status: &st})
	if hasColor(w.Canvas().Capture(), ringSelf) {
		t.Error("a client is drawn on the ring")
	}
}

// ringHasText reports whether a canvas.Text under o reads text.
func ringHasText(o fyne.CanvasObject, text string) bool {
	switch x := o.(type) {
	case *canvas.Text:
		return x.Text == text
	case *fyne.Container:
		for _, c := range x.Objects {
			if ringHasText(c, text) {
				return true
			}
		}
	}
	return false
}
