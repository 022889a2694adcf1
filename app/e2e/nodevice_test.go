package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/pulsetest"
)

// TestCallWithoutSoundDevice: with no sound server (so PortAudio has no device at all),
// headless phones still place, answer and hold calls. alice has a microphone file but no
// speaker; bob has no microphone (no --audio-in) but a speaker file. Each warns with a code
// and a message, bob answers, hold and resume work, and alice's signal reaches bob's file.
func TestCallWithoutSoundDevice(t *testing.T) {
	pulsetest.NoServer(t) // the phones inherit it (IsolatedEnv keeps PULSE_SERVER)
	o := StartOverlay(t, "nodevice.test", 2)
	sig, in, _ := audioFiles(t, t.TempDir(), "alice", 1)
	alice := o.Join(t, "alice", "--user", "alice", "--audio-in", in)
	bobOut := filepath.Join(t.TempDir(), "bob-out.wav")
	bob := o.Join(t, "bob", "--user", "bob", "--audio-out", bobOut, "--auto-answer")
	alice.Wait(t, "registered", 60*time.Second)
	bob.Wait(t, "registered", 60*time.Second)

	alice.Send(t, "call bob")
	call := alice.Wait(t, "calling", 10*time.Second)["call_id"]
	w := alice.Wait(t, "warning", 30*time.Second)
	if w["code"] != "no_playback_device" || w["call_id"] != call || !strings.Contains(w["message"].(string), "No speaker") {
		t.Fatalf("alice's warning %v", w)
	}
	bw := bob.Wait(t, "warning", 30*time.Second)
	if bw["code"] != "no_capture_device" || !strings.Contains(bw["message"].(string), "silence") {
		t.Fatalf("bob's warning %v", bw)
	}
	t.Logf("alice: %s; bob: %s", w["message"], bw["message"])
	alice.Wait(t, "answered", 30*time.Second)
	bob.Wait(t, "answered", 30*time.Second)
	waitReceived(t, bob, 100)
	waitReceived(t, alice, 100) // bob's silence arrives too

	bob.Send(t, "hold")
	bob.Wait(t, "held", 20*time.Second)
	bob.Send(t, "resume")
	bob.Wait(t, "resumed", 20*time.Second)
	waitReceived(t, bob, 200)

	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	if h := bob.Wait(t, "hangup", 20*time.Second); h["reason"] != "remote hangup" {
		t.Errorf("bob's hangup reason %v", h["reason"])
	}
	for _, p := range []*Proc{alice, bob} {
		for _, e := range p.Events() {
			if e["event"] == "error" {
				t.Errorf("%s: error event %v", p.Name, e)
			}
		}
	}
	checkAudio(t, "alice -> bob", sig, bobOut)
}
