package phone

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/mailbox"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestMailboxRefusals (issue 19): what mallory leaves in bob's mailbox. An envelope naming
// another sender than its signer is refused by the storing peer (stored nowhere); one bob
// cannot decrypt and one older than a message lives are refused by bob's phone with a
// message_refused warning and deleted; a good one is shown once, and the same message left
// again (a replay) is deleted without being shown again.
func TestMailboxRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := testOverlay(t, ctx, "mailbox.test")
	bob, bev := startPhone(t, ctx, boot, Config{User: "bob"})
	mallory, _ := startPhone(t, ctx, boot, Config{User: "mallory"})
	pr := mallory.peer
	mb := pr.Mailbox()
	to := pr.AoR("bob")
	bobCerts, err := mb.RecipientCerts(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(from string, created time.Time, certs []*x509.Certificate, text string, id byte) []byte {
		t.Helper()
		env, err := mailbox.Seal(&mailbox.Message{From: from, To: to, ID: [16]byte{id}, Created: created, Parts: 1,
			Type: mailbox.ContentText, Payload: []byte(text)}, certs)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	now := time.Now()
	forged := seal(pr.AoR("alice"), now, bobCerts, "from alice, honest", 1)
	if _, err := mb.Put(ctx, to, [][]byte{forged}, time.Hour); !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("an envelope from alice signed by mallory: %v, want Error_Forbidden", err)
	}
	own := []*x509.Certificate{pr.Identity().Cert()}
	for _, env := range [][]byte{
		seal(pr.User(), now, own, "sealed to the wrong key", 2),
		seal(pr.User(), now.Add(-8*24*time.Hour), bobCerts, "last week's", 3),
	} {
		if _, err := mb.Put(ctx, to, [][]byte{env}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	good := seal(pr.User(), now, bobCerts, "hello bob", 4)
	d, err := mb.Put(ctx, to, [][]byte{good}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob.pokeMailbox("mallory")
	refused := 0
	for refused < 2 {
		e, _ := waitEvents(t, bev, EventWarning)
		if e.Code == CodeMessageRefused && e.From == pr.User() {
			refused++
		}
	}
	m, _ := waitEvents(t, bev, EventMessage)
	if m.Text != "hello bob" || m.From != "mallory" || m.ID != hex.EncodeToString([]byte{4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("bob's message %+v", m)
	}
	waitDelivered(t, ctx, mb, d)

	again, err := mb.Put(ctx, to, [][]byte{good}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob.pokeMailbox("mallory")
	waitDelivered(t, ctx, mb, again) // deleted ...
	for {
		select {
		case e := <-bev: // ... and not shown again
			if e.Kind == EventMessage {
				t.Fatalf("the replayed message was shown again: %+v", e)
			}
		default:
			items, err := bob.peer.Mailbox().Collect(ctx, nil)
			if err != nil || len(items) != 0 {
				t.Errorf("bob's mailbox still holds %d items (%v)", len(items), err)
			}
			return
		}
	}
}

// waitDelivered waits until the recipient has deleted deposit d.
func waitDelivered(t *testing.T, ctx context.Context, mb *mailbox.Client, d *mailbox.Deposit) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := mb.Check(ctx, d)
		if err == nil && st == mailbox.Delivered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deposit %v not collected: %v, %v", d.Slots, st, err)
		}
		time.Sleep(200 * time.Millisecond) // the overlay has no event for a deletion
	}
}
