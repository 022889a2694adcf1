package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
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
