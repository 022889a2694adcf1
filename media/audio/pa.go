package audio

// PortAudio is used through two bindings of the same libportaudio:
//
//   - github.com/gordonklaus/portaudio for everything but streams: library
//     Initialize/Terminate (device.go), the device and host-API list, default
//     devices and error values and text.
//   - the small cgo below for blocking streams only (open, start, read, write,
//     stop, close). The binding's OpenStream cannot be used: it keys its
//     streams by a uintptr counter and passes that counter to Pa_OpenStream
//     as the callback user data, unsafe.Pointer(s.id). The first stream's id
//     is 0 (nil) and passes; from the second stream of a process on, the
//     integer-to-pointer conversion makes checkptr (on under -race) abort
//     with "fatal error: checkptr: pointer arithmetic computed bad pointer
//     value".
//
// This file never calls Pa_Initialize or Pa_Terminate: the binding counts its
// own Initialize calls and caches the device table until that count drops to
// zero, so a Pa_Terminate behind its back would leave it listing, and us
// opening, stale device indexes.

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
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/gordonklaus/portaudio"
)

var quietOnce sync.Once

// quietProbes silences ALSA's and JACK's stderr chatter; call it before the
// first portaudio.Initialize.
func quietProbes() { quietOnce.Do(func() { C.quiet_probes() }) }

// paErr converts a PortAudio error code into the binding's error values
// (portaudio.Error, portaudio.UnanticipatedHostError), so callers can use
// errors.Is(err, portaudio.DeviceUnavailable) and get the binding's text.
func paErr(e C.PaError) error {
	switch e {
	case C.paNoError:
		return nil
	case C.paUnanticipatedHostError:
		h := C.Pa_GetLastHostErrorInfo()
		he := hostError{h: portaudio.UnanticipatedHostError{
			HostApiType: portaudio.HostApiType(int32(h.hostApiType)),
			Code:        int(h.errorCode),
			Text:        C.GoString(h.errorText),
		}}
		// Not HostApiType.String: it indexes a table that ends before
		// newer host APIs (PulseAudio, sndio) and would panic.
		if i := C.Pa_HostApiTypeIdToHostApiIndex(h.hostApiType); i >= 0 {
			if info := C.Pa_GetHostApiInfo(i); info != nil {
				he.api = C.GoString(info.name)
			}
		}
		return he
	}
	return portaudio.Error(e)
}

// hostError is PortAudio's paUnanticipatedHostError with the host API's
// details. The binding's UnanticipatedHostError prints only the host's text,
// which ALSA often leaves empty; this one always says what failed. It matches
// both errors.Is(err, portaudio.Error(paUnanticipatedHostError)) and
// errors.As(err, *portaudio.UnanticipatedHostError).
type hostError struct {
	h   portaudio.UnanticipatedHostError
	api string // host API name, "" when unknown
}

func (e hostError) Error() string {
	var details []string
	if e.api != "" {
		details = append(details, e.api)
	}
	if e.h.Code != 0 {
		details = append(details, fmt.Sprintf("error %d", e.h.Code))
	}
	if e.h.Text != "" {
		details = append(details, e.h.Text)
	}
	s := portaudio.Error(C.paUnanticipatedHostError).Error()
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

func (e hostError) Unwrap() []error {
	return []error{e.h, portaudio.Error(C.paUnanticipatedHostError)}
}

// paStream is an open blocking mono int16 stream.
type paStream struct {
	s   unsafe.Pointer // PaStream*
	buf *C.short       // C memory, FrameSamples long
}

// paOpen opens and starts a stream on the device with PortAudio index dev
// (portaudio.DeviceInfo.Index).
func paOpen(dev int, input bool, latency time.Duration) (*paStream, error) {
	var s unsafe.Pointer
	in := C.int(0)
	if input {
		in = 1
	}
	if e := C.open_mono(&s, C.int(dev), in, C.double(latency.Seconds()), C.double(SampleRate), C.ulong(FrameSamples)); e != C.paNoError {
		return nil, fmt.Errorf("portaudio: open stream: %w", paErr(e))
	}
	if e := C.Pa_StartStream(s); e != C.paNoError {
		err := paErr(e) // before Pa_CloseStream can overwrite the host error info
		C.Pa_CloseStream(s)
		return nil, fmt.Errorf("portaudio: start stream: %w", err)
	}
	buf := (*C.short)(C.malloc(C.size_t(2 * FrameSamples)))
	return &paStream{s: s, buf: buf}, nil
}

func (p *paStream) read(frame []int16) error {
	err := paErr(C.Pa_ReadStream(p.s, unsafe.Pointer(p.buf), C.ulong(FrameSamples)))
	copy(frame, unsafe.Slice((*int16)(unsafe.Pointer(p.buf)), FrameSamples))
	if err != nil {
		return fmt.Errorf("portaudio: read stream: %w", err)
	}
	return nil
}

func (p *paStream) write(frame []int16) error {
	copy(unsafe.Slice((*int16)(unsafe.Pointer(p.buf)), FrameSamples), frame)
	if err := paErr(C.Pa_WriteStream(p.s, unsafe.Pointer(p.buf), C.ulong(FrameSamples))); err != nil {
		return fmt.Errorf("portaudio: write stream: %w", err)
	}
	return nil
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
		return fmt.Errorf("portaudio: close stream: %w", err)
	}
	return nil
}
