package dsp_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/dsp"
	"github.com/chordphone/chordphone/media/pipeline"
)

func power(x []int16) float64 {
	r := analysis.RMS(x)
	return r * r
}

// echoRoom returns what a microphone hears when the speaker plays far:
// a 30 ms delayed, attenuated copy with a short reflection.
func echoRoom(far []int16) []int16 {
	mic := make([]int16, len(far))
	d1, d2 := 30*48, 37*48
	for i := range mic {
		var v float64
		if i >= d1 {
			v += 0.5 * float64(far[i-d1])
		}
		if i >= d2 {
			v += 0.2 * float64(far[i-d2])
		}
		mic[i] = int16(v)
	}
	return mic
}

func runEcho(t *testing.T, on bool, seconds int) (erle float64) {
	t.Helper()
	p, err := dsp.New(dsp.Config{EchoCancel: on})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	far := analysis.TestSignal(audio.SampleRate*seconds, audio.SampleRate, 9)
	mic := echoRoom(far)
	out := make([]int16, len(mic))
	copy(out, mic)
	for i := 0; i+audio.FrameSamples <= len(out); i += audio.FrameSamples {
		p.Process(out[i:i+audio.FrameSamples], far[i:i+audio.FrameSamples])
	}
	last := len(mic) - 2*audio.SampleRate // after convergence
	return 10 * math.Log10(power(mic[last:])/math.Max(power(out[last:]), 1e-9))
}

// ERLE (echo return loss enhancement) after the filter converged.
func TestEchoCancellerRemovesEcho(t *testing.T) {
	on := runEcho(t, true, 8)
	off := runEcho(t, false, 8)
	t.Logf("ERLE with echo cancellation %.1f dB, without %.1f dB", on, off)
	if on < 15 {
		t.Fatalf("ERLE %.1f dB < 15 dB", on)
	}
	if math.Abs(off) > 0.5 {
		t.Fatalf("disabled canceller changed the signal (%.1f dB)", off)
	}
}

func TestNoiseSuppressionSwitchable(t *testing.T) {
	p, err := dsp.New(dsp.Config{NoiseSuppress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func() []int16 {
		f := make([]int16, audio.FrameSamples)
		for i := range f {
			f[i] = int16(rng.NormFloat64() * 600)
		}
		return f
	}
	var in, out float64
	for i := range 250 { // 5 s of steady noise
		f := noise()
		pi := power(f)
		p.Capture(f)
		if i >= 150 {
			in += pi
			out += power(f)
		}
	}
	red := 10 * math.Log10(in/out)
	p.SetNoiseSuppress(false)
	f := noise()
	g := append([]int16(nil), f...)
	p.Capture(g)
	t.Logf("noise reduced by %.1f dB; switched off: output equals input = %v", red, equal(f, g))
	if red < 10 {
		t.Fatalf("noise reduced by only %.1f dB", red)
	}
	if !equal(f, g) {
		t.Fatal("switched-off suppressor changed the signal")
	}
}

func equal(a, b []int16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// CPU cost per 20 ms frame with echo cancellation and noise suppression.
//
//	go test ./media/dsp -run XXX -bench .
func BenchmarkProcess(b *testing.B) {
	p, _ := dsp.New(dsp.Config{EchoCancel: true, NoiseSuppress: true})
	defer p.Close()
	far := analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, 9)
	mic := echoRoom(far)
	frame := make([]int16, audio.FrameSamples)
	n := len(far) / audio.FrameSamples
	b.ResetTimer()
	for i := range b.N {
		k := i % n
		copy(frame, mic[k*audio.FrameSamples:])
		p.Process(frame, far[k*audio.FrameSamples:(k+1)*audio.FrameSamples])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2e7*100, "core-%")
}

var _ pipeline.Processor = (*dsp.Processor)(nil)
