package rtc_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/dsp"
	"github.com/chordphone/chordphone/media/rtc"
)

// A session with the echo canceller and noise suppressor switched on still
// carries the near-end signal, and the user can switch them off mid-call.
func TestSessionWithEchoCancellerAndNoiseSuppressor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := dsp.New(dsp.Config{EchoCancel: true, NoiseSuppress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	a := &peer{sig: analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, 14)}
	a.src = audio.NewSampleSource(a.sig, audio.WAVSourceOptions{Loop: true})
	a.out = filepath.Join(t.TempDir(), "a.wav")
	if a.sink, err = audio.CreateWAVSink(a.out); err != nil {
		t.Fatal(err)
	}
	if a.s, err = rtc.NewSession(rtc.SessionConfig{Source: a.src, Sink: a.sink, LoopbackOnly: true, Processor: proc}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.s.Close(); a.sink.Close() })
	b := newPeer(t, 15)
	connect(t, ctx, a, b)
	waitPackets(t, ctx, b.s, 150)
	proc.SetNoiseSuppress(false)
	proc.SetEchoCancel(false)
	switched := b.s.Stats().PacketsReceived
	waitPackets(t, ctx, b.s, switched+150)
	a.s.Close()
	b.s.Close()
	b.sink.Close()

	got, err := audio.LoadWAV(b.out)
	if err != nil {
		t.Fatal(err)
	}
	ref := append(append([]int16(nil), a.sig...), a.sig...)
	win := audio.SampleRate / 4
	cut := int(switched) * audio.FrameSamples // about where b's output switches
	var on, off []float64
	for start := audio.SampleRate / 2; start+win <= len(got); start += win {
		seg := got[start : start+win]
		if analysis.RMS(seg) < 100 {
			continue
		}
		_, c := analysis.Align(seg, ref, len(a.sig))
		switch {
		case start+win < cut-audio.SampleRate/4:
			on = append(on, c)
		case start > cut+audio.SampleRate/2:
			off = append(off, c)
		}
	}
	t.Logf("DSP on: median corr %.3f %.2f", analysis.Median(on), on)
	t.Logf("DSP off: median corr %.3f %.2f", analysis.Median(off), off)
	// The echo canceller sees b's speech as the echo reference while a
	// talks (double talk): Speex lets most of a's speech through.
	if analysis.Median(on) < 0.7 {
		t.Fatalf("with DSP on, a's signal is lost (corr %.3f)", analysis.Median(on))
	}
	if analysis.Median(off) < 0.9 {
		t.Fatalf("after switching DSP off, corr %.3f < 0.9", analysis.Median(off))
	}
}
