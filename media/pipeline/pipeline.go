// Package pipeline holds the two halves of a call's audio path, independent
// of the network:
//
//	Sender:   Source -> input gain -> level meter -> echo/noise DSP -> mute -> Opus encode
//	Receiver: packets -> jitter buffer -> Opus decode (FEC, PLC) -> output gain -> DSP reference -> Sink
//
// media/rtc moves the Sender's packets over RTP and pushes received ones into
// the Receiver; tests and benchmarks connect them through a simulated network.
package pipeline

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/jitter"
	"github.com/chordphone/chordphone/media/opuscodec"
)

// Processor is an echo canceller / noise suppressor (media/dsp.Processor).
// Capture cleans a microphone frame in place; Playback tells it what the
// speaker is playing (the echo reference). Calls come from two goroutines.
type Processor interface {
	Capture(frame []int16)
	Playback(frame []int16)
}

// gain is a linear gain stored atomically.
type gain struct{ bits atomic.Uint64 }

func (g *gain) set(v float64) { g.bits.Store(math.Float64bits(v)) }
func (g *gain) get() float64  { return math.Float64frombits(g.bits.Load()) }

// SenderConfig configures a Sender.
type SenderConfig struct {
	Source    audio.Source
	Opus      opuscodec.Config
	Processor Processor // optional
}

// Sender turns the Source's frames into Opus packets.
type Sender struct {
	src   audio.Source
	enc   *opuscodec.Encoder
	proc  Processor
	frame []int16

	gain  gain
	muted atomic.Bool
	level atomic.Uint64 // float64 bits, dBFS of the last frame before mute
}

// NewSender returns a Sender reading cfg.Source.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Source == nil {
		return nil, fmt.Errorf("pipeline: no audio source")
	}
	enc, err := opuscodec.NewEncoder(cfg.Opus)
	if err != nil {
		return nil, err
	}
	s := &Sender{src: cfg.Source, enc: enc, proc: cfg.Processor, frame: make([]int16, audio.FrameSamples)}
	s.gain.set(1)
	s.level.Store(math.Float64bits(-96))
	return s, nil
}

// SetGain sets the input gain (linear, 1 = unchanged).
func (s *Sender) SetGain(g float64) { s.gain.set(g) }

// SetMute sends silence instead of the microphone while muted.
func (s *Sender) SetMute(m bool) { s.muted.Store(m) }

// Muted reports whether the sender is muted.
func (s *Sender) Muted() bool { return s.muted.Load() }

// Level is the input level of the last frame in dBFS (after gain, before
// mute, so the meter shows the microphone works while muted).
func (s *Sender) Level() float64 { return math.Float64frombits(s.level.Load()) }

// Encoder gives access to the encoder (to retune FEC from receiver reports).
func (s *Sender) Encoder() *opuscodec.Encoder { return s.enc }

// Next reads one frame from the source (blocking until it is due) and
// returns its Opus packet, valid until the next call.
func (s *Sender) Next(ctx context.Context) ([]byte, error) {
	if err := s.src.ReadFrame(ctx, s.frame); err != nil {
		return nil, err
	}
	return s.encodeFrame(s.frame)
}

// Encode runs one given frame through the sender's processing and encoder
// (for tests and benchmarks that supply frames themselves).
func (s *Sender) Encode(frame []int16) ([]byte, error) {
	copy(s.frame, frame)
	return s.encodeFrame(s.frame)
}

func (s *Sender) encodeFrame(f []int16) ([]byte, error) {
	audio.ApplyGain(f, s.gain.get())
	s.level.Store(math.Float64bits(audio.Level(f)))
	if s.proc != nil {
		s.proc.Capture(f)
	}
	if s.muted.Load() {
		clear(f)
	}
	return s.enc.Encode(f)
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Sink      audio.Sink // may be nil when only Next is used
	Jitter    jitter.Config
	Processor Processor // optional: receives the played frames as echo reference
}

// Receiver plays received packets.
type Receiver struct {
	sink  audio.Sink
	buf   *jitter.Buffer
	proc  Processor
	mu    sync.Mutex // guards dec
	dec   *opuscodec.Decoder
	gain  gain
	level atomic.Uint64
	frame []int16
}

// NewReceiver returns a Receiver writing to cfg.Sink.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	dec, err := opuscodec.NewDecoder()
	if err != nil {
		return nil, err
	}
	r := &Receiver{sink: cfg.Sink, buf: jitter.New(cfg.Jitter), proc: cfg.Processor, dec: dec,
		frame: make([]int16, audio.FrameSamples)}
	r.gain.set(1)
	r.level.Store(math.Float64bits(-96))
	return r, nil
}

// Push hands a received packet to the jitter buffer.
func (r *Receiver) Push(p jitter.Packet, arrival time.Time) { r.buf.Push(p, arrival) }

// Jitter returns the jitter buffer's statistics.
func (r *Receiver) Jitter() jitter.Stats { return r.buf.Stats() }

// SetGain sets the output gain (linear).
func (r *Receiver) SetGain(g float64) { r.gain.set(g) }

// Level is the output level of the last frame in dBFS.
func (r *Receiver) Level() float64 { return math.Float64frombits(r.level.Load()) }

// Next fills frame with the next 20 ms to play.
func (r *Receiver) Next(frame []int16) (jitter.Kind, error) {
	r.mu.Lock()
	kind, err := r.buf.Play(r.dec, frame)
	r.mu.Unlock()
	audio.ApplyGain(frame, r.gain.get())
	r.level.Store(math.Float64bits(audio.Level(frame)))
	if r.proc != nil {
		r.proc.Playback(frame)
	}
	return kind, err
}

// Run plays one frame every 20 ms into the Sink until ctx ends. A Clocked
// sink (sound card) sets the pace; any other sink is paced by a timer.
func (r *Receiver) Run(ctx context.Context) error {
	if r.sink == nil {
		return fmt.Errorf("pipeline: receiver has no sink")
	}
	var pacer *audio.Pacer
	if !audio.IsClocked(r.sink) {
		pacer = audio.NewPacer()
	}
	for {
		if pacer != nil {
			if err := pacer.Wait(ctx); err != nil {
				return err
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		r.Next(r.frame) // a bad packet is concealed; nothing to stop for
		if err := r.sink.WriteFrame(r.frame); err != nil {
			return fmt.Errorf("pipeline: play: %w", err)
		}
	}
}
