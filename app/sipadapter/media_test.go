package sipadapter

import (
	"log/slog"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

// TestLegG711RoundTrip: frames written to one leg arrive at another over real UDP as
// G.711 (PCMU and PCMA), resampled 48 -> 8 -> 48 kHz, and still correlate with what was sent.
func TestLegG711RoundTrip(t *testing.T) {
	for _, pt := range []int{ptPCMU, ptPCMA} {
		a, err := newLeg("127.0.0.1", slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := newLeg("127.0.0.1", slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		// b offers only pt; a answers with it.
		if err := a.setRemote(b.sdp("127.0.0.1", pt)); err != nil {
			t.Fatal(err)
		}
		if err := b.setRemote(a.sdp("127.0.0.1", a.codec())); err != nil {
			t.Fatal(err)
		}
		if b.codec() != pt || a.codec() != pt {
			t.Fatalf("codecs %d %d", a.codec(), b.codec())
		}
		sig := analysis.TestSignal(audio.SampleRate, audio.SampleRate, 3)
		for i := 0; i+audio.FrameSamples <= len(sig); i += audio.FrameSamples {
			if err := a.WriteFrame(sig[i : i+audio.FrameSamples]); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for b.received.Load() < 50 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling the packet count
		}
		b.mu.Lock()
		var got []int16
		for _, f := range b.queue {
			got = append(got, f...)
		}
		b.mu.Unlock()
		if len(got) < 4*audio.FrameSamples {
			t.Fatalf("PT %d: %d samples arrived", pt, len(got))
		}
		_, c := analysis.Align(got, sig, len(sig)-len(got))
		t.Logf("PT %d: %d samples, correlation %.3f", pt, len(got), c)
		if c < 0.95 {
			t.Errorf("PT %d: correlation %.3f < 0.95", pt, c)
		}
	}
}

// TestLegDTMF: digits sent as RFC 4733 events by one leg arrive once each at the other.
func TestLegDTMF(t *testing.T) {
	a, err := newLeg("127.0.0.1", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := newLeg("127.0.0.1", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan rune, 10)
	b.mu.Lock()
	b.onDTMF = func(r rune) { got <- r }
	b.mu.Unlock()
	if err := a.setRemote(b.sdp("127.0.0.1", -1)); err != nil {
		t.Fatal(err)
	}
	a.sendDigits("5#")
	var digits []rune
	for len(digits) < 2 {
		select {
		case r := <-got:
			digits = append(digits, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("digits received: %q", string(digits))
		}
	}
	if string(digits) != "5#" {
		t.Errorf("digits %q, want 5#", string(digits))
	}
	select {
	case r := <-got:
		t.Errorf("digit %q received twice or more", r)
	case <-time.After(300 * time.Millisecond): // the end packets' repetitions would be here
	}
}
