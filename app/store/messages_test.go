package store

import (
	"errors"
	"testing"
	"time"
)

// TestMessages: a conversation keeps its order, a page recorded twice (two devices, a
// retransmission) is kept once, statuses change (a delivered message stays delivered), and
// unread counts follow MarkRead; everything survives a reopen.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	add := func(e MessageEntry) bool {
		t.Helper()
		_, added, err := s.AddMessage(e)
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	add(MessageEntry{ID: "a1", Peer: "bob", Direction: Outgoing, Text: "hi bob", Time: now, Status: MessageSending})
	add(MessageEntry{ID: "b1", Peer: "bob", Direction: Incoming, Text: "hi alice", Time: now, Status: MessageReceived})
	add(MessageEntry{ID: "c1", Peer: "carol", Direction: Incoming, Text: "hello", Time: now, Status: MessageReceived})
	if add(MessageEntry{ID: "b1", Peer: "bob", Direction: Incoming, Text: "hi alice", Time: now, Status: MessageReceived}) {
		t.Error("the same incoming message was added twice")
	}
	if !add(MessageEntry{ID: "b1", Peer: "mallory", Direction: Incoming, Text: "same id", Time: now, Status: MessageReceived}) {
		t.Error("another sender's message with the same id was not added")
	}
	if _, _, err := s.AddMessage(MessageEntry{ID: "x", Peer: "bob"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("message without a direction: %v", err)
	}
	if _, changed, err := s.UpdateMessage(Outgoing, "bob", "a1", func(e *MessageEntry) { e.Status, e.Slots = MessageStored, []int{3} }); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if w, err := s.WaitingInOverlay(); err != nil || len(w) != 1 || w[0].ID != "a1" || w[0].Slots[0] != 3 {
		t.Fatalf("waiting in the overlay: %+v, %v", w, err)
	}
	if _, changed, err := s.SetMessageStatus(Outgoing, "bob", "a1", MessageDelivered); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if e, changed, _ := s.SetMessageStatus(Outgoing, "bob", "a1", MessageFailed); e.Status != MessageDelivered || changed {
		t.Errorf("a delivered message became %q", e.Status)
	}
	if _, _, err := s.SetMessageStatus(Outgoing, "carol", "a1", MessageFailed); !errors.Is(err, ErrNotFound) {
		t.Errorf("another peer's message with the same id: %v", err)
	}
	if _, _, err := s.SetMessageStatus(Outgoing, "bob", "zz", MessageFailed); !errors.Is(err, ErrNotFound) {
		t.Errorf("status of an unknown message: %v", err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conv, err := s.Messages("bob", 0)
	if err != nil || len(conv) != 2 || conv[0].ID != "a1" || conv[1].ID != "b1" || conv[0].Status != MessageDelivered {
		t.Fatalf("conversation with bob: %+v, %v", conv, err)
	}
	if u, _ := s.Unread(); u["bob"] != 1 || u["carol"] != 1 || u["mallory"] != 1 {
		t.Errorf("unread %v", u)
	}
	if err := s.MarkRead("bob"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Unread(); u["bob"] != 0 || u["carol"] != 1 {
		t.Errorf("unread after reading bob's: %v", u)
	}
	if all, _ := s.Messages("", 1); len(all) != 1 || all[0].Peer != "mallory" {
		t.Errorf("last message: %+v", all)
	}
}
