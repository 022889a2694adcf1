package phone

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Answer answers the ringing incoming call.
func (p *Phone) Answer() error { return p.decide(true) }

// Decline declines the ringing incoming call (603 Decline).
func (p *Phone) Decline() error { return p.decide(false) }

func (p *Phone) decide(answer bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.call
	if c == nil || c.info.State != CallIncoming {
		return ErrNotRinging
	}
	select {
	case c.answer <- answer:
		return nil
	default:
		return errors.New("the call is already being answered")
	}
}

// Hangup ends the current call, whatever its state: cancels a call that rings, declines an
// incoming one, says BYE to an answered one.
func (p *Phone) Hangup() error {
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c == nil {
		return ErrNoCall
	}
	if c.info.Direction == Incoming && c.info.State == CallIncoming {
		return p.Decline()
	}
	c.cancel()
	return nil
}

// Hold puts the current call on hold (re-INVITE with sendonly, RFC 3264 §8.4).
func (p *Phone) Hold() error { return p.hold(true) }

// Resume takes the current call off hold.
func (p *Phone) Resume() error { return p.hold(false) }

func (p *Phone) hold(on bool) error {
	p.mu.Lock()
	c := p.call
	if c == nil || (c.info.State != CallActive && c.info.State != CallHeld) {
		p.mu.Unlock()
		return ErrNoCall
	}
	if on == (c.info.State == CallHeld) {
		p.mu.Unlock()
		return nil
	}
	m, d := c.media, c.dialog
	p.mu.Unlock()
	m.SetHold(on)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	offer, err := m.CreateOffer(ctx)
	if err == nil {
		var answer []byte
		if answer, err = d.Reinvite(ctx, []byte(offer)); err == nil {
			err = m.SetAnswer(string(answer))
		}
	}
	if err != nil {
		m.SetHold(!on)
		return fmt.Errorf("re-INVITE: %w", err)
	}
	if on {
		c.setState(CallHeld)
		p.emit(Event{Kind: EventHeld, CallID: c.info.ID})
	} else {
		c.setState(CallActive)
		p.emit(Event{Kind: EventResumed, CallID: c.info.ID})
	}
	return nil
}

// SetMute mutes or unmutes the microphone in the current call.
func (p *Phone) SetMute(mute bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.call
	if c == nil || c.media == nil {
		return ErrNoCall
	}
	c.media.SetMute(mute)
	c.info.Muted = mute
	return nil
}

// SendDTMF sends digits (0-9, *, #, A-D) in the current call (RFC 4733).
func (p *Phone) SendDTMF(digits string) error {
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", r) {
			return fmt.Errorf("invalid DTMF digit %q", r)
		}
	}
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c == nil || c.media == nil {
		return ErrNoCall
	}
	return c.media.SendDTMF(strings.ToUpper(digits))
}
