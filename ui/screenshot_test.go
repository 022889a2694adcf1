package ui

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// artifactsDir is where screenshots go: $CHORDPHONE_ARTIFACTS, or the test's temp dir.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("CHORDPHONE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func savePNG(t *testing.T, dir, name string, img image.Image) {
	t.Helper()
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Fatalf("%s: capture is only %v", name, b)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", f.Name())
}

// TestScreenshots renders the main window, settings, the incoming-call window and the in-call
// view through the test driver (no X needed) and saves them as PNG artifacts.
func TestScreenshots(t *testing.T) {
	dir := artifactsDir(t)
	for _, variant := range []struct {
		name string
		v    fyne.ThemeVariant
	}{{"light", theme.VariantLight}, {"dark", theme.VariantDark}} {
		t.Run(variant.name, func(t *testing.T) {
			h := newHarness(t, "alice")
			h.app.Settings().SetTheme(fixedVariant{theme.DefaultTheme(), variant.v})
			now := time.Now()
			h.st.AddContact(store.Contact{Name: "Bob Smith", User: "bob", AoR: "sip:bob@example.org", Fingerprint: "AB:CD"})
			h.st.AddContact(store.Contact{Name: "Carol", User: "carol", AoR: "sip:carol@example.org"})
			h.st.AddHistory(store.HistoryEntry{Direction: store.Outgoing, Peer: "bob", Start: now.Add(-3 * time.Hour), Duration: 151 * time.Second})
			h.st.AddHistory(store.HistoryEntry{Direction: store.Incoming, Peer: "carol", Start: now.Add(-2 * time.Hour), Duration: 42 * time.Second})
			h.st.AddHistory(store.HistoryEntry{Direction: store.Missed, Peer: "dave", Start: now.Add(-time.Hour)})
			h.g.reloadContacts()
			h.g.reloadHistory()
			w := h.g.win
			w.Resize(fyne.NewSize(420, 640))
			savePNG(t, dir, "main-"+variant.name+".png", w.Canvas().Capture())

			h.g.tabs.SelectIndex(1)
			savePNG(t, dir, "contacts-"+variant.name+".png", w.Canvas().Capture())
			h.g.tabs.SelectIndex(0)

			h.g.showSettings()
			savePNG(t, dir, "settings-"+variant.name+".png", w.Canvas().Capture())
			for i, tab := range []string{"audio", "network", "peer", "identity"} {
				h.g.settings.tabs.SelectIndex(i + 1)
				savePNG(t, dir, "settings-"+tab+"-"+variant.name+".png", w.Canvas().Capture())
			}
			h.g.settings.tabs.SelectIndex(0)
			h.g.settings.mode.SetSelected(modeNamed)
			h.g.settings.overlay.SetText("bad name!")
			test.Tap(h.g.settings.save)
			savePNG(t, dir, "settings-errors-"+variant.name+".png", w.Canvas().Capture())
			h.g.settings.d.Hide()

			iw := incoming(h)
			savePNG(t, dir, "incoming-"+variant.name+".png", iw.w.Canvas().Capture())
			test.Tap(iw.accept)
			h.expect("answer")
			h.p.mu.Lock()
			h.p.status.Calls = []phone.CallInfo{{ID: "in1", Peer: "carol", State: phone.CallActive,
				Stats: &phone.RTPStats{Codec: "Opus 48 kHz", Received: 1500, Lost: 3, JitterMs: 3.4, RTTMs: 18}}}
			h.p.mu.Unlock()
			h.emit(phone.Event{Kind: phone.EventAnswered, CallID: "in1"})
			test.Tap(h.g.call.keypadBtn)
			savePNG(t, dir, "in-call-"+variant.name+".png", w.Canvas().Capture())
		})
	}
}

// fixedVariant is a theme that always uses one variant (light or dark).
type fixedVariant struct {
	fyne.Theme
	v fyne.ThemeVariant
}

func (f fixedVariant) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return f.Theme.Color(n, f.v)
}
