package e2e

import (
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
