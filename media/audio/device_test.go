package audio_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gordonklaus/portaudio"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/pulsetest"
)

func TestDevicesListsPulse(t *testing.T) {
	pulsetest.Start(t)
	devs, err := audio.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	found := false
	for _, d := range devs {
		names = append(names, d.Name)
		if d.Name == "pulse" && d.MaxInputChannels > 0 && d.MaxOutputChannels > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no duplex device \"pulse\" among %q", names)
	}
}

// A tone played into the microphone (the mic null sink, whose monitor is the
// default source) arrives through PortAudio capture at its frequency.
func TestCaptureReceivesToneFromMicrophone(t *testing.T) {
	d := pulsetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const freq = 1000.0
	stop, err := d.PlayToMic(ctx, analysis.Sine(freq, 12000, audio.SampleRate, audio.SampleRate))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := audio.OpenCapture(audio.DeviceConfig{Name: "pulse", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := make([]int16, audio.FrameSamples)
	// Read until the tone shows up (stream start-up and pacat buffering take
	// a variable time); then check several consecutive frames.
	good := 0
	for i := 0; i < 500 && good < 10; i++ {
		if err := c.ReadFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
		if analysis.RMS(frame) < 1000 {
			good = 0
			continue
		}
		f := analysis.DominantFrequency(frame, audio.SampleRate, 440, 800, 1000, 1200, 2000)
		if f != freq || analysis.Goertzel(frame, freq, audio.SampleRate) < 0.9 {
			t.Fatalf("frame %d: dominant %v Hz, purity %.2f", i, f, analysis.Goertzel(frame, freq, audio.SampleRate))
		}
		good++
	}
	if good < 10 {
		t.Fatal("tone never arrived through capture")
	}
}

// Playback through PortAudio reaches the speaker sink.
func TestPlaybackReachesSpeaker(t *testing.T) {
	d := pulsetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := d.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := audio.OpenPlayback(audio.DeviceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tone := analysis.Sine(700, 12000, audio.SampleRate, audio.SampleRate*2)
	for i := 0; i+audio.FrameSamples <= len(tone); i += audio.FrameSamples {
		if err := p.WriteFrame(tone[i : i+audio.FrameSamples]); err != nil {
			t.Fatal(err)
		}
	}
	p.Close() // drains
	got := rec.Stop()
	// On a loaded machine the sound card can run dry between two writes
	// (counted as underruns): the gap breaks the tone's phase and the frames
	// around it, so judge whole frames: at least half a second of them must
	// be the pure tone at the level it was written.
	const level = 12000 / math.Sqrt2 // RMS of the written sine
	pure, loud := 0, 0
	for i := 0; i+audio.FrameSamples <= len(got); i += audio.FrameSamples {
		fr := got[i : i+audio.FrameSamples]
		if analysis.RMS(fr) < 1000 {
			continue
		}
		loud++
		if analysis.Goertzel(fr, 700, audio.SampleRate) >= 0.9 && math.Abs(analysis.RMS(fr)-level) < 0.05*level {
			pure++
		}
	}
	t.Logf("%d loud frames, %d pure 700 Hz frames, %d underruns", loud, pure, p.Underruns())
	if pure*audio.FrameSamples < audio.SampleRate/2 {
		t.Fatalf("only %d frames of the 700 Hz tone at its level (%d loud) in %d samples recorded", pure, loud, len(got))
	}
}

func TestMissingDeviceFallsBackToDefault(t *testing.T) {
	pulsetest.Start(t)
	c, err := audio.OpenCapture(audio.DeviceConfig{Name: "USB headset that is unplugged"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var derr *audio.DeviceError
	if fb := c.Fallback(); !errors.As(fb, &derr) || !errors.Is(fb, audio.ErrNoDevice) {
		t.Fatalf("Fallback() = %v, want a DeviceError wrapping ErrNoDevice", fb)
	}
	if c.Device() == "" {
		t.Fatal("no device in use")
	}
	_, err = audio.OpenPlayback(audio.DeviceConfig{Name: "USB headset that is unplugged", Strict: true})
	if !errors.Is(err, audio.ErrNoDevice) {
		t.Fatalf("strict open of a missing device: %v", err)
	}
	t.Logf("fallback reason: %v; strict error: %v", c.Fallback(), err)
}

// When the sound server goes away mid-stream and another one comes up (a
// device unplugged, another present), capture and playback switch to the
// new default device and report why; with no device left, a clear error.
func TestLostDeviceSwitchesToDefaultOrFailsClearly(t *testing.T) {
	d1 := pulsetest.Start(t)
	ctx := context.Background()
	c, err := audio.OpenCapture(audio.DeviceConfig{Name: "pulse"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := audio.OpenPlayback(audio.DeviceConfig{Name: "pulse"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	frame := make([]int16, audio.FrameSamples)
	for range 3 {
		if err := c.ReadFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	d1.Stop()
	pulsetest.Start(t) // a new server: the new default device
	var rerr, werr error
	for i := 0; i < 100 && c.Fallback() == nil && rerr == nil; i++ {
		rerr = c.ReadFrame(ctx, frame)
	}
	for i := 0; i < 100 && p.Fallback() == nil && werr == nil; i++ {
		werr = p.WriteFrame(frame)
	}
	if rerr != nil || werr != nil {
		t.Fatalf("no switch to the new default: %v / %v", rerr, werr)
	}
	if !errors.Is(c.Fallback(), audio.ErrDeviceLost) || !errors.Is(p.Fallback(), audio.ErrDeviceLost) {
		t.Fatalf("fallback reasons: %v / %v", c.Fallback(), p.Fallback())
	}
	t.Logf("capture now %q: %v", c.Device(), c.Fallback())
	if err := c.ReadFrame(ctx, frame); err != nil {
		t.Fatalf("read after switching: %v", err)
	}
}

func TestNoDeviceLeftGivesClearError(t *testing.T) {
	d := pulsetest.Start(t)
	c, err := audio.OpenCapture(audio.DeviceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d.Stop()
	frame := make([]int16, audio.FrameSamples)
	for i := 0; i < 100; i++ {
		if err = c.ReadFrame(context.Background(), frame); err != nil {
			break
		}
	}
	if !errors.Is(err, audio.ErrDeviceLost) {
		t.Fatalf("read with the sound server gone: %v", err)
	}
	t.Log(err)
}

// Every Open, Devices and failed Open pairs its portaudio.Initialize with one
// portaudio.Terminate, also when called from several goroutines with streams
// open: once all streams are closed PortAudio is no longer initialised.
func TestPortAudioInitTerminatePaired(t *testing.T) {
	pulsetest.Start(t)
	c, err := audio.OpenCapture(audio.DeviceConfig{Name: "pulse", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := audio.OpenPlayback(audio.DeviceConfig{Name: "pulse", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audio.OpenPlayback(audio.DeviceConfig{Name: "no such device", Strict: true}); !errors.Is(err, audio.ErrNoDevice) {
		t.Fatalf("strict open of a missing device: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			devs, err := audio.Devices()
			if err == nil && len(devs) == 0 {
				err = errors.New("no devices")
			}
			errs <- err
		})
	}
	frame := make([]int16, audio.FrameSamples)
	if err := c.ReadFrame(context.Background(), frame); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFrame(frame); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Devices while streams are open: %v", err)
		}
	}
	if _, err := portaudio.Devices(); err != nil {
		t.Fatalf("PortAudio not initialised while streams are open: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := portaudio.Devices(); !errors.Is(err, portaudio.NotInitialized) {
		t.Fatalf("after closing every stream portaudio.Devices() = %v, want NotInitialized (unpaired Initialize)", err)
	}
}
