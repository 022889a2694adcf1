package audio_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

func TestWAVSinkThenSourceRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	sink, err := audio.CreateWAVSink(path)
	if err != nil {
		t.Fatal(err)
	}
	sig := analysis.TestSignal(audio.FrameSamples*60, audio.SampleRate, 1)
	for i := 0; i < len(sig); i += audio.FrameSamples {
		if err := sink.WriteFrame(sig[i : i+audio.FrameSamples]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.WriteFrame(sig[:audio.FrameSamples]); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	got, err := audio.LoadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sig) {
		t.Fatalf("read %d samples, wrote %d", len(got), len(sig))
	}
	for i := range sig {
		if got[i] != sig[i] {
			t.Fatalf("sample %d: %d != %d", i, got[i], sig[i])
		}
	}

	src, err := audio.OpenWAVSource(path, audio.WAVSourceOptions{Unpaced: true, EOF: true})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, audio.FrameSamples)
	n := 0
	for {
		err := src.ReadFrame(context.Background(), frame)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 60 {
		t.Fatalf("read %d frames, want 60", n)
	}
}

func TestWAVSourceLoopsAndEndsWithSilence(t *testing.T) {
	sig := analysis.Sine(500, 10000, audio.SampleRate, 1500) // 1.5 frames
	ctx := context.Background()
	frame := make([]int16, audio.FrameSamples)
	loop := audio.NewSampleSource(sig, audio.WAVSourceOptions{Loop: true, Unpaced: true})
	for range 3 {
		if err := loop.ReadFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
	}
	// frame 3 covers samples 1920..2880 of the looped signal = sig[420:1380]
	if frame[0] != sig[420] || frame[959] != sig[1379] {
		t.Fatal("looping source did not wrap around")
	}
	once := audio.NewSampleSource(sig, audio.WAVSourceOptions{Unpaced: true})
	once.ReadFrame(ctx, frame)
	once.ReadFrame(ctx, frame)
	if frame[539] != sig[1499] || frame[540] != 0 || frame[959] != 0 {
		t.Fatal("tail of the file is not followed by silence")
	}
	once.ReadFrame(ctx, frame)
	if analysis.RMS(frame) != 0 {
		t.Fatal("source did not end with silence")
	}
}

func TestWAVSourcePacedStopsOnCancel(t *testing.T) {
	src := audio.NewSampleSource(make([]int16, 96000), audio.WAVSourceOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	frame := make([]int16, audio.FrameSamples)
	if err := src.ReadFrame(ctx, frame); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := src.ReadFrame(ctx, frame); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
}

func TestDecodeWAVStereoAndResample(t *testing.T) {
	// 8 kHz stereo file with a 400 Hz tone on both channels.
	mono := analysis.Sine(400, 8000, 8000, 8000)
	var data []byte
	data = append(data, "RIFF\x00\x00\x00\x00WAVEfmt "...)
	data = append(data, 16, 0, 0, 0, 1, 0, 2, 0, 0x40, 0x1f, 0, 0, 0, 0x7d, 0, 0, 4, 0, 16, 0)
	data = append(data, "data"...)
	n := len(mono) * 4
	data = append(data, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	for _, s := range mono {
		data = append(data, byte(s), byte(uint16(s)>>8), byte(s), byte(uint16(s)>>8))
	}
	got, err := audio.DecodeWAV(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != audio.SampleRate {
		t.Fatalf("resampled to %d samples, want %d", len(got), audio.SampleRate)
	}
	if p := analysis.Goertzel(got, 400, audio.SampleRate); p < 0.95 {
		t.Fatalf("tone lost in conversion: purity %.3f", p)
	}
}

func TestDecodeWAVRejectsBadInput(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":    nil,
		"not riff": []byte("hello world, not a wav file at all"),
		"no fmt":   []byte("RIFF\x04\x00\x00\x00WAVE"),
		"float": append([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x80\xbb\x00\x00\x00\x00\x00\x00\x04\x00\x20\x00"),
			"data\x00\x00\x00\x00"...),
	} {
		if _, err := audio.DecodeWAV(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := audio.LoadWAV(filepath.Join(t.TempDir(), "missing.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\xbb\x00\x00\x00\x77\x01\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x01\x00\x02\x00"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := audio.DecodeWAV(data)
		if err == nil && s == nil && len(data) > 1<<20 {
			t.Fatal("nil samples without error")
		}
	})
}

func TestLevelAndGain(t *testing.T) {
	f := analysis.Sine(1000, 32767, audio.SampleRate, audio.FrameSamples)
	if l := audio.Level(f); l < -3.2 || l > -2.8 {
		t.Fatalf("full-scale sine level %.2f dBFS, want about -3", l)
	}
	audio.ApplyGain(f, audio.DBToGain(-20))
	if l := audio.Level(f); l < -23.2 || l > -22.8 {
		t.Fatalf("after -20 dB gain: %.2f dBFS", l)
	}
	if l := audio.Level(make([]int16, audio.FrameSamples)); l != -96 {
		t.Fatalf("silence level %v", l)
	}
}

func TestPumpCopiesUntilCancel(t *testing.T) {
	sig := analysis.Sine(300, 9000, audio.SampleRate, audio.FrameSamples*10)
	src := audio.NewSampleSource(sig, audio.WAVSourceOptions{Unpaced: true, EOF: true})
	path := filepath.Join(t.TempDir(), "pump.wav")
	sink, err := audio.CreateWAVSink(path)
	if err != nil {
		t.Fatal(err)
	}
	err = audio.Pump(context.Background(), src, sink)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("pump ended with %v, want EOF", err)
	}
	sink.Close()
	got, _ := audio.LoadWAV(path)
	if len(got) != len(sig) {
		t.Fatalf("pumped %d samples of %d", len(got), len(sig))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := audio.Pump(ctx, audio.NewSampleSource(sig, audio.WAVSourceOptions{}), audio.Discard{}); err != nil {
		t.Fatalf("cancelled pump: %v", err)
	}
}
