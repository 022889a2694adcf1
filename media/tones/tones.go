// Package tones generates the call-progress tones of a phone in code:
// ringtone (incoming call), ringback (the callee's phone is ringing), busy,
// and DTMF digits (ITU-T Q.23 frequencies). Every tone is an audio.Source,
// paced in real time like a microphone.
package tones

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/chordphone/chordphone/media/audio"
)

// Cadence is one step of a tone: frequencies (Hz) summed for Ms milliseconds;
// no frequencies means silence.
type Cadence struct {
	Freqs []float64
	Ms    int
}

// Pattern is a repeating sequence of cadence steps at a level (peak, 0..1).
type Pattern struct {
	Name  string
	Steps []Cadence
	Level float64
}

var (
	// Ringback: 440 + 480 Hz, 2 s on, 4 s off (ITU-T E.180 / North America).
	Ringback = Pattern{Name: "ringback", Level: 0.25, Steps: []Cadence{{[]float64{440, 480}, 2000}, {nil, 4000}}}
	// Busy: 480 + 620 Hz, 0.5 s on, 0.5 s off.
	Busy = Pattern{Name: "busy", Level: 0.25, Steps: []Cadence{{[]float64{480, 620}, 500}, {nil, 500}}}
	// Ringtone: a two-note trill (1200/1000 Hz alternating every 50 ms)
	// for 1.2 s, then 2.8 s of silence; easy to hear, not harsh.
	Ringtone = Pattern{Name: "ringtone", Level: 0.4, Steps: trill()}
)

func trill() []Cadence {
	var s []Cadence
	for i := range 24 {
		f := 1200.0
		if i%2 == 1 {
			f = 1000
		}
		s = append(s, Cadence{[]float64{f}, 50})
	}
	return append(s, Cadence{nil, 2800})
}

// dtmf maps digits to (row, column) frequencies, ITU-T Q.23.
var dtmf = map[rune][2]float64{
	'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
	'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
	'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
	'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
}

// DTMFFrequencies returns the row and column frequency of a digit.
func DTMFFrequencies(digit rune) (low, high float64, err error) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	f, ok := dtmf[digit]
	if !ok {
		return 0, 0, fmt.Errorf("tones: %q is not a DTMF digit", digit)
	}
	return f[0], f[1], nil
}

// DTMF returns the samples (48 kHz) of digits, each toneMs long followed by
// gapMs of silence, as a local feedback tone for the user pressing keys.
func DTMF(digits string, toneMs, gapMs int) ([]int16, error) {
	var out []int16
	for _, d := range digits {
		lo, hi, err := DTMFFrequencies(d)
		if err != nil {
			return nil, err
		}
		g := newGen()
		tone := make([]int16, toneMs*audio.SampleRate/1000)
		g.fill(tone, []float64{lo, hi}, 0.3)
		out = append(out, tone...)
		out = append(out, make([]int16, gapMs*audio.SampleRate/1000)...)
	}
	return out, nil
}

// gen is a phase-continuous multi-sine oscillator.
type gen struct{ phase [4]float64 }

func newGen() *gen { return &gen{} }

func (g *gen) fill(out []int16, freqs []float64, level float64) {
	if len(freqs) == 0 {
		clear(out)
		g.phase = [4]float64{}
		return
	}
	amp := level * 32767 / float64(len(freqs))
	for i := range out {
		var v float64
		for k, f := range freqs {
			v += math.Sin(g.phase[k])
			g.phase[k] += 2 * math.Pi * f / audio.SampleRate
			if g.phase[k] > 2*math.Pi {
				g.phase[k] -= 2 * math.Pi
			}
		}
		out[i] = int16(amp * v)
	}
}

// Source plays a Pattern forever as an audio.Source, one frame every 20 ms
// (or unpaced, for tests).
type Source struct {
	p       Pattern
	unpaced bool

	mu     sync.Mutex
	g      *gen
	step   int
	left   int // samples left in the current step
	pacer  *audio.Pacer
	closed bool
}

// NewSource returns a Source playing p in real time.
func NewSource(p Pattern) *Source { return &Source{p: p, g: newGen()} }

// NewUnpacedSource returns a Source that produces frames as fast as read.
func NewUnpacedSource(p Pattern) *Source { return &Source{p: p, g: newGen(), unpaced: true} }

// ReadFrame implements audio.Source.
func (s *Source) ReadFrame(ctx context.Context, frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return audio.ErrClosed
	}
	if !s.unpaced {
		if s.pacer == nil {
			s.pacer = audio.NewPacer()
		}
		if err := s.pacer.Wait(ctx); err != nil {
			return err
		}
	} else if err := ctx.Err(); err != nil {
		return err
	}
	n := 0
	for n < len(frame) {
		if s.left == 0 {
			if len(s.p.Steps) == 0 {
				clear(frame[n:])
				return nil
			}
			s.left = s.p.Steps[s.step].Ms * audio.SampleRate / 1000
		}
		c := min(s.left, len(frame)-n)
		s.g.fill(frame[n:n+c], s.p.Steps[s.step].Freqs, s.p.Level)
		n += c
		s.left -= c
		if s.left == 0 {
			s.step = (s.step + 1) % len(s.p.Steps)
		}
	}
	return nil
}

// Close implements audio.Source.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
