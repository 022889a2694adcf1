package phone

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/storage"
)

// Bounds of the search for a callee's registrations: "not registered" is asked again within
// notRegisteredFor before it is believed, so an unknown user is reported within about 2 s;
// a Fetch still on its way (a slow path, a busy peer, retransmissions) has lookupTimeout.
const (
	notRegisteredFor = 1800 * time.Millisecond
	lookupTimeout    = 8 * time.Second
)

// notRegisteredError says that nobody is registered under a name; it is peer.ErrNotRegistered.
type notRegisteredError struct{ user, overlay string }

func (e *notRegisteredError) Error() string {
	return fmt.Sprintf("%s is not registered in %s", e.user, e.overlay)
}

func (e *notRegisteredError) Unwrap() error { return peer.ErrNotRegistered }

// Lookup returns the Node-IDs of the devices registered for user (RFC 7904 §4.2), this one
// included.
func (p *Phone) Lookup(ctx context.Context, user string) ([]string, error) {
	if err := ValidateUser(user); err != nil {
		return nil, err
	}
	p.mu.Lock()
	pr := p.peer
	joined := p.state != NotJoined
	p.mu.Unlock()
	if pr == nil || !joined {
		return nil, ErrNotJoined
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	regs, err := pr.Lookup(ctx, user)
	if errors.Is(err, peer.ErrNotRegistered) {
		return nil, &notRegisteredError{user: user, overlay: pr.Overlay()}
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", user, err)
	}
	var out []string
	for _, r := range regs {
		out = append(out, r.Target().String())
	}
	return out, nil
}

// lookup finds user's registered devices other than this one. While the ring settles after
// joins a Fetch can reach a peer that does not hold the record yet, so "not registered" is
// asked again a few times within notRegisteredFor before it is believed.
func (c *call) lookup(user string) ([]storage.Registration, error) {
	ctx, cancel := context.WithTimeout(c.ctx, lookupTimeout)
	defer cancel()
	start, backoff := time.Now(), 150*time.Millisecond
	for {
		regs, err := c.p.peer.Lookup(ctx, user)
		if err == nil {
			if regs = withoutSelf(regs, c.p.peer.NodeID()); len(regs) > 0 {
				return regs, nil
			}
			err = peer.ErrNotRegistered
		}
		if !errors.Is(err, peer.ErrNotRegistered) || time.Since(start)+backoff > notRegisteredFor {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
			backoff *= 2
		}
	}
}
