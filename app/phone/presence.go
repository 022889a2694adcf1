package phone

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/sipcall"
	"github.com/chordphone/chordphone/app/store"
)

// Presence of contacts (issue 19): online / offline / in a call. Two sources, neither of
// them a frequent poll: the registrations in the overlay (one lookup per contact when the
// phone joins and every presenceInterval), and, between phones that have a SIP connection
// open (a call or a message opened it), SUBSCRIBE/NOTIFY (RFC 6665, RFC 3856), which tells
// at once when a contact's call starts and ends or when it quits.

// EventPresence: a contact's presence changed (peer, presence).
const EventPresence EventKind = "presence"

// presenceInterval is how often the contacts' registrations are looked up.
const presenceInterval = 10 * time.Minute

// presenceBook is what the phone knows of its contacts' presence.
type presenceBook struct {
	mu    sync.Mutex
	state map[string]string
	own   chan string // this phone's state, for the watcher to notify (latest wins)
}

// Presence returns the presence of user as last known ("" when unknown).
func (p *Phone) Presence(user string) string {
	p.pres.mu.Lock()
	defer p.pres.mu.Unlock()
	return p.pres.state[user]
}

// setPresence records user's state and says so when it changed.
func (p *Phone) setPresence(user, state string) {
	p.pres.mu.Lock()
	if p.pres.state == nil {
		p.pres.state = map[string]string{}
	}
	changed := p.pres.state[user] != state
	p.pres.state[user] = state
	p.pres.mu.Unlock()
	if changed {
		p.emit(Event{Kind: EventPresence, Peer: user, Presence: state})
	}
}

// ownPresence follows this phone's calls for its subscribers (called by emit).
func (p *Phone) ownPresence(e Event) {
	var state string
	switch e.Kind {
	case EventAnswered:
		state = sipcall.PresenceInCall
	case EventHangup:
		state = sipcall.PresenceOnline
	default:
		return
	}
	ch := p.ownStates()
	for {
		select {
		case ch <- state:
			return
		default:
			select { // replace a state not sent yet
			case <-ch:
			default:
			}
		}
	}
}

func (p *Phone) ownStates() chan string {
	p.pres.mu.Lock()
	defer p.pres.mu.Unlock()
	if p.pres.own == nil {
		p.pres.own = make(chan string, 1)
	}
	return p.pres.own
}

// watchPresence runs presence for one peer until ctx ends: it answers subscriptions of
// contacts, looks up the contacts' registrations now and every presenceInterval, and
// notifies this phone's state.
func (p *Phone) watchPresence(ctx context.Context, pr *peer.Peer, ep *sipcall.Endpoint) {
	ep.OnPresence(func(user, node string) bool {
		if !p.isContact(user) || p.certUser(node) != user {
			return false
		}
		p.spawnCtx(ctx, func() { p.watchContact(ctx, ep, node, user) }) // and watch them back
		return true
	}, func(user, node, state string) {
		if state == sipcall.PresenceUnknown { // the connection went: ask the overlay
			p.spawnCtx(ctx, func() { p.lookupPresence(ctx, pr, user) })
			return
		}
		p.setPresence(user, state)
	})
	own := p.ownStates()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-own:
			ep.SetPresence(ctx, s)
		case <-t.C:
			for _, c := range p.contactUsers() {
				p.lookupPresence(ctx, pr, c)
			}
			t.Reset(presenceInterval)
		}
	}
}

// lookupPresence asks the overlay whether user has a registered device.
func (p *Phone) lookupPresence(ctx context.Context, pr *peer.Peer, user string) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	regs, err := pr.Lookup(ctx, user)
	switch {
	case err == nil && len(withoutSelf(regs, pr.NodeID())) > 0:
		if p.Presence(user) != sipcall.PresenceInCall {
			p.setPresence(user, sipcall.PresenceOnline)
		}
	case errors.Is(err, peer.ErrNotRegistered) || err == nil:
		p.setPresence(user, sipcall.PresenceOffline)
	}
}

// watchContact subscribes to a contact's presence over the connection open to its phone.
func (p *Phone) watchContact(ctx context.Context, ep *sipcall.Endpoint, node, user string) {
	if !p.isContact(user) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, messageTimeout)
	defer cancel()
	if err := ep.WatchPresence(ctx, node, user); err != nil && !errors.Is(err, sipcall.ErrNotConnected) {
		p.log.Debug("watching a contact's presence", "user", user, "err", err)
	}
}

// spawnCtx runs f on a goroutine Run waits for, unless ctx has ended.
func (p *Phone) spawnCtx(ctx context.Context, f func()) {
	if ctx.Err() == nil {
		p.spawn(f)
	}
}

func (p *Phone) certUser(node string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return peer.UserOf(p.certs[node])
}

func (p *Phone) contactUsers() []string {
	cs, err := p.store.Contacts()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.User)
	}
	return out
}

func (p *Phone) isContact(user string) bool {
	_, err := p.store.ContactByUser(user)
	return err == nil
}

// watchAfterMessage watches a contact's presence over the connection a message used.
func (p *Phone) watchAfterMessage(node, user string) {
	p.mu.Lock()
	ep, ctx := p.ep, p.runCtx
	p.mu.Unlock()
	if ep != nil && p.isContact(user) {
		p.spawnCtx(ctx, func() { p.watchContact(ctx, ep, node, user) })
	}
}

// AddContact adds user to the contacts (named after the user) and looks up its presence.
func (p *Phone) AddContact(user string) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	if _, err := p.store.AddContact(store.Contact{Name: user, User: user}); err != nil && !errors.Is(err, store.ErrDuplicate) {
		return err
	}
	p.mu.Lock()
	pr, ctx := p.peer, p.runCtx
	p.mu.Unlock()
	if pr != nil {
		p.spawnCtx(ctx, func() { p.lookupPresence(ctx, pr, user) })
	}
	return nil
}

// presenceGoodbye tells this phone's subscribers that it goes offline (RFC 6665 §4.2.2:
// terminated), waiting at most a second.
func (p *Phone) presenceGoodbye(ep *sipcall.Endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ep.SetPresence(ctx, sipcall.PresenceOffline)
}
