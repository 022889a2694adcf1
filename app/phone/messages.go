package phone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/storage"
)

// Text messages (issue 19): a page goes as a SIP MESSAGE (RFC 3428) straight to every
// registered device of the recipient, over the AppAttach connection a call or an earlier
// message opened, or a new one; the first 200 OK is the delivery.

// MaxMessageText bounds a text message, in bytes of UTF-8.
const MaxMessageText = 4000

// textPlain is the content type of a text message (RFC 3428 §9).
const textPlain = "text/plain;charset=utf-8"

// messageTimeout bounds the delivery of one message to the devices that are registered.
const messageTimeout = 30 * time.Second

// Errors of SendMessage.
var (
	ErrEmptyMessage   = errors.New("empty message")
	ErrMessageTooLong = fmt.Errorf("message longer than %d bytes", MaxMessageText)
)

// Codes of message events.
const (
	CodeMessageFailed = "message_failed" // a message was neither delivered nor kept for later
)

// newMessageID returns a fresh message identity (128 random bits, hex).
func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SendMessage sends text to user. It returns the message's id at once; the delivery goes
// on in the background and ends in a `delivered` event, or an error event with code
// message_failed (both carry the id).
func (p *Phone) SendMessage(user, text string) (string, error) {
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(text) == "":
		return "", ErrEmptyMessage
	case len(text) > MaxMessageText:
		return "", ErrMessageTooLong
	case !utf8.ValidString(text):
		return "", errors.New("message is not UTF-8 text")
	}
	ep, pr, ctx, ok := p.registeredParts()
	if !ok {
		return "", fmt.Errorf("cannot send to %s: %w", user, ErrNotJoined)
	}
	id := newMessageID()
	e := store.MessageEntry{ID: id, Peer: user, Direction: store.Outgoing, Text: text, Time: time.Now().UTC(), Status: store.MessageSending}
	if _, _, err := p.store.AddMessage(e); err != nil {
		p.log.Warn("saving a sent message", "err", err)
	}
	p.emit(Event{Kind: EventSent, ID: id, Peer: user, Text: text})
	p.spawn(func() { p.deliver(ctx, ep, pr, user, e) })
	return id, nil
}

// deliver sends e to every registered device of user; when none is reachable, it leaves e
// in user's mailbox in the overlay (offline.go). It says how it went.
func (p *Phone) deliver(ctx context.Context, ep *sipcall.Endpoint, pr *peer.Peer, user string, e store.MessageEntry) {
	ctx, cancel := context.WithTimeout(ctx, messageTimeout)
	defer cancel()
	err := p.sendOnline(ctx, ep, pr, user, e, textPlain, []byte(e.Text))
	if err == nil {
		p.messageStatus(user, e.ID, store.MessageDelivered)
		p.emit(Event{Kind: EventDelivered, ID: e.ID, Peer: user})
		return
	}
	var refused *sipcall.StatusError
	if !errors.As(err, &refused) && ctx.Err() == nil { // nobody there to refuse it: leave it
		derr := p.deposit(ctx, pr, user, e)
		if derr == nil {
			p.emit(Event{Kind: EventStored, ID: e.ID, Peer: user})
			return
		}
		err = fmt.Errorf("%w; leaving it in the overlay failed too: %w", err, derr)
	}
	if ctx.Err() != nil && p.runCtx.Err() != nil {
		return // the phone stops; the message stays "sending" in the history
	}
	p.messageStatus(user, e.ID, store.MessageFailed)
	p.emit(Event{Kind: EventError, Code: CodeMessageFailed, ID: e.ID, Peer: user,
		Message: fmt.Sprintf("the message to %s was not delivered: %v", user, err)})
}

func (p *Phone) messageStatus(peer, id, status string) {
	if _, _, err := p.store.SetMessageStatus(store.Outgoing, peer, id, status); err != nil {
		p.log.Warn("saving a message's status", "id", id, "err", err)
	}
}

// sendOnline sends body (of type ctype, with e's id) as a SIP MESSAGE to each registered
// device of user other than this one (RFC 7904 §4.2 lookup, §5.1 AppAttach); nil once one
// of them accepted it.
func (p *Phone) sendOnline(ctx context.Context, ep *sipcall.Endpoint, pr *peer.Peer, user string, e store.MessageEntry, ctype string, body []byte) error {
	regs, err := pr.Lookup(ctx, user)
	if err == nil {
		if regs = withoutSelf(regs, pr.NodeID()); len(regs) == 0 {
			err = peer.ErrNotRegistered
		}
	}
	if err != nil {
		if errors.Is(err, peer.ErrNotRegistered) {
			return &notRegisteredError{user: user, overlay: pr.Overlay()}
		}
		return fmt.Errorf("looking up %s: %w", user, err)
	}
	errs := make(chan error, len(regs))
	var wg sync.WaitGroup
	for _, reg := range regs {
		wg.Add(1)
		go func() { // owner: sendOnline; ends with ctx at the latest
			defer wg.Done()
			errs <- p.sendTo(ctx, ep, pr, user, reg, e.ID, ctype, body)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	return errors.Join(all...)
}

// sendTo sends a page to one device, over a connection it already has or a new AppAttach.
func (p *Phone) sendTo(ctx context.Context, ep *sipcall.Endpoint, pr *peer.Peer, user string, reg storage.Registration, id, ctype string, body []byte) error {
	node := reg.Target().String()
	dial := func(ctx context.Context) (net.Conn, error) {
		conn, err := pr.AppAttach(ctx, reg)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", node[:8], err)
		}
		// RFC 7904 §3.3, §5.1: the device registered as user must prove a certificate of user.
		if got := peer.UserOf(peer.PeerCertificate(conn)); got != user {
			conn.Close()
			return nil, fmt.Errorf("the device registered as %s presents a certificate for %q", user, got)
		}
		return p.withCert(conn, node), nil
	}
	err := ep.SendMessage(ctx, node, dial, user, id, ctype, body)
	if err == nil && ctype == textPlain {
		p.watchAfterMessage(node, user) // presence.go
	}
	return err
}

// onMessage takes a MESSAGE that arrived (RFC 3428 §7): text from the user whose certificate
// the connection proved is kept and shown; anything else is refused.
func (p *Phone) onMessage(m *sipcall.Message) int {
	p.mu.Lock()
	cert := p.certs[m.Peer]
	p.mu.Unlock()
	if got := peer.UserOf(cert); got != m.From {
		p.log.Warn("message from a name its certificate does not carry", "from", m.From, "cert", got)
		return 403
	}
	switch sipcall.MediaType(m.ContentType) {
	case contentDelivered:
		return p.onReceipt(m.From, m.Body)
	case contentMailbox:
		p.pokeMailbox(m.From)
		return 200
	case "text/plain":
	default:
		return 415 // RFC 3428 §7: a type we cannot show
	}
	text := string(m.Body)
	if !utf8.ValidString(text) || len(text) > MaxMessageText || m.ID == "" {
		return 400
	}
	when := m.Date
	if when.IsZero() || when.After(time.Now().Add(time.Hour)) {
		when = time.Now()
	}
	p.received(store.MessageEntry{ID: m.ID, Peer: m.From, Direction: store.Incoming, Text: text,
		Time: when.UTC(), Status: store.MessageReceived})
	p.watchAfterMessage(m.Peer, m.From) // presence.go
	return 200
}

// received keeps an incoming message and announces it, once per id.
func (p *Phone) received(e store.MessageEntry) {
	e, added, err := p.store.AddMessage(e)
	if err != nil {
		p.log.Warn("saving a received message", "err", err)
	} else if !added {
		return // another device of the sender's, or a retransmission: already shown
	}
	p.emit(Event{Kind: EventMessage, Time: e.Time, ID: e.ID, From: e.Peer, Peer: e.Peer, Text: e.Text})
}

// Messages returns the conversation with user (every conversation when user is ""), oldest
// first, at most limit messages (0: all).
func (p *Phone) Messages(user string, limit int) ([]store.MessageEntry, error) {
	return p.store.Messages(user, limit)
}

// withCert remembers the certificate a SIP connection to node proved until it closes, so
// that requests arriving on it are checked against it.
func (p *Phone) withCert(conn net.Conn, node string) net.Conn {
	cert := peer.PeerCertificate(conn)
	p.mu.Lock()
	p.certs[node] = cert
	p.mu.Unlock()
	return &certConn{Conn: conn, forget: func() {
		p.mu.Lock()
		if p.certs[node] == cert {
			delete(p.certs, node)
		}
		p.mu.Unlock()
	}}
}

// registeredParts returns the SIP endpoint, the peer and the run context of a phone whose
// registration is stored; ok is false before that.
func (p *Phone) registeredParts() (ep *sipcall.Endpoint, pr *peer.Peer, ctx context.Context, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep == nil || p.peer == nil || p.state != Registered {
		return nil, nil, nil, false
	}
	return p.ep, p.peer, p.runCtx, true
}
