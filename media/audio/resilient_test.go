package audio_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/pulsetest"
)

// With no sound server the Mic gives silence and the Speaker drops frames, both at the pace
// of a sound card, and both say why.
func TestMicAndSpeakerWithoutDevice(t *testing.T) {
	pulsetest.NoServer(t)
	m := audio.OpenMic(audio.DeviceConfig{}, nil)
	defer m.Close()
	s := audio.OpenSpeaker(audio.DeviceConfig{}, nil)
	defer s.Close()
	for _, st := range []audio.DeviceStatus{m.Status(), s.Status()} {
		if !st.NoDevice() || !errors.Is(st.Err, audio.ErrNoDevice) {
			t.Fatalf("status %+v, want no device because of ErrNoDevice", st)
		}
		t.Logf("%s: %v", st.Dir, st.Err)
	}
	if !audio.IsClocked(s) {
		t.Fatal("a Speaker without a device must pace its writes (Clocked)")
	}
	frame := make([]int16, audio.FrameSamples)
	start := time.Now()
	const n = 25
	for range n {
		frame[0] = 1000
		if err := m.ReadFrame(context.Background(), frame); err != nil {
			t.Fatal(err)
		}
		if analysis.RMS(frame) != 0 {
			t.Fatal("no device must give silence")
		}
		if err := s.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	// Each of them waits 20 ms a frame on the same grid: n frames take at least (n-1)·20 ms.
	if el := time.Since(start); el < (n-1)*audio.FrameDuration {
		t.Fatalf("%d frames in %v: not paced", n, el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.ReadFrame(ctx, frame); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("read with an ended context: %v", err)
	}
}

// A sound server that appears after the Mic and Speaker were opened with none (a headset
// plugged in mid-call) is used once Switch chooses it: the tone played into its microphone
// arrives, and what is written reaches its speaker.
func TestSwitchToDeviceThatAppeared(t *testing.T) {
	pulsetest.NoServer(t)
	var notes []audio.DeviceStatus
	m := audio.OpenMic(audio.DeviceConfig{}, func(st audio.DeviceStatus) { notes = append(notes, st) })
	defer m.Close()
	s := audio.OpenSpeaker(audio.DeviceConfig{}, nil)
	defer s.Close()
	if !m.Status().NoDevice() || !s.Status().NoDevice() {
		t.Fatal("a device without a sound server")
	}
	if err := m.Switch(audio.DeviceConfig{Name: "pulse"}); err == nil {
		t.Fatal("switching to a device that does not exist succeeded")
	}
	d := pulsetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop, err := d.PlayToMic(ctx, analysis.Sine(1000, 12000, audio.SampleRate, audio.SampleRate))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rec, err := d.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Switch(audio.DeviceConfig{Name: "pulse"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(audio.DeviceConfig{}); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st.Device != "pulse" || st.Err != nil || len(notes) != 1 || notes[0].Device != "pulse" {
		t.Fatalf("after the switch: status %+v, notes %+v", st, notes)
	}
	frame := make([]int16, audio.FrameSamples)
	tone := analysis.Sine(700, 12000, audio.SampleRate, audio.FrameSamples)
	heard := 0
	for i := 0; i < 500 && (heard < 5 || i < 100); i++ { // and at least 2 s played
		if err := m.ReadFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
		if analysis.RMS(frame) > 1000 && analysis.Goertzel(frame, 1000, audio.SampleRate) > 0.9 {
			heard++
		}
		if err := s.WriteFrame(tone); err != nil {
			t.Fatal(err)
		}
	}
	if heard < 5 {
		t.Fatal("the microphone's tone never arrived after the switch")
	}
	s.Close()
	got := rec.Stop()
	played := 0
	for i := 0; i+audio.FrameSamples <= len(got); i += audio.FrameSamples {
		if fr := got[i : i+audio.FrameSamples]; analysis.RMS(fr) > 1000 && analysis.Goertzel(fr, 700, audio.SampleRate) > 0.9 {
			played++
		}
	}
	if played < 5 {
		t.Fatalf("only %d frames of the 700 Hz tone reached the speaker after the switch", played)
	}
}

// A device lost mid-stream with no other to fall back to leaves silence, not an error, and
// the notification says so.
func TestMicLosesDeviceGivesSilence(t *testing.T) {
	d := pulsetest.Start(t)
	lost := make(chan audio.DeviceStatus, 1)
	m := audio.OpenMic(audio.DeviceConfig{}, func(st audio.DeviceStatus) { lost <- st })
	defer m.Close()
	if st := m.Status(); st.NoDevice() {
		t.Fatalf("no device with a sound server: %v", st.Err)
	}
	s := audio.OpenSpeaker(audio.DeviceConfig{}, nil)
	defer s.Close()
	d.Stop()
	frame := make([]int16, audio.FrameSamples)
	for i := 0; i < 200 && (!m.Status().NoDevice() || !s.Status().NoDevice()); i++ {
		if err := m.ReadFrame(context.Background(), frame); err != nil {
			t.Fatalf("read %d after the server went: %v", i, err)
		}
		if err := s.WriteFrame(frame); err != nil {
			t.Fatalf("write %d after the server went: %v", i, err)
		}
	}
	select {
	case st := <-lost:
		if !st.NoDevice() || !errors.Is(st.Err, audio.ErrDeviceLost) {
			t.Fatalf("notified %+v", st)
		}
		t.Logf("%v", st.Err)
	default:
		t.Fatal("the Mic did not notice the lost device")
	}
	if !s.Status().NoDevice() {
		t.Fatal("the Speaker did not notice the lost device")
	}
}
