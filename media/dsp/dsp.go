// Package dsp cleans the microphone signal with SpeexDSP (libspeexdsp,
// through cgo): acoustic echo cancellation (MDF adaptive filter) and noise
// suppression with residual echo suppression (the Speex preprocessor). Both
// can be switched on and off while a call runs.
//
// A Processor implements media/pipeline.Processor: Playback receives what
// the speaker plays (the echo reference), Capture cleans what the microphone
// hears. They may be called from two goroutines.
package dsp

/*
#cgo pkg-config: speexdsp
#include <stdlib.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

static int ctl_int(SpeexPreprocessState *st, int req, int v) { return speex_preprocess_ctl(st, req, &v); }
static int echo_rate(SpeexEchoState *st, int rate) { return speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &rate); }
static int pre_echo(SpeexPreprocessState *st, SpeexEchoState *e) { return speex_preprocess_ctl(st, SPEEX_PREPROCESS_SET_ECHO_STATE, e); }
*/
import "C"

import (
	"errors"
	"sync"
	"time"
	"unsafe"

	"github.com/chordphone/chordphone/media/audio"
)

// Config chooses what the Processor does.
type Config struct {
	EchoCancel    bool
	NoiseSuppress bool
	// AGC evens out the microphone level (Speex automatic gain control).
	AGC bool
	// EchoTail is the longest echo path to cancel; default 200 ms.
	EchoTail time.Duration
	// SuppressDB is the maximum noise attenuation in dB (negative); default -25.
	SuppressDB int
}

// Processor is an echo canceller and noise suppressor for 20 ms frames at 48 kHz.
type Processor struct {
	mu    sync.Mutex
	cfg   Config
	echo  *C.SpeexEchoState
	pre   *C.SpeexPreprocessState
	out   []int16
	fresh bool // echo state must be reset before the next use
}

// New returns a Processor; Close frees its C state.
func New(cfg Config) (*Processor, error) {
	if cfg.EchoTail <= 0 {
		cfg.EchoTail = 200 * time.Millisecond
	}
	if cfg.SuppressDB == 0 {
		cfg.SuppressDB = -25
	}
	if cfg.SuppressDB > 0 {
		return nil, errors.New("dsp: SuppressDB must be negative (an attenuation)")
	}
	tail := int(cfg.EchoTail.Seconds() * audio.SampleRate)
	p := &Processor{cfg: cfg, out: make([]int16, audio.FrameSamples)}
	p.echo = C.speex_echo_state_init(C.int(audio.FrameSamples), C.int(tail))
	if p.echo == nil {
		return nil, errors.New("dsp: speex_echo_state_init failed")
	}
	C.echo_rate(p.echo, C.int(audio.SampleRate))
	p.pre = C.speex_preprocess_state_init(C.int(audio.FrameSamples), C.int(audio.SampleRate))
	if p.pre == nil {
		C.speex_echo_state_destroy(p.echo)
		return nil, errors.New("dsp: speex_preprocess_state_init failed")
	}
	C.pre_echo(p.pre, p.echo)
	C.ctl_int(p.pre, C.SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, C.int(cfg.SuppressDB))
	p.applyLocked()
	return p, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (p *Processor) applyLocked() {
	C.ctl_int(p.pre, C.SPEEX_PREPROCESS_SET_DENOISE, boolInt(p.cfg.NoiseSuppress))
	C.ctl_int(p.pre, C.SPEEX_PREPROCESS_SET_AGC, boolInt(p.cfg.AGC))
	C.ctl_int(p.pre, C.SPEEX_PREPROCESS_SET_DEREVERB, 0)
}

// SetEchoCancel switches echo cancellation; turning it on restarts adaptation.
func (p *Processor) SetEchoCancel(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && !p.cfg.EchoCancel {
		p.fresh = true
	}
	p.cfg.EchoCancel = on
}

// SetNoiseSuppress switches noise suppression.
func (p *Processor) SetNoiseSuppress(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.NoiseSuppress = on
	if p.pre != nil {
		p.applyLocked()
	}
}

// SetAGC switches automatic gain control.
func (p *Processor) SetAGC(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.AGC = on
	if p.pre != nil {
		p.applyLocked()
	}
}

// Config returns the current settings.
func (p *Processor) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Playback records a frame that the speaker is about to play.
func (p *Processor) Playback(frame []int16) {
	if len(frame) != audio.FrameSamples {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.echo == nil || !p.cfg.EchoCancel {
		return
	}
	p.resetIfFresh()
	C.speex_echo_playback(p.echo, (*C.spx_int16_t)(unsafe.Pointer(&frame[0])))
}

// Capture cleans a microphone frame in place.
func (p *Processor) Capture(frame []int16) {
	if len(frame) != audio.FrameSamples {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pre == nil {
		return
	}
	in := (*C.spx_int16_t)(unsafe.Pointer(&frame[0]))
	if p.cfg.EchoCancel {
		p.resetIfFresh()
		C.speex_echo_capture(p.echo, in, (*C.spx_int16_t)(unsafe.Pointer(&p.out[0])))
		copy(frame, p.out)
	}
	if p.cfg.EchoCancel || p.cfg.NoiseSuppress || p.cfg.AGC {
		C.speex_preprocess_run(p.pre, in)
	}
}

// Process is the synchronous form: it cancels the echo of played (what the
// speaker played during this frame) from mic, in place. Use either Process
// or Playback+Capture, not both.
func (p *Processor) Process(mic, played []int16) {
	if len(mic) != audio.FrameSamples || len(played) != audio.FrameSamples {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pre == nil {
		return
	}
	in := (*C.spx_int16_t)(unsafe.Pointer(&mic[0]))
	if p.cfg.EchoCancel {
		p.resetIfFresh()
		C.speex_echo_cancellation(p.echo, in, (*C.spx_int16_t)(unsafe.Pointer(&played[0])), (*C.spx_int16_t)(unsafe.Pointer(&p.out[0])))
		copy(mic, p.out)
	}
	if p.cfg.EchoCancel || p.cfg.NoiseSuppress || p.cfg.AGC {
		C.speex_preprocess_run(p.pre, in)
	}
}

func (p *Processor) resetIfFresh() {
	if p.fresh {
		C.speex_echo_state_reset(p.echo)
		p.fresh = false
	}
}

// Close frees the SpeexDSP state; later calls do nothing.
func (p *Processor) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pre != nil {
		C.speex_preprocess_state_destroy(p.pre)
		p.pre = nil
	}
	if p.echo != nil {
		C.speex_echo_state_destroy(p.echo)
		p.echo = nil
	}
	return nil
}
