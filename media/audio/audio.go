// Package audio defines the frame format of Chordphone's audio engine and the
// Source and Sink interfaces that every microphone, speaker and file implements:
// PortAudio devices (capture.go, playback.go) and WAV files (wav.go).
//
// A frame is 20 ms of 48 kHz mono signed 16-bit PCM: FrameSamples samples.
package audio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

const (
	// SampleRate is the sample rate of every frame, in Hz.
	SampleRate = 48000
	// FrameDuration is the duration of one frame.
	FrameDuration = 20 * time.Millisecond
	// FrameSamples is the number of samples in one frame (mono).
	FrameSamples = SampleRate * int(FrameDuration/time.Millisecond) / 1000
)

// ErrClosed is returned by ReadFrame and WriteFrame after Close.
var ErrClosed = errors.New("audio: closed")

// ErrFrameSize is returned when a frame is not FrameSamples long.
var ErrFrameSize = errors.New("audio: frame must hold exactly 960 samples")

// Source produces frames: a microphone, a WAV file, a tone generator.
// ReadFrame fills frame (len FrameSamples) with the next 20 ms and blocks until
// they are due, so a Source paces whoever reads it. It returns ctx.Err() when ctx
// ends and ErrClosed after Close.
type Source interface {
	ReadFrame(ctx context.Context, frame []int16) error
	Close() error
}

// Sink consumes frames: a speaker or a WAV file.
type Sink interface {
	WriteFrame(frame []int16) error
	Close() error
}

// Clocked is implemented by a Sink whose WriteFrame blocks in step with a
// hardware clock (a sound card). A pipeline writing to a Sink that is not
// Clocked must pace itself (one frame every FrameDuration).
type Clocked interface {
	Clocked() bool
}

// IsClocked reports whether s paces its own writes.
func IsClocked(s Sink) bool {
	c, ok := s.(Clocked)
	return ok && c.Clocked()
}

// Level returns the RMS level of frame in dBFS (0 for a full-scale square
// wave, about -3 for a full-scale sine); silence gives -96.
func Level(frame []int16) float64 {
	if len(frame) == 0 {
		return -96
	}
	var sum float64
	for _, s := range frame {
		v := float64(s)
		sum += v * v
	}
	rms := math.Sqrt(sum/float64(len(frame))) / 32768
	if rms < 1.0/65536 {
		return -96
	}
	return 20 * math.Log10(rms)
}

// ApplyGain multiplies frame by gain (linear) in place, saturating at full scale.
func ApplyGain(frame []int16, gain float64) {
	if gain == 1 {
		return
	}
	for i, s := range frame {
		v := float64(s) * gain
		switch {
		case v > math.MaxInt16:
			v = math.MaxInt16
		case v < math.MinInt16:
			v = math.MinInt16
		}
		frame[i] = int16(v)
	}
}

// DBToGain converts decibels to a linear gain.
func DBToGain(db float64) float64 { return math.Pow(10, db/20) }

// Silence zeroes frame.
func Silence(frame []int16) {
	clear(frame)
}

// Pacer releases one tick every FrameDuration measured from its start, so a
// loop that waits on it does not drift. The zero value is not usable; use NewPacer.
type Pacer struct {
	start time.Time
	n     int64
	timer *time.Timer
}

// NewPacer returns a pacer whose first tick is due immediately.
func NewPacer() *Pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Pacer{start: time.Now(), timer: t}
}

// Wait blocks until the next tick is due or ctx ends. If the caller fell more
// than 10 frames behind, the pacer resynchronises instead of bursting.
func (p *Pacer) Wait(ctx context.Context) error {
	due := p.start.Add(time.Duration(p.n) * FrameDuration)
	p.n++
	d := time.Until(due)
	if d < -10*FrameDuration {
		p.start = time.Now()
		p.n = 1
		return ctx.Err()
	}
	if d <= 0 {
		return ctx.Err()
	}
	p.timer.Reset(d)
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

// Pump copies frames from src to sink until ctx ends or either fails (for
// example a ringtone from media/tones to the speaker). A Source paces the
// copy; neither src nor sink is closed. It returns nil when ctx ends.
func Pump(ctx context.Context, src Source, sink Sink) error {
	frame := make([]int16, FrameSamples)
	for {
		if err := src.ReadFrame(ctx, frame); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("audio pump: read: %w", err)
		}
		if err := sink.WriteFrame(frame); err != nil {
			return fmt.Errorf("audio pump: write: %w", err)
		}
	}
}
