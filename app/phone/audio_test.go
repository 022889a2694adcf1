package phone

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/pulsetest"
)

// testOverlay starts a bootstrap peer of overlay on loopback.
func testOverlay(t *testing.T, ctx context.Context, overlay string) *peer.Peer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	boot, err := peer.New(peer.Config{Profile: t.TempDir(), Overlay: overlay, Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := boot.Join(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close(context.Background()) })
	return boot
}

// startPhone runs a phone on boot's overlay until the test ends and waits until it is
// registered.
func startPhone(t *testing.T, ctx context.Context, boot *peer.Peer, cfg Config) (*Phone, <-chan Event) {
	t.Helper()
	cfg.Profile, cfg.Overlay, cfg.Listen = t.TempDir(), boot.Overlay(), "127.0.0.1:0"
	cfg.Bootstrap = []string{boot.Addr().String()}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := p.Subscribe(256)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }() // owner: this test; ends with stop at cleanup
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("%s: run: %v", cfg.User, err)
		}
		unsubscribe()
	})
	waitEvent(t, events, EventRegistered)
	return p, events
}

// waitEvents waits for an event of kind and returns it with every event before it.
func waitEvents(t *testing.T, events <-chan Event, kind EventKind) (Event, []Event) {
	t.Helper()
	var seen []Event
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e := <-events:
			seen = append(seen, e)
			if e.Kind == kind {
				return e, seen
			}
		case <-timeout:
			t.Fatalf("no %s event; saw %+v", kind, seen)
		}
	}
}

func warningCodes(evs []Event) map[string]Event {
	out := map[string]Event{}
	for _, e := range evs {
		if e.Kind == EventWarning {
			out[e.Code] = e
		}
	}
	return out
}

// With no sound device at all (no sound server) two phones still call each other, answer
// and hold: each sends silence, drops what it cannot play, and says so with warnings that
// carry a code; the call's info says it too.
func TestCallWithoutSoundDevices(t *testing.T) {
	pulsetest.NoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := testOverlay(t, ctx, "nodevice.test")
	alice, aev := startPhone(t, ctx, boot, Config{User: "alice"})
	bob, bev := startPhone(t, ctx, boot, Config{User: "bob", AutoAnswer: true})

	if err := alice.Call(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	_, before := waitEvents(t, aev, EventAnswered)
	_, bobBefore := waitEvents(t, bev, EventAnswered)
	for name, evs := range map[string][]Event{"alice": before, "bob": bobBefore} {
		w := warningCodes(evs)
		for _, code := range []string{CodeNoCaptureDevice, CodeNoPlaybackDevice} {
			if w[code].Message == "" || w[code].CallID == "" {
				t.Fatalf("%s: no %s warning with a message and call id: %+v", name, code, evs)
			}
		}
		t.Logf("%s: %s", name, w[CodeNoCaptureDevice].Message)
	}
	if err := alice.Hold(); err != nil {
		t.Fatalf("hold: %v", err)
	}
	waitEvents(t, aev, EventHeld)
	if err := alice.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitEvents(t, aev, EventResumed)
	// Silence flows both ways: RTP packets arrive at each side.
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := alice.Status().Calls, bob.Status().Calls
		if len(a) == 1 && len(b) == 1 && a[0].Stats != nil && b[0].Stats != nil &&
			a[0].Stats.Received > 25 && b[0].Stats.Received > 25 {
			if !strings.Contains(a[0].AudioWarning, "No microphone") || !strings.Contains(a[0].AudioWarning, "No speaker") {
				t.Fatalf("call info audio warning %q", a[0].AudioWarning)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RTP both ways: %+v / %+v", a, b)
		}
		time.Sleep(100 * time.Millisecond) // polling statistics; no event for packets
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	h, _ := waitEvents(t, bev, EventHangup)
	if h.Reason != "remote hangup" {
		t.Fatalf("bob's hangup reason %q", h.Reason)
	}
	waitEvents(t, aev, EventHangup)
	if hist, err := bob.Store().History(1); err != nil || len(hist) != 1 || hist[0].Reason != "remote hangup" {
		t.Fatalf("bob's history %+v %v", hist, err)
	}
}

// The history names why a call failed instead of "no answer": the callee is not
// registered, or this phone's own microphone could not be opened.
func TestHistoryNamesFailureReason(t *testing.T) {
	pulsetest.NoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := testOverlay(t, ctx, "failures.test")
	missing := filepath.Join(t.TempDir(), "no-such-mic.wav")
	alice, aev := startPhone(t, ctx, boot, Config{User: "alice", AudioIn: missing})
	startPhone(t, ctx, boot, Config{User: "bob", AutoAnswer: true})

	for _, c := range []struct {
		callee, reason, history string
	}{
		{"carol", "not registered", "failed: carol is not registered in failures.test"},
		{"bob", "media failed", "failed: cannot call bob: opening the microphone: "},
	} {
		if err := alice.Call(ctx, c.callee); err != nil {
			t.Fatal(err)
		}
		h, _ := waitEvents(t, aev, EventHangup)
		if h.Reason != c.reason {
			t.Errorf("call to %s: hangup reason %q, want %q", c.callee, h.Reason, c.reason)
		}
		hist, err := alice.Store().History(1)
		if err != nil || len(hist) != 1 {
			t.Fatalf("history: %+v %v", hist, err)
		}
		if !strings.HasPrefix(hist[0].Reason, c.history) || hist[0].Peer != c.callee {
			t.Errorf("call to %s: history %q, want it to begin %q", c.callee, hist[0].Reason, c.history)
		}
		t.Logf("history: %s: %s", hist[0].Peer, hist[0].Reason)
	}
}

// A call that began with no sound device switches to the devices chosen in Settings during
// the call (a sound server that appeared: pulsetest's null sinks): the warning goes, the
// other side's signal reaches the speaker and the microphone's tone reaches the other side.
func TestSetAudioDevicesSwitchesCall(t *testing.T) {
	pulsetest.NoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := testOverlay(t, ctx, "switch.test")
	dir := t.TempDir()
	bobIn, bobOut := filepath.Join(dir, "bob-in.wav"), filepath.Join(dir, "bob-out.wav")
	if err := audio.SaveWAV(bobIn, analysis.Sine(700, 12000, audio.SampleRate, audio.SampleRate)); err != nil {
		t.Fatal(err)
	}
	alice, aev := startPhone(t, ctx, boot, Config{User: "alice"})
	startPhone(t, ctx, boot, Config{User: "bob", AutoAnswer: true, AudioIn: bobIn, AudioOut: bobOut})
	if err := alice.Call(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, aev, EventAnswered)
	if w := alice.Status().Calls[0].AudioWarning; !strings.Contains(w, "No microphone") {
		t.Fatalf("audio warning before the switch: %q", w)
	}

	d := pulsetest.Start(t) // a headset is plugged in
	stop, err := d.PlayToMic(ctx, analysis.Sine(1000, 12000, audio.SampleRate, audio.SampleRate))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rec, err := d.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAudioDevices("pulse", "pulse"); err != nil {
		t.Fatalf("switching during the call: %v", err)
	}
	if w := alice.Status().Calls[0].AudioWarning; w != "" {
		t.Fatalf("audio warning after the switch: %q", w)
	}
	// bob's 700 Hz tone plays on alice's new speaker.
	deadline := time.Now().Add(30 * time.Second)
	for rec.Len() < 3*audio.SampleRate && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // recording; no event for samples
	}
	if n := toneFrames(rec.Stop(), 700); n < 25 {
		t.Fatalf("only %d frames of bob's tone on alice's new speaker", n)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, aev, EventHangup)
	// bob's output file: alice's new microphone's 1000 Hz tone (bob writes it at hang-up).
	deadline = time.Now().Add(30 * time.Second)
	for {
		got, err := audio.LoadWAV(bobOut)
		if n := toneFrames(got, 1000); err == nil && n >= 25 {
			t.Logf("%d frames of alice's new microphone's tone reached bob", n)
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("alice's new microphone did not reach bob: %d frames of its tone (%v)", n, err)
		}
		time.Sleep(200 * time.Millisecond) // bob closes the file once it sees the BYE
	}
}

// toneFrames counts 20 ms frames of samples that are a loud tone of freq Hz.
func toneFrames(samples []int16, freq float64) int {
	n := 0
	for i := 0; i+audio.FrameSamples <= len(samples); i += audio.FrameSamples {
		fr := samples[i : i+audio.FrameSamples]
		if analysis.RMS(fr) > 1000 && analysis.Goertzel(fr, freq, audio.SampleRate) > 0.8 {
			n++
		}
	}
	return n
}
