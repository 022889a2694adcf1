package ui

import (
	"encoding/hex"
	"fmt"
	"image/color"
	"math"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"

	"github.com/chordphone/chordphone/app/phone"
)

// Ring colours: this peer, its predecessors, successors and fingers, and the arc of
// Node-IDs it is responsible for (RFC 6940 §10.1: from its predecessor, exclusive, to itself).
var (
	ringSelf  = color.NRGBA{R: 0xd3, G: 0x2f, B: 0x2f, A: 0xff}
	ringPred  = color.NRGBA{R: 0x8e, G: 0x24, B: 0xaa, A: 0xff}
	ringSucc  = color.NRGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
	ringFing  = color.NRGBA{R: 0x15, G: 0x65, B: 0xc0, A: 0xff}
	ringRange = color.NRGBA{R: 0xff, G: 0xa0, B: 0x00, A: 0xff}
)

// ringAngle places a Node-ID on the circle: its first 64 bits as a fraction of the ring,
// clockwise from the top. ok is false for what is not a hex Node-ID.
func ringAngle(id string) (float64, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) < 8 {
		return 0, false
	}
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return float64(v) / math.Pow(2, 64) * 2 * math.Pi, true
}

// ringMark is an object placed at an angle on the circle.
type ringMark struct {
	obj   fyne.CanvasObject
	angle float64
	out   float32 // distance outside the circle (labels)
	size  fyne.Size
}

// ringLayout draws the ring into whatever size it is given.
type ringLayout struct {
	circle  *canvas.Circle
	arc     []*canvas.Line // the responsible range, as segments of the circle
	arcFrom float64        // where the arc starts (the first predecessor)
	arcTo   float64        // and ends (this peer)
	chords  []*canvas.Line // this peer to each finger
	chordTo []float64      // the fingers' angles
	self    float64        // this peer's angle
	marks   []ringMark
	minSize fyne.Size
}

func (l *ringLayout) point(center fyne.Position, r float32, a float64) fyne.Position {
	return fyne.NewPos(center.X+r*float32(math.Sin(a)), center.Y-r*float32(math.Cos(a)))
}

// Layout places the circle, arc, chords and marks for size.
func (l *ringLayout) Layout(_ []fyne.CanvasObject, size fyne.Size) {
	c := fyne.NewPos(size.Width/2, size.Height/2)
	r := min(size.Width, size.Height)/2 - 60
	if r < 10 {
		r = 10
	}
	l.circle.Move(fyne.NewPos(c.X-r, c.Y-r))
	l.circle.Resize(fyne.NewSize(2*r, 2*r))
	span := math.Mod(l.arcTo-l.arcFrom+2*math.Pi, 2*math.Pi)
	for i, seg := range l.arc {
		a0 := l.arcFrom + span*float64(i)/float64(len(l.arc))
		a1 := l.arcFrom + span*float64(i+1)/float64(len(l.arc))
		seg.Position1, seg.Position2 = l.point(c, r, a0), l.point(c, r, a1)
	}
	for i, ch := range l.chords {
		ch.Position1, ch.Position2 = l.point(c, r, l.self), l.point(c, r, l.chordTo[i])
	}
	for _, m := range l.marks {
		p := l.point(c, r+m.out, m.angle)
		m.obj.Resize(m.size)
		m.obj.Move(fyne.NewPos(p.X-m.size.Width/2, p.Y-m.size.Height/2))
	}
}

// MinSize is a circle large enough to read.
func (l *ringLayout) MinSize([]fyne.CanvasObject) fyne.Size { return l.minSize }

// newRing draws the ring as s shows it: this peer, predecessors, successors and fingers at
// their places, the range this peer is responsible for, and a legend with the records it
// stores for others. A client (or a peer not joined yet) gets a sentence instead.
func newRing(s phone.Status) fyne.CanvasObject {
	self, ok := ringAngle(s.NodeID)
	if !ok || s.Role == "client" {
		text := "The ring appears here once this phone has joined the overlay as a storing peer."
		if s.Role == "client" {
			text = "This phone is a client (it stores nothing for others): it has no place on the ring."
		}
		return canvas.NewText(text, theme.Color(theme.ColorNameForeground))
	}
	l := &ringLayout{self: self, minSize: fyne.NewSize(260, 260)}
	l.circle = canvas.NewCircle(color.Transparent)
	l.circle.StrokeColor, l.circle.StrokeWidth = theme.Color(theme.ColorNameDisabled), 2
	objs := []fyne.CanvasObject{l.circle}
	l.arcFrom, l.arcTo = self, self
	if len(s.Predecessors) > 0 {
		if a, ok := ringAngle(s.Predecessors[0]); ok {
			l.arcFrom = a
		}
	}
	if l.arcFrom != l.arcTo {
		for i := 0; i < 48; i++ {
			seg := canvas.NewLine(ringRange)
			seg.StrokeWidth = 6
			l.arc = append(l.arc, seg)
			objs = append(objs, seg)
		}
	}
	for _, f := range s.Fingers {
		if a, ok := ringAngle(f); ok {
			ch := canvas.NewLine(withAlpha(ringFing, 0x60))
			l.chords, l.chordTo = append(l.chords, ch), append(l.chordTo, a)
			objs = append(objs, ch)
		}
	}
	dot := func(id string, c color.Color, d float32) {
		a, ok := ringAngle(id)
		if !ok {
			return
		}
		circle := canvas.NewCircle(c)
		label := canvas.NewText(ringLabel(id, s), c)
		label.TextSize = 10
		ls := label.MinSize() // outside the circle, clear of the dot whatever the angle
		out := 10 + ls.Width/2*float32(math.Abs(math.Sin(a))) + ls.Height/2*float32(math.Abs(math.Cos(a)))
		l.marks = append(l.marks, ringMark{obj: circle, angle: a, size: fyne.NewSize(d, d)},
			ringMark{obj: label, angle: a, out: out, size: ls})
		objs = append(objs, circle, label)
	}
	for _, f := range s.Fingers {
		dot(f, ringFing, 10)
	}
	for _, id := range s.Successors {
		dot(id, ringSucc, 12)
	}
	for _, id := range s.Predecessors {
		dot(id, ringPred, 12)
	}
	dot(s.NodeID, ringSelf, 16)
	ring := container.New(l, objs...)
	return container.NewVBox(ring, ringLegend(s))
}

func withAlpha(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

// ringLabel is a node's label: its Node-ID's first hex digits, with the link's type and
// round-trip time when this peer has a link to it.
func ringLabel(id string, s phone.Status) string {
	l, ok := s.Links[id]
	switch {
	case !ok || l.Type == "":
		return id[:4]
	case l.RTT <= 0:
		return id[:4] + " " + l.Type
	}
	return fmt.Sprintf("%s %s %s", id[:4], l.Type, l.RTT.Round(100*time.Microsecond))
}

// ringLegend names the colours and says how much this peer stores for others.
func ringLegend(s phone.Status) fyne.CanvasObject {
	item := func(c color.Color, text string) fyne.CanvasObject {
		sw := canvas.NewRectangle(c)
		sw.SetMinSize(fyne.NewSize(12, 12))
		t := canvas.NewText(text, theme.Color(theme.ColorNameForeground))
		t.TextSize = 12
		return container.NewHBox(container.NewCenter(sw), t)
	}
	return container.NewVBox(
		container.NewHBox(item(ringSelf, "this peer"), item(ringPred, fmt.Sprintf("predecessors (%d)", len(s.Predecessors))),
			item(ringSucc, fmt.Sprintf("successors (%d)", len(s.Successors)))),
		container.NewHBox(item(ringFing, fmt.Sprintf("fingers (%d)", len(s.Fingers))),
			item(ringRange, fmt.Sprintf("responsible range; %s stored for others", plural(s.StoredRecords, "record", "records")))),
	)
}
