package phone

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/pulsetest"
)

// TestRecordAndPlayVoicemail: a voice message is recorded from the microphone (a 1000 Hz
// tone fed into PulseAudio's null source) and one is played on the speaker (its 700 Hz tone
// is what the null sink records).
func TestRecordAndPlayVoicemail(t *testing.T) {
	d := pulsetest.Start(t)
	p, err := New(Config{Profile: t.TempDir(), User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop, err := d.PlayToMic(ctx, analysis.Sine(1000, 12000, audio.SampleRate, 10*audio.SampleRate))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rctx, stopRec := context.WithTimeout(ctx, 3*time.Second) // the length of the message
	samples, err := p.RecordVoicemail(rctx)
	stopRec()
	if err != nil {
		t.Fatal(err)
	}
	if n := toneFrames(samples, 1000); n < 25 {
		t.Errorf("recorded %d frames of the microphone's tone (%d samples)", n, len(samples))
	}

	wav := filepath.Join(t.TempDir(), "msg.wav")
	if err := audio.SaveWAV(wav, analysis.Sine(700, 12000, audio.SampleRate, 2*audio.SampleRate)); err != nil {
		t.Fatal(err)
	}
	rec, err := d.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PlayVoicemail(ctx, wav); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rec.Len() < 2*audio.SampleRate && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the null sink's monitor catches up; no event for samples
	}
	if n := toneFrames(rec.Stop(), 700); n < 25 {
		t.Errorf("only %d frames of the voice message reached the speaker", n)
	}
}
