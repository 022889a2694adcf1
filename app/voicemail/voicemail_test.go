package voicemail

import (
	"errors"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

// TestRoundTrip: a 10 s test signal comes back aligned and correlated, in about 20 kB; a
// message over a minute is refused.
func TestRoundTrip(t *testing.T) {
	sig := analysis.TestSignal(audio.SampleRate*10, audio.SampleRate, 7)
	p, err := Encode(sig)
	if err != nil {
		t.Fatal(err)
	}
	if kbps := float64(len(p)*8) / 10 / 1000; kbps > 20 {
		t.Errorf("%d bytes for 10 s (%.1f kbit/s)", len(p), kbps)
	}
	got, err := Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := Duration(got); d < 10*time.Second || d > 10*time.Second+audio.FrameDuration {
		t.Errorf("decoded %v", d)
	}
	win := audio.SampleRate / 4
	seg := got[audio.SampleRate : audio.SampleRate+win]
	if _, c := analysis.Align(seg, sig, len(sig)-win); c < 0.9 {
		t.Errorf("correlation %.2f", c)
	}
	if _, err := Encode(make([]int16, audio.SampleRate*61)); !errors.Is(err, ErrTooLong) {
		t.Errorf("61 s: %v", err)
	}
}

// FuzzDecode: payloads from the overlay never panic Decode.
func FuzzDecode(f *testing.F) {
	p, _ := Encode(make([]int16, audio.SampleRate/10))
	f.Add(p)
	f.Add([]byte{0, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := Decode(b); err == nil && Duration(s) > MaxDuration {
			t.Fatalf("decoded %v", Duration(s))
		}
	})
}
