package phone

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/mailbox"
)

// Offline delivery (issue 19): a message for a user with no reachable device is sealed to
// the user's certificates and left in the user's mailbox in the overlay (overlay/mailbox).
// The recipient's phone collects it when it joins (and every mailboxInterval), shows it,
// deletes it and sends the sender a receipt; a sender that was away learns of the delivery
// from the deletion when it joins again.

// mailboxInterval is how often a running phone looks into its mailbox (a Stat of one
// resource): a message deposited while this phone was registering is not left for long.
const mailboxInterval = 5 * time.Minute

// incompleteFor is how long parts of a message wait for the rest before they are deleted.
const incompleteFor = time.Hour

// clockSlack is how far a message's time may be ahead of ours.
const clockSlack = time.Hour

// contentDelivered is the content type of a delivery receipt (a MESSAGE whose body is the
// delivered message's id).
const contentDelivered = "application/vnd.chordphone.delivered"

// Codes of offline delivery.
const (
	CodeMessageRefused = "message_refused" // warning: a message in the mailbox was unreadable, forged or replayed: deleted
	CodeMailboxFailed  = "mailbox_failed"  // warning: the mailbox could not be read (tried again later)
)

// EventStored: a message waits in the recipient's mailbox in the overlay.
const EventStored EventKind = "stored"

// deposit seals e's text to user's certificates and stores it in user's mailbox.
func (p *Phone) deposit(ctx context.Context, pr *peer.Peer, user string, e store.MessageEntry) error {
	return p.depositPayload(ctx, pr, user, e, mailbox.ContentText, []byte(e.Text))
}

// depositPayload seals payload (of content type typ) to user's certificates, in as many
// parts as the mailbox's value size needs, stores them in user's mailbox and records where
// in e's history entry.
func (p *Phone) depositPayload(ctx context.Context, pr *peer.Peer, user string, e store.MessageEntry, typ uint8, payload []byte) error {
	mb := pr.Mailbox()
	aor := pr.AoR(user)
	certs, err := mb.RecipientCerts(ctx, aor)
	if err != nil {
		return err
	}
	if certs, err = p.pinned(user, certs); err != nil {
		return err
	}
	var id [16]byte
	if _, err := hex.Decode(id[:], []byte(e.ID)); err != nil {
		return fmt.Errorf("message id %q: %w", e.ID, err)
	}
	room := mailbox.MaxSize - mailbox.Overhead(pr.User(), aor, certs)
	parts := (len(payload) + room - 1) / room
	if parts > mailbox.MaxPerSender || room < 256 {
		return fmt.Errorf("the message is too long to wait in the overlay (%d bytes)", len(payload))
	}
	envs := make([][]byte, 0, parts)
	for i := range parts {
		chunk := payload[i*room : min(len(payload), (i+1)*room)]
		env, err := mailbox.Seal(&mailbox.Message{From: pr.User(), To: aor, ID: id, Created: e.Time, Part: i, Parts: parts,
			Type: typ, Payload: chunk}, certs)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	d, err := mb.Put(ctx, aor, envs, mailbox.DefaultLifetime)
	if err != nil {
		return err
	}
	_, _, err = p.store.UpdateMessage(store.Outgoing, user, e.ID, func(m *store.MessageEntry) {
		m.Status, m.Offline, m.Slots, m.StorageTime = store.MessageStored, true, d.Slots, d.StorageTime
	})
	return err
}

// pinned keeps the certificates with the key pinned for user (identity.PinStore), all of
// them when none is pinned yet; none left is an error (the key changed: not sealed to a
// stranger).
func (p *Phone) pinned(user string, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	if p.pins == nil {
		return certs, nil
	}
	pin, ok := p.pins.Get(user)
	if !ok {
		return certs, nil
	}
	var out []*x509.Certificate
	for _, c := range certs {
		if identity.KeyFingerprint(c) == pin.KeySHA256 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s's certificate in the overlay has another key than the one pinned: the message is not left for a key you have not accepted", user)
	}
	return out, nil
}

// mailboxSoon are the looks into the mailbox after joining, besides the first: the ring
// hands this phone's data over to its new place (RFC 6940 §10.5) while it registers, so a
// mailbox the first look found empty may not be.
var mailboxSoon = []time.Duration{5 * time.Second, 20 * time.Second}

// watchMailbox collects the mailbox and checks this phone's deposits now, soon after (see
// mailboxSoon) and every mailboxInterval until ctx ends.
func (p *Phone) watchMailbox(ctx context.Context, pr *peer.Peer, ep *sipcall.Endpoint) {
	t := time.NewTimer(0)
	defer t.Stop()
	var senders []string // who said something waits: listed by slot if the mailbox is too large to list
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case from := <-p.mailboxPoke: // a sender says something waits (a voice message)
			t.Stop()
			senders = append(senders, pr.AoR(from))
		}
		p.collectMailbox(ctx, pr, ep, senders...)
		senders = nil
		p.checkDeposits(ctx, pr, ep)
		next := mailboxInterval
		if n < len(mailboxSoon) {
			next = mailboxSoon[n]
		}
		t.Reset(next)
	}
}

// pokeMailbox makes watchMailbox look into the mailbox now, for what from left there.
func (p *Phone) pokeMailbox(from string) {
	select {
	case p.mailboxPoke <- from:
	default:
	}
}

// part is one envelope of the mailbox, opened.
type part struct {
	it  mailbox.Item
	msg *mailbox.Message
}

// collectMailbox fetches, opens, shows and deletes what waits in the mailbox, and sends the
// senders receipts.
func (p *Phone) collectMailbox(ctx context.Context, pr *peer.Peer, ep *sipcall.Endpoint, senders ...string) {
	mb := pr.Mailbox()
	items, err := mb.Collect(ctx, append(p.knownUsers(pr), senders...))
	if err != nil && ctx.Err() == nil {
		p.log.Warn("reading the mailbox", "err", err)
		if len(items) == 0 {
			p.emit(Event{Kind: EventWarning, Code: CodeMailboxFailed, Message: fmt.Sprintf("messages waiting in the overlay could not be read yet (%v); trying again in %v", err, mailboxInterval)})
			return
		}
	}
	id := pr.Identity()
	groups := map[string][]part{}
	for _, it := range items {
		m, err := mailbox.Open(it.Envelope, id.Key, id.Cert())
		if err == nil {
			err = p.acceptable(pr, m)
		}
		if err != nil {
			p.refuse(ctx, mb, it, err)
			continue
		}
		k := m.From + "\x00" + hex.EncodeToString(m.ID[:])
		groups[k] = append(groups[k], part{it, m})
	}
	for _, parts := range groups {
		if len(parts) != parts[0].msg.Parts {
			if time.Since(parts[0].msg.Created) > incompleteFor {
				for _, pt := range parts {
					p.refuse(ctx, mb, pt.it, fmt.Errorf("part %d of %d: the rest never came", pt.msg.Part+1, pt.msg.Parts))
				}
			}
			continue // the sender is still storing the rest
		}
		p.takeDelivery(ctx, pr, ep, parts)
	}
}

// acceptable checks an opened message beyond its seal: to this user, not from the future
// nor older than a message lives (a replay of an old deleted message).
func (p *Phone) acceptable(pr *peer.Peer, m *mailbox.Message) error {
	now := time.Now()
	switch {
	case !strings.EqualFold(m.To, pr.User()):
		return fmt.Errorf("addressed to %s", m.To)
	case m.Created.After(now.Add(clockSlack)):
		return fmt.Errorf("dated %v, in the future", m.Created)
	case m.Created.Before(now.Add(-mailbox.DefaultLifetime - clockSlack)):
		return fmt.Errorf("dated %v, older than a message waits (a replay)", m.Created)
	case m.Type != mailbox.ContentText && m.Type != mailbox.ContentVoice:
		return fmt.Errorf("of content type %d, which this phone cannot show", m.Type)
	}
	return nil
}

// refuse deletes an unusable item and says so.
func (p *Phone) refuse(ctx context.Context, mb *mailbox.Client, it mailbox.Item, why error) {
	from := "an unknown sender"
	if e, err := mailbox.Parse(it.Envelope); err == nil {
		from = e.From
	}
	p.log.Warn("unusable message in the mailbox; deleted", "from", from, "err", why)
	p.emit(Event{Kind: EventWarning, Code: CodeMessageRefused, From: from,
		Message: fmt.Sprintf("a message from %s waiting in the overlay was refused and deleted: %v", from, why)})
	if err := mb.Remove(ctx, it, mailbox.DefaultLifetime); err != nil {
		p.log.Info("deleting a refused message", "err", err)
	}
}

// takeDelivery shows a complete message (once: a replay is only deleted), deletes its parts
// and sends the sender a receipt.
func (p *Phone) takeDelivery(ctx context.Context, pr *peer.Peer, ep *sipcall.Endpoint, parts []part) {
	m := parts[0].msg
	sender, _, _ := strings.Cut(m.From, "@")
	var payload []byte
	for i := range m.Parts {
		for _, pt := range parts {
			if pt.msg.Part == i && pt.msg.Type == m.Type {
				payload = append(payload, pt.msg.Payload...)
			}
		}
	}
	e := store.MessageEntry{ID: hex.EncodeToString(m.ID[:]), Peer: sender, Direction: store.Incoming,
		Time: m.Created.UTC(), Status: store.MessageReceived, Offline: true}
	err := ValidateUser(sender)
	switch {
	case err != nil:
	case m.Type == mailbox.ContentVoice:
		err = p.receivedVoice(e, payload)
	case !utf8.Valid(payload):
		err = errors.New("the text is not UTF-8")
	default:
		e.Text = string(payload)
		p.received(e)
	}
	if err != nil {
		for _, pt := range parts {
			p.refuse(ctx, pr.Mailbox(), pt.it, err)
		}
		return
	}
	for _, pt := range parts {
		life := mailbox.PartDeletionLifetime
		if pt.msg.Part == 0 {
			life = mailbox.DefaultLifetime // the sender's delivery check looks at it
		}
		if err := pr.Mailbox().Remove(ctx, pt.it, life); err != nil {
			p.log.Warn("deleting a collected message", "from", m.From, "err", err)
		}
	}
	p.spawn(func() { p.sendReceipt(ctx, ep, pr, sender, e.ID) })
}

// sendReceipt tells the sender's phone, if it is online, that id was delivered; an offline
// sender learns it from the deletion (checkDeposits).
func (p *Phone) sendReceipt(ctx context.Context, ep *sipcall.Endpoint, pr *peer.Peer, sender, id string) {
	ctx, cancel := context.WithTimeout(ctx, messageTimeout)
	defer cancel()
	e := store.MessageEntry{ID: newMessageID(), Peer: sender}
	if err := p.sendOnline(ctx, ep, pr, sender, e, contentDelivered, []byte(id)); err != nil {
		p.log.Debug("delivery receipt not sent; the sender sees the deletion", "to", sender, "err", err)
	}
}

// onReceipt takes a delivery receipt from user.
func (p *Phone) onReceipt(user string, body []byte) int {
	id := strings.TrimSpace(string(body))
	if _, changed, err := p.store.SetMessageStatus(store.Outgoing, user, id, store.MessageDelivered); err != nil {
		p.log.Info("receipt for an unknown message", "from", user, "id", id, "err", err)
	} else if changed {
		p.emit(Event{Kind: EventDelivered, ID: id, Peer: user})
	}
	return 200
}

// checkDeposits asks the overlay about this phone's messages waiting in mailboxes; a
// recipient that is online by now is told to look (its mailbox may be too full to list).
func (p *Phone) checkDeposits(ctx context.Context, pr *peer.Peer, ep *sipcall.Endpoint) {
	waiting, err := p.store.WaitingInOverlay()
	if err != nil {
		p.log.Warn("reading the messages waiting in the overlay", "err", err)
		return
	}
	mb := pr.Mailbox()
	for _, e := range waiting {
		st, err := mb.Check(ctx, &mailbox.Deposit{To: pr.AoR(e.Peer), Slots: e.Slots, StorageTime: e.StorageTime})
		if err != nil {
			p.log.Info("checking a message waiting in the overlay", "id", e.ID, "err", err)
			continue
		}
		switch st {
		case mailbox.Waiting:
			nudge := store.MessageEntry{ID: newMessageID(), Peer: e.Peer}
			_ = p.sendOnline(ctx, ep, pr, e.Peer, nudge, contentMailbox, []byte(e.ID))
		case mailbox.Delivered:
			if _, changed, _ := p.store.SetMessageStatus(store.Outgoing, e.Peer, e.ID, store.MessageDelivered); changed {
				p.emit(Event{Kind: EventDelivered, ID: e.ID, Peer: e.Peer})
			}
		case mailbox.Gone:
			p.messageStatus(e.Peer, e.ID, store.MessageFailed)
			p.emit(Event{Kind: EventError, Code: CodeMessageFailed, ID: e.ID, Peer: e.Peer,
				Message: fmt.Sprintf("the message to %s expired in the overlay before %s came online", e.Peer, e.Peer)})
		}
	}
}

// knownUsers are the contacts and the people in the message history: whose mailbox slots
// are listed one by one when the whole mailbox is too large to list at once.
func (p *Phone) knownUsers(pr *peer.Peer) []string {
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, pr.AoR(u))
		}
	}
	if cs, err := p.store.Contacts(); err == nil {
		for _, c := range cs {
			add(c.User)
		}
	}
	if ms, err := p.store.Messages("", 500); err == nil {
		for _, m := range ms {
			add(m.Peer)
		}
	}
	return out
}

func (p *Phone) registered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == Registered
}
