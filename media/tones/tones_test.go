package tones_test

import (
	"context"
	"testing"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/tones"
)

func read(t *testing.T, p tones.Pattern, ms int) []int16 {
	t.Helper()
	s := tones.NewUnpacedSource(p)
	defer s.Close()
	var out []int16
	f := make([]int16, audio.FrameSamples)
	for range ms / 20 {
		if err := s.ReadFrame(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f...)
	}
	return out
}

func ms(n int) int { return n * audio.SampleRate / 1000 }

func TestRingbackCadenceAndFrequencies(t *testing.T) {
	x := read(t, tones.Ringback, 6000)
	on, off := x[ms(100):ms(1900)], x[ms(2100):ms(5900)]
	if analysis.RMS(off) != 0 {
		t.Fatal("ringback not silent in its off period")
	}
	for _, f := range []float64{440, 480} {
		if p := analysis.Goertzel(on, f, audio.SampleRate); p < 0.4 {
			t.Fatalf("ringback lacks %v Hz (%.2f)", f, p)
		}
	}
	if l := audio.Level(on); l < -20 || l > -6 {
		t.Fatalf("ringback level %.1f dBFS", l)
	}
}

func TestBusyCadence(t *testing.T) {
	x := read(t, tones.Busy, 2000)
	for i, want := range []bool{true, false, true, false} {
		seg := x[ms(i*500+50):ms(i*500+450)]
		if got := analysis.RMS(seg) > 100; got != want {
			t.Fatalf("busy period %d: on=%v", i, got)
		}
	}
	if p := analysis.Goertzel(x[ms(50):ms(450)], 620, audio.SampleRate); p < 0.4 {
		t.Fatalf("busy lacks 620 Hz (%.2f)", p)
	}
}

func TestRingtoneIsAudibleThenQuiet(t *testing.T) {
	x := read(t, tones.Ringtone, 4000)
	if analysis.RMS(x[:ms(1200)]) < 3000 || analysis.RMS(x[ms(1300):ms(4000)]) != 0 {
		t.Fatal("ringtone cadence wrong")
	}
}

func TestDTMFDigitsHaveTheirFrequencies(t *testing.T) {
	for _, d := range "0123456789*#ABCD" {
		x, err := tones.DTMF(string(d), 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi, _ := tones.DTMFFrequencies(d)
		rows := []float64{697, 770, 852, 941}
		cols := []float64{1209, 1336, 1477, 1633}
		if analysis.DominantFrequency(x, audio.SampleRate, rows...) != lo || analysis.DominantFrequency(x, audio.SampleRate, cols...) != hi {
			t.Fatalf("digit %c: wrong frequencies", d)
		}
	}
	if _, err := tones.DTMF("12x", 100, 50); err == nil {
		t.Fatal("invalid digit accepted")
	}
}
