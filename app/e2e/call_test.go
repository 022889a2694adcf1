package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

// phoneProc is a headless phone with a user, its WAV files and its reference signal.
type phoneProc struct {
	*Proc
	sent   []int16
	outWAV string
}

// audioFiles writes a 2 s test signal (seed) to dir as user's microphone and names the
// WAV file the phone writes what it hears to: the --audio-in and --audio-out of a phone.
func audioFiles(t *testing.T, dir, user string, seed uint32) (sig []int16, in, out string) {
	t.Helper()
	sig = analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, seed)
	in = filepath.Join(dir, user+"-in.wav")
	if err := audio.SaveWAV(in, sig); err != nil {
		t.Fatal(err)
	}
	return sig, in, filepath.Join(dir, user+"-out.wav")
}

func startPhone(t *testing.T, o *Overlay, user string, seed uint32, extra ...string) *phoneProc {
	t.Helper()
	sig, in, out := audioFiles(t, t.TempDir(), user, seed)
	args := append([]string{"--user", user, "--audio-in", in, "--audio-out", out}, extra...)
	p := o.Join(t, user, args...)
	p.Wait(t, "registered", 60*time.Second)
	return &phoneProc{Proc: p, sent: sig, outWAV: out}
}

// waitReceived polls status until the current call has received at least n RTP packets.
func waitReceived(t *testing.T, p *Proc, n float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.Send(t, "status")
		st := p.Wait(t, "status", 10*time.Second)
		calls, _ := st["calls"].([]any)
		if len(calls) == 1 {
			if stats, ok := calls[0].(map[string]any)["stats"].(map[string]any); ok {
				if got, _ := stats["received"].(float64); got >= n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %v RTP packets received: %v", p.Name, n, st)
		}
		time.Sleep(250 * time.Millisecond) // status polling interval
	}
}

// checkAudio verifies that the peer's signal arrived in out: windows aligned against
// the (looping) reference correlate at least 0.9 in the median (0.25 s windows: a glitch of a
// loaded machine spoils few of them).
func checkAudio(t *testing.T, who string, sent []int16, out string) {
	t.Helper()
	got, err := audio.LoadWAV(out)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	ref := append(append([]int16(nil), sent...), sent...)
	win := audio.SampleRate / 4
	var corrs []float64
	for start := audio.SampleRate / 2; start+win <= len(got); start += win {
		seg := got[start : start+win]
		if analysis.RMS(seg) < 100 {
			continue
		}
		_, c := analysis.Align(seg, ref, len(sent))
		corrs = append(corrs, c)
	}
	if len(corrs) < 3 {
		t.Fatalf("%s: only %d windows with sound in %d samples", who, len(corrs), len(got))
	}
	med := analysis.Median(corrs)
	t.Logf("%s: aligned correlation per 0.25 s window %.3f, median %.3f", who, corrs, med)
	if med < 0.9 {
		t.Fatalf("%s: median aligned correlation %.3f < 0.9", who, med)
	}
}

func rtpOf(t *testing.T, e map[string]any) map[string]any {
	t.Helper()
	r, ok := e["rtp"].(map[string]any)
	if !ok {
		t.Fatalf("hangup without rtp statistics: %v", e)
	}
	return r
}

// TestCallByName: alice calls bob by name through an overlay of storing peers; bob answers
// automatically; each one's signal arrives in the other's output, and both hang-up events
// carry RTP statistics.
func TestCallByName(t *testing.T) {
	o := StartOverlay(t, "calls.test", 3)
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	alice := startPhone(t, o, "alice", 1)

	alice.Send(t, "call bob")
	alice.Wait(t, "calling", 10*time.Second)
	bob.Wait(t, "incoming", 20*time.Second)
	ans := alice.Wait(t, "answered", 20*time.Second)
	if ms, ok := ans["setup_ms"].(float64); !ok || ms <= 0 {
		t.Errorf("answered without setup_ms: %v", ans)
	}
	bob.Wait(t, "answered", 20*time.Second)
	waitReceived(t, alice.Proc, 200) // 4 s of audio
	waitReceived(t, bob.Proc, 200)

	alice.Send(t, "hangup")
	ah := alice.Wait(t, "hangup", 20*time.Second)
	bh := bob.Wait(t, "hangup", 20*time.Second)
	for who, h := range map[string]map[string]any{"alice": ah, "bob": bh} {
		r := rtpOf(t, h)
		if r["sent"].(float64) < 150 || r["received"].(float64) < 150 {
			t.Errorf("%s: hangup RTP statistics too small: %v", who, r)
		}
		if _, ok := r["jitter_ms"].(float64); !ok {
			t.Errorf("%s: no jitter in %v", who, r)
		}
	}
	if !strings.Contains(bh["reason"].(string), "remote") {
		t.Errorf("bob's hangup reason %q, want the remote hang-up", bh["reason"])
	}
	checkAudio(t, "alice -> bob", alice.sent, bob.outWAV)
	checkAudio(t, "bob -> alice", bob.sent, alice.outWAV)
}

// TestCallFailures: an unknown user, a decline, a busy callee and a callee that quits in the
// middle of a call each give the right event, quickly.
func TestCallFailures(t *testing.T) {
	o := StartOverlay(t, "failures.test", 3)
	bob := startPhone(t, o, "bob", 2)
	alice := startPhone(t, o, "alice", 1)
	carol := startPhone(t, o, "carol", 3, "--auto-answer")

	t.Run("unknown user", func(t *testing.T) {
		start := time.Now()
		alice.Send(t, "call nobody")
		e := alice.Wait(t, "error", 20*time.Second)
		// Quickly: on the overlay's answer that nobody is registered, not after a request
		// timed out (five transmissions, 3 s apart: 15 s). The bound leaves room for race-
		// built phones on a loaded machine (a lookup takes well under a second when idle).
		took := time.Since(start)
		if took > 10*time.Second {
			t.Errorf("unknown user reported after %v, want under 10 s", took)
		}
		t.Logf("unknown user reported after %v", took)
		if msg := e["message"].(string); msg != "nobody is not registered in failures.test" {
			t.Errorf("message %q", msg)
		}
		alice.Wait(t, "hangup", 20*time.Second)
	})

	t.Run("decline", func(t *testing.T) {
		alice.Send(t, "call bob")
		bob.Wait(t, "incoming", 20*time.Second)
		alice.Wait(t, "ringing", 20*time.Second)
		bob.Send(t, "decline")
		h := alice.Wait(t, "hangup", 20*time.Second)
		if h["reason"] != "declined" {
			t.Errorf("alice's hangup reason %q, want declined", h["reason"])
		}
		bob.Wait(t, "hangup", 10*time.Second)
	})

	t.Run("busy", func(t *testing.T) {
		bob.Send(t, "call carol")
		bob.Wait(t, "answered", 20*time.Second)
		alice.Send(t, "call bob")
		h := alice.Wait(t, "hangup", 20*time.Second)
		if h["reason"] != "busy" {
			t.Errorf("alice's hangup reason %q, want busy", h["reason"])
		}
		bob.Send(t, "hangup")
		bob.Wait(t, "hangup", 20*time.Second)
		carol.Wait(t, "hangup", 20*time.Second)
	})

	t.Run("callee quits", func(t *testing.T) {
		alice.Send(t, "call carol")
		alice.Wait(t, "answered", 20*time.Second)
		carol.Send(t, "quit")
		h := alice.Wait(t, "hangup", 20*time.Second)
		if r, _ := h["reason"].(string); !strings.Contains(r, "remote") {
			t.Errorf("alice's hangup reason %q, want the remote hang-up", r)
		}
		rtpOf(t, h)
	})
}

// TestCallRingsEveryDevice: bob is registered from two phones; alice's call rings both, the
// first to answer wins and the other stops ringing (CANCEL), RFC 7904 §4.2.
func TestCallRingsEveryDevice(t *testing.T) {
	o := StartOverlay(t, "devices.test", 3)
	desk := startPhone(t, o, "bob", 2)
	mobile := startPhone(t, o, "bob", 4, "--auto-answer")
	alice := startPhone(t, o, "alice", 1)

	alice.Send(t, "call bob")
	desk.Wait(t, "incoming", 20*time.Second)
	mobile.Wait(t, "answered", 20*time.Second)
	alice.Wait(t, "answered", 20*time.Second)
	h := desk.Wait(t, "hangup", 20*time.Second)
	if h["reason"] != "cancelled" {
		t.Errorf("the desk phone's hangup reason %q, want cancelled", h["reason"])
	}
	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	mobile.Wait(t, "hangup", 20*time.Second)
}

// TestChangedKeyWarns: alice pins the key bob first called with; when "bob" later answers
// with another key (a new device or an impostor in a self-signed overlay), alice is warned.
func TestChangedKeyWarns(t *testing.T) {
	o := StartOverlay(t, "pins.test", 3)
	alice := startPhone(t, o, "alice", 1)
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	if !tryCall(t, alice, bob) {
		t.Fatal("first call failed")
	}
	bob.Send(t, "quit")
	<-bob.Exited()
	other := startPhone(t, o, "bob", 3, "--auto-answer") // a new profile: a new key
	alice.Send(t, "call bob")
	for {
		e := alice.Next(t, 30*time.Second)
		if e["event"] == "error" {
			if msg := e["message"].(string); !strings.Contains(msg, "bob") {
				t.Errorf("warning does not name bob: %q", msg)
			}
			break
		}
		if e["event"] == "hangup" {
			t.Fatalf("no warning about bob's changed key; events: %v", alice.Events())
		}
	}
	alice.Wait(t, "answered", 20*time.Second)
	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	other.Wait(t, "hangup", 20*time.Second)
}
