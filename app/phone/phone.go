// Package phone is Chordphone's one API for the GUI and headless mode: it composes the overlay
// peer and the media engine, keeps the call state machine, and reports what happens as Events.
package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/version"
)

// Config selects what the phone does; it mirrors the command line (app/cli).
type Config struct {
	Profile    string
	User       string
	Overlay    string
	Config     string
	Bootstrap  []string
	Listen     string
	AudioIn    string
	AudioOut   string
	AutoAnswer bool
	KeyLog     string
	Logger     *slog.Logger
}

// Errors a caller can test for.
var (
	ErrNotJoined  = errors.New("not joined to an overlay")
	ErrNoCall     = errors.New("no call")
	ErrBusy       = errors.New("already in a call")
	ErrBadUser    = errors.New("invalid user name")
	ErrNotRinging = errors.New("no incoming call to answer")
)

// Phone is a running Chordphone.
type Phone struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	state  PeerState
	nodeID string
	calls  []*call
	subs   map[chan Event]struct{}
	closed bool
}

type call struct {
	info CallInfo
}

// New makes a phone from cfg. It does not touch the network until Run.
func New(cfg Config) (*Phone, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.User != "" {
		if err := ValidateUser(cfg.User); err != nil {
			return nil, err
		}
	}
	return &Phone{cfg: cfg, log: cfg.Logger, state: NotJoined, subs: map[chan Event]struct{}{}}, nil
}

// ValidateUser checks a user name: the user part of sip:NAME@OVERLAY.
func ValidateUser(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadUser)
	}
	if len(name) > 64 {
		return fmt.Errorf("%w: %q is longer than 64 characters", ErrBadUser, name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.!~*'+", r)
		if !ok {
			return fmt.Errorf("%w: %q may hold only letters, digits and -_.!~*'+", ErrBadUser, name)
		}
	}
	return nil
}

// Subscribe returns a channel of events and a function that ends the subscription. A slow
// subscriber loses events rather than stalling the phone; buf sets how many may queue.
func (p *Phone) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	p.mu.Lock()
	if p.closed {
		close(ch)
		p.mu.Unlock()
		return ch, func() {}
	}
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			p.mu.Lock()
			if _, ok := p.subs[ch]; ok {
				delete(p.subs, ch)
				close(ch)
			}
			p.mu.Unlock()
		})
	}
}

func (p *Phone) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.subs {
		select {
		case ch <- e:
		default:
			p.log.Warn("event subscriber too slow; event dropped", "event", e.Kind)
		}
	}
}

// Run runs the phone until ctx ends: joins the overlay, registers the user and serves calls.
func (p *Phone) Run(ctx context.Context) error {
	<-ctx.Done()
	p.mu.Lock()
	p.closed = true
	for ch := range p.subs {
		delete(p.subs, ch)
		close(ch)
	}
	p.mu.Unlock()
	return nil
}

// Status returns a snapshot of the phone.
func (p *Phone) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Version:      version.Version,
		User:         p.cfg.User,
		Overlay:      p.cfg.Overlay,
		State:        p.state,
		NodeID:       p.nodeID,
		Predecessors: []string{},
		Successors:   []string{},
		Fingers:      []string{},
		Calls:        []CallInfo{},
	}
	if p.cfg.User != "" && p.cfg.Overlay != "" {
		s.AoR = "sip:" + p.cfg.User + "@" + p.cfg.Overlay
	}
	for _, c := range p.calls {
		s.Calls = append(s.Calls, c.info)
	}
	return s
}

// Call calls user by name.
func (p *Phone) Call(ctx context.Context, user string) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == NotJoined {
		return fmt.Errorf("cannot call %s: %w", user, ErrNotJoined)
	}
	return fmt.Errorf("cannot call %s: %w", user, ErrNotJoined)
}

func (p *Phone) current() (*call, error) {
	for _, c := range p.calls {
		if c.info.State != CallEnded {
			return c, nil
		}
	}
	return nil, ErrNoCall
}

// Answer answers the ringing incoming call.
func (p *Phone) Answer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.current()
	if err != nil || c.info.State != CallIncoming {
		return ErrNotRinging
	}
	return ErrNotRinging
}

// Decline declines the ringing incoming call (603 Decline).
func (p *Phone) Decline() error { return p.Answer() }

// Hangup ends the current call, whatever its state.
func (p *Phone) Hangup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.current()
	return err
}

// Hold puts the current call on hold.
func (p *Phone) Hold() error { return p.Hangup() }

// Resume takes the current call off hold.
func (p *Phone) Resume() error { return p.Hangup() }

// SetMute mutes or unmutes the microphone in the current call.
func (p *Phone) SetMute(bool) error { return p.Hangup() }

// SendDTMF sends digits (0-9, *, #, A-D) in the current call (RFC 4733).
func (p *Phone) SendDTMF(digits string) error {
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", r) {
			return fmt.Errorf("invalid DTMF digit %q", r)
		}
	}
	return p.Hangup()
}
