package audio

// A minimal cgo binding of PortAudio's blocking I/O. It replaces
// gordonklaus/portaudio's OpenStream, which passes an integer as an
// unsafe.Pointer and so crashes under the race detector (checkptr) from the
// second stream of a process on.

/*
#cgo pkg-config: portaudio-2.0 alsa jack
#include <portaudio.h>
#include <stdlib.h>
#include <alsa/asoundlib.h>
#include <jack/jack.h>

// PortAudio probes every ALSA and JACK device when it starts, and those
// libraries print each failed probe to stderr. Silence them: failures that
// matter come back as PortAudio errors.
static void quiet_alsa(const char *file, int line, const char *fn, int err, const char *fmt, ...) {}
static void quiet_jack(const char *msg) {}
static void quiet_probes(void) {
	snd_lib_error_set_handler(quiet_alsa);
	jack_set_error_function(quiet_jack);
	jack_set_info_function(quiet_jack);
	setenv("JACK_NO_START_SERVER", "1", 0);
}

static PaError open_mono(PaStream **s, int dev, int input, double latency, double rate, unsigned long frames) {
	PaStreamParameters p;
	p.device = dev;
	p.channelCount = 1;
	p.sampleFormat = paInt16;
	p.suggestedLatency = latency;
	p.hostApiSpecificStreamInfo = NULL;
	if (input)
		return Pa_OpenStream(s, &p, NULL, rate, frames, paNoFlag, NULL, NULL);
	return Pa_OpenStream(s, NULL, &p, rate, frames, paNoFlag, NULL, NULL);
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// paError is a PortAudio error code.
type paError C.PaError

func (e paError) Error() string { return "portaudio: " + C.GoString(C.Pa_GetErrorText(C.PaError(e))) }

var (
	errInputOverflowed   = paError(C.paInputOverflowed)
	errOutputUnderflowed = paError(C.paOutputUnderflowed)
)

func paErr(e C.PaError) error {
	if e == C.paNoError {
		return nil
	}
	return paError(e)
}

func paInitialize() error {
	C.quiet_probes()
	return paErr(C.Pa_Initialize())
}
func paTerminate() error { return paErr(C.Pa_Terminate()) }

type paDevice struct {
	index                 int
	name, hostAPI         string
	maxIn, maxOut         int
	rate                  float64
	lowIn, lowOut         time.Duration
	highIn, highOut       time.Duration
	defaultIn, defaultOut bool
}

func secs(t C.PaTime) time.Duration { return time.Duration(float64(t) * float64(time.Second)) }

func paDevices() ([]paDevice, error) {
	n := int(C.Pa_GetDeviceCount())
	if n < 0 {
		return nil, paError(C.PaError(n))
	}
	defIn, defOut := int(C.Pa_GetDefaultInputDevice()), int(C.Pa_GetDefaultOutputDevice())
	out := make([]paDevice, 0, n)
	for i := range n {
		info := C.Pa_GetDeviceInfo(C.PaDeviceIndex(i))
		if info == nil {
			continue
		}
		d := paDevice{
			index: i, name: C.GoString(info.name),
			maxIn: int(info.maxInputChannels), maxOut: int(info.maxOutputChannels),
			rate:  float64(info.defaultSampleRate),
			lowIn: secs(info.defaultLowInputLatency), lowOut: secs(info.defaultLowOutputLatency),
			highIn: secs(info.defaultHighInputLatency), highOut: secs(info.defaultHighOutputLatency),
			defaultIn: i == defIn, defaultOut: i == defOut,
		}
		if h := C.Pa_GetHostApiInfo(info.hostApi); h != nil {
			d.hostAPI = C.GoString(h.name)
		}
		out = append(out, d)
	}
	return out, nil
}

// paStream is an open blocking mono int16 stream.
type paStream struct {
	s   unsafe.Pointer // PaStream*
	buf *C.short       // C memory, FrameSamples long
}

func paOpen(dev paDevice, input bool, latency time.Duration) (*paStream, error) {
	var s unsafe.Pointer
	in := C.int(0)
	if input {
		in = 1
	}
	if e := C.open_mono(&s, C.int(dev.index), in, C.double(latency.Seconds()), C.double(SampleRate), C.ulong(FrameSamples)); e != C.paNoError {
		return nil, paError(e)
	}
	if e := C.Pa_StartStream(s); e != C.paNoError {
		C.Pa_CloseStream(s)
		return nil, paError(e)
	}
	buf := (*C.short)(C.malloc(C.size_t(2 * FrameSamples)))
	return &paStream{s: s, buf: buf}, nil
}

func (p *paStream) read(frame []int16) error {
	err := paErr(C.Pa_ReadStream(p.s, unsafe.Pointer(p.buf), C.ulong(FrameSamples)))
	copy(frame, unsafe.Slice((*int16)(unsafe.Pointer(p.buf)), FrameSamples))
	return err
}

func (p *paStream) write(frame []int16) error {
	copy(unsafe.Slice((*int16)(unsafe.Pointer(p.buf)), FrameSamples), frame)
	return paErr(C.Pa_WriteStream(p.s, unsafe.Pointer(p.buf), C.ulong(FrameSamples)))
}

// close stops the stream (after queued output played, unless abort) and frees it.
func (p *paStream) close(abort bool) error {
	var err error
	if abort {
		err = paErr(C.Pa_AbortStream(p.s))
	} else {
		err = paErr(C.Pa_StopStream(p.s))
	}
	if e := paErr(C.Pa_CloseStream(p.s)); err == nil {
		err = e
	}
	C.free(unsafe.Pointer(p.buf))
	if err != nil {
		return fmt.Errorf("close stream: %w", err)
	}
	return nil
}
