package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

// TestMessageByName (issue 19): alice writes to bob by name through an overlay of storing
// peers; bob's phone shows the text with its sender and id, alice's says it was delivered;
// bob answers over the connection alice's message opened. A message to a user nobody is
// registered as fails with message_failed.
func TestMessageByName(t *testing.T) {
	o := StartOverlay(t, "messages.test", 3)
	bob := startPhone(t, o, "bob", 2)
	alice := startPhone(t, o, "alice", 1)

	alice.Send(t, "msg bob hello bob, how   are you?")
	sent := alice.Wait(t, "sent", 10*time.Second)
	id, _ := sent["id"].(string)
	if len(id) != 32 {
		t.Fatalf("sent event without a message id: %v", sent)
	}
	m := bob.Wait(t, "message", 30*time.Second)
	if m["from"] != "alice" || m["text"] != "hello bob, how   are you?" || m["id"] != id || m["time"] == nil {
		t.Errorf("bob's message event: %v", m)
	}
	if d := alice.Wait(t, "delivered", 30*time.Second); d["id"] != id || d["peer"] != "bob" {
		t.Errorf("alice's delivered event: %v", d)
	}

	bob.Send(t, "msg alice fine, thanks")
	if m := alice.Wait(t, "message", 30*time.Second); m["from"] != "bob" || m["text"] != "fine, thanks" {
		t.Errorf("alice's message event: %v", m)
	}
	bob.Wait(t, "delivered", 30*time.Second)

	alice.Send(t, "msg nobody are you there?")
	for {
		e := alice.Wait(t, "error", 30*time.Second)
		if e["code"] == "message_failed" {
			break
		}
	}
	alice.Send(t, "msg bob")
	if e := alice.Wait(t, "error", 10*time.Second); e["code"] != "bad_arguments" {
		t.Errorf("msg without text: %v", e)
	}
}

// restartable is a headless phone whose profile survives a quit, so it can come back.
type restartable struct {
	o    *Overlay
	user string
	dir  string
	runs int
	*Proc
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	r.runs++
	r.Proc = StartHeadless(t, binPath, fmt.Sprintf("%s%d", r.user, r.runs), r.dir, "--profile", filepath.Join(r.dir, "profile"),
		"--listen", "127.0.0.1:0", "--overlay", r.o.Name, "--bootstrap", r.o.Addrs[0], "--user", r.user)
	r.Wait(t, "registered", 60*time.Second)
}

func (r *restartable) quit(t *testing.T) {
	t.Helper()
	r.Send(t, "quit")
	select {
	case <-r.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not quit", r.Name)
	}
}

// TestMessageOffline (issue 19): a message for a user with no phone online waits in the
// overlay (`stored`); the recipient's phone shows it when it comes back, and the sender
// learns of the delivery at once when online (a receipt), or when it comes back itself
// (the deletion in the mailbox).
func TestMessageOffline(t *testing.T) {
	o := StartOverlay(t, "offline.test", 3)
	alice := &restartable{o: o, user: "alice", dir: t.TempDir()}
	bob := &restartable{o: o, user: "bob", dir: t.TempDir()}
	alice.start(t)
	bob.start(t)
	// Both online once: bob's certificate is in the overlay by the time this is delivered.
	alice.Send(t, "msg bob hi")
	alice.Wait(t, "delivered", 30*time.Second)
	bob.quit(t)

	alice.Send(t, "msg bob written while you were away")
	id1 := alice.Wait(t, "sent", 10*time.Second)["id"]
	if s := alice.Wait(t, "stored", 60*time.Second); s["id"] != id1 || s["peer"] != "bob" {
		t.Fatalf("stored event %v, want id %v", s, id1)
	}
	bob.start(t)
	if m := bob.Wait(t, "message", 60*time.Second); m["from"] != "alice" || m["text"] != "written while you were away" || m["id"] != id1 {
		t.Errorf("bob's message event: %v", m)
	}
	if d := alice.Wait(t, "delivered", 60*time.Second); d["id"] != id1 {
		t.Errorf("alice's delivered event: %v, want id %v", d, id1)
	}

	bob.quit(t)
	alice.Send(t, "msg bob second")
	id2 := alice.Wait(t, "sent", 10*time.Second)["id"]
	alice.Wait(t, "stored", 60*time.Second)
	alice.quit(t)
	bob.start(t)
	if m := bob.Wait(t, "message", 60*time.Second); m["text"] != "second" || m["id"] != id2 {
		t.Errorf("bob's second message event: %v", m)
	}
	alice.start(t)
	if d := alice.Wait(t, "delivered", 60*time.Second); d["id"] != id2 {
		t.Errorf("alice's delivered event after coming back: %v, want id %v", d, id2)
	}
}

// checkVoice: the voice message in file carries sent (a median correlation of 0.9 over
// 0.25 s windows aligned against it) and lasts as long.
func checkVoice(t *testing.T, sent []int16, file string) {
	t.Helper()
	got, err := audio.LoadWAV(file)
	if err != nil {
		t.Fatal(err)
	}
	if d := len(got) - len(sent); d < 0 || d > audio.FrameSamples {
		t.Errorf("voice message of %d samples, sent %d", len(got), len(sent))
	}
	win := audio.SampleRate / 4
	var corrs []float64
	for start := 0; start+win <= len(got); start += win {
		seg := got[start : start+win]
		if analysis.RMS(seg) < 100 {
			continue
		}
		// The window came from about the same place of what was sent (the codec delays it
		// by a few milliseconds): align it against 0.1 s either side.
		lo, hi := max(0, start-audio.SampleRate/10), min(len(sent), start+win+audio.SampleRate/10)
		_, c := analysis.Align(seg, sent[lo:hi], hi-lo-win)
		corrs = append(corrs, c)
	}
	if len(corrs) == 0 {
		t.Fatal("the voice message is silent")
	}
	slices.Sort(corrs)
	if med := corrs[len(corrs)/2]; med < 0.9 {
		t.Errorf("voice message: median correlation %.2f over %d windows", med, len(corrs))
	} else {
		t.Logf("voice message: median correlation %.3f over %d windows", med, len(corrs))
	}
}

// TestVoicemail (issue 19): alice leaves bob a voice message from a WAV file, once while bob
// is online (he is told to look at once) and once while he is away (he finds it when he
// comes back); each arrives as a WAV file in bob's profile that correlates with what alice
// sent, and alice learns of each delivery.
func TestVoicemail(t *testing.T) {
	o := StartOverlay(t, "voicemail.test", 3)
	alice := &restartable{o: o, user: "alice", dir: t.TempDir()}
	bob := &restartable{o: o, user: "bob", dir: t.TempDir()}
	alice.start(t)
	bob.start(t)
	sig := analysis.TestSignal(audio.SampleRate*4, audio.SampleRate, 5)
	wav := filepath.Join(t.TempDir(), "greeting.wav")
	if err := audio.SaveWAV(wav, sig); err != nil {
		t.Fatal(err)
	}

	alice.Send(t, "voicemail bob "+wav)
	id := alice.Wait(t, "sent", 10*time.Second)["id"]
	alice.Wait(t, "stored", 60*time.Second)
	v := bob.Wait(t, "voicemail", 60*time.Second)
	if v["from"] != "alice" || v["id"] != id || v["duration_ms"].(float64) < 4000 {
		t.Errorf("bob's voicemail event: %v", v)
	}
	checkVoice(t, sig, v["file"].(string))
	if d := alice.Wait(t, "delivered", 60*time.Second); d["id"] != id {
		t.Errorf("alice's delivered event %v, want id %v", d, id)
	}

	bob.quit(t)
	alice.Send(t, "voicemail bob "+wav)
	id = alice.Wait(t, "sent", 10*time.Second)["id"]
	alice.Wait(t, "stored", 60*time.Second)
	bob.start(t)
	if v := bob.Wait(t, "voicemail", 60*time.Second); v["id"] != id {
		t.Errorf("bob's voicemail after coming back: %v, want id %v", v, id)
	} else {
		checkVoice(t, sig, v["file"].(string))
	}
	alice.Wait(t, "delivered", 60*time.Second)

	alice.Send(t, "voicemail bob /nonexistent.wav")
	if e := alice.Wait(t, "error", 10*time.Second); e["code"] != "command_failed" {
		t.Errorf("voicemail of a missing file: %v", e)
	}
}

// waitPresence waits for p's presence event about peer saying state.
func waitPresence(t *testing.T, p *Proc, peer, state string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		e := p.Wait(t, "presence", time.Until(deadline))
		if e["peer"] == peer && e["presence"] == state {
			return
		}
	}
}

// TestPresence (issue 19): alice follows her contact bob: online from his registration when
// she adds him; after a message between them they watch each other over its connection
// (SUBSCRIBE/NOTIFY), so alice hears at once that bob is in a call with carol, that the call
// ended, and that bob quit.
func TestPresence(t *testing.T) {
	o := StartOverlay(t, "presence.test", 3)
	startPhone(t, o, "carol", 3, "--auto-answer")
	bob := startPhone(t, o, "bob", 2)
	alice := startPhone(t, o, "alice", 1)
	alice.Send(t, "contact carol")
	waitPresence(t, alice.Proc, "carol", "online")
	alice.Send(t, "contact bob")
	waitPresence(t, alice.Proc, "bob", "online")
	bob.Send(t, "contact alice")
	waitPresence(t, bob.Proc, "alice", "online")

	alice.Send(t, "msg bob are you there?")
	bob.Wait(t, "message", 30*time.Second)
	alice.Wait(t, "delivered", 30*time.Second)

	bob.Send(t, "call carol")
	bob.Wait(t, "answered", 30*time.Second)
	waitPresence(t, alice.Proc, "bob", "in a call")
	bob.Send(t, "hangup")
	waitPresence(t, alice.Proc, "bob", "online")
	bob.Send(t, "quit")
	waitPresence(t, alice.Proc, "bob", "offline")
}

// TestVoicemailMinute: a voice message of the longest length (60 s, about 50 mailbox parts)
// reaches an online recipient whole. It logs how long leaving and receiving it took.
func TestVoicemailMinute(t *testing.T) {
	o := StartOverlay(t, "minute.test", 3)
	bob := startPhone(t, o, "bob", 2)
	alice := startPhone(t, o, "alice", 1)
	sig := analysis.TestSignal(audio.SampleRate*60, audio.SampleRate, 9)
	wav := filepath.Join(t.TempDir(), "minute.wav")
	if err := audio.SaveWAV(wav, sig); err != nil {
		t.Fatal(err)
	}
	alice.Send(t, "voicemail bob "+wav)
	sent := alice.Wait(t, "sent", 10*time.Second)
	stored := alice.Wait(t, "stored", 120*time.Second)
	v := bob.Wait(t, "voicemail", 120*time.Second)
	arrived := time.Now()
	if v["id"] != sent["id"] {
		t.Fatalf("bob's voicemail %v, want id %v", v, sent["id"])
	}
	at := func(e map[string]any) time.Time {
		tm, _ := time.Parse(time.RFC3339Nano, e["time"].(string))
		return tm
	}
	t.Logf("60 s voice message: stored in the overlay %.2f s after sent, received %.2f s after sent",
		at(stored).Sub(at(sent)).Seconds(), arrived.Sub(at(sent)).Seconds())
	checkVoice(t, sig, v["file"].(string))
	alice.Wait(t, "delivered", 60*time.Second)
}
