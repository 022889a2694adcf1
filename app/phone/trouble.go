package phone

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Trouble the phone meets at start and works around by itself (README "When something goes
// wrong"): a damaged profile database or pins file is set aside (renamed, never deleted) and
// replaced; a taken port is replaced by another; an unreachable configuration is retried; an
// unreadable identity waits for the person's choice (NewIdentity). Each is said in a
// `warning` or `error` event with its code, and the phone goes on running.

// PinsFile is the pinned keys' file in the profile.
const PinsFile = "pins.json"

// openProfile opens the profile's database and pins, setting aside what is damaged. The
// events say what was done; they are emitted when Run starts (once someone listens).
func openProfile(profile string, log *slog.Logger) (*store.Store, *identity.PinStore, []Event, error) {
	var notices []Event
	st, rec, err := store.OpenRecovering(profile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening the profile %s: %w", profile, err)
	}
	if rec != nil {
		log.Warn("the profile database was damaged: moved aside, a fresh one made", "err", rec.Damage,
			"moved_to", rec.MovedTo, "kept", rec.Kept, "lost", rec.Lost)
		notices = append(notices, Event{Kind: EventWarning, Code: CodeProfileDBDamaged, Message: fmt.Sprintf(
			"The profile database was damaged (%v). It was moved aside as %s and a fresh one made; "+
				"%d records (contacts, calls, settings) could be read and were kept, %d could not. "+
				"Check your contacts and settings.", rec.Damage, rec.MovedTo, rec.Kept, rec.Lost)})
	}
	path := filepath.Join(profile, PinsFile)
	pins, err := identity.OpenPinStore(path)
	if err != nil {
		moved, merr := store.SetAside(path, "damaged", time.Now())
		if merr != nil {
			st.Close()
			return nil, nil, nil, fmt.Errorf("the pinned keys %s cannot be read (%v) nor set aside: %w", path, err, merr)
		}
		log.Warn("the pinned keys were damaged: set aside", "err", err, "moved_to", moved)
		notices = append(notices, Event{Kind: EventWarning, Code: CodePinsDamaged, Message: fmt.Sprintf(
			"The pinned keys could not be read (%v). The file was set aside as %s; each contact's key "+
				"is pinned again at the next call, so a changed key is not noticed this once.", err, moved)})
		if pins, err = identity.OpenPinStore(path); err != nil {
			st.Close()
			return nil, nil, nil, fmt.Errorf("opening the pinned keys: %w", err)
		}
	}
	return st, pins, notices, nil
}

// emitNotices says what openProfile did; Run calls it once its subscribers listen.
func (p *Phone) emitNotices() {
	p.mu.Lock()
	notices := p.notices
	p.notices = nil
	p.mu.Unlock()
	for _, e := range notices {
		p.emit(e)
	}
}

// listenMoved says that the wanted listen port was taken and which one is used instead.
func (p *Phone) listenMoved(pr *peer.Peer) {
	m := pr.ListenMoved()
	if m == nil {
		return
	}
	_, port, _ := net.SplitHostPort(m.Wanted)
	p.emit(Event{Kind: EventWarning, Code: CodeListenPortTaken, Message: fmt.Sprintf(
		"Port %s is taken (%v); the phone listens on port %d instead and works as usual. "+
			"To use a fixed port, free it or choose another.", port, rootCause(m.Err), m.Addr.Port())})
}

// rootCause is the innermost error of a chain of single wraps (e.g. "address already in use").
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// fetchConfig reads the overlay configuration document, retrying while it cannot be read:
// the phone stays up (not in the overlay) and says so once, with the code of the trouble
// (join's codes, else config_unreachable). It returns only the document, or ctx's error.
func (p *Phone) fetchConfig(ctx context.Context, t join.Target) (*config.Config, error) {
	for attempt := 0; ; attempt++ {
		doc, _, err := join.Fetch(ctx, p.cfg.Profile, t)
		if err == nil {
			if attempt > 0 {
				p.log.Info("the overlay configuration could be read", "config", t.Config, "attempt", attempt+1)
			}
			return doc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if doc := p.cachedConfig(t, err); doc != nil {
			return doc, nil
		}
		wait := time.Duration(min(5<<min(attempt, 4), 60)) * time.Second // 5 s, 10 s, ... 60 s
		p.log.Warn("cannot read the overlay configuration; retrying", "config", t.Config, "err", err, "retry_in", wait)
		if attempt == 0 {
			code := join.CodeOf(err)
			if code == "" {
				code = CodeConfigUnreachable
			}
			p.emit(Event{Kind: EventError, Code: code, Message: fmt.Sprintf(
				"%s The phone keeps trying (every minute at most) and joins once it can.", sentence(err))}) // names no front end (issue 23)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// sentence is err's text as a sentence: capital first letter, full stop.
func sentence(err error) string {
	s := err.Error()
	if s == "" {
		return ""
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// identityTrouble reports an unreadable identity and waits for the person's choice
// (NewIdentity restarts the peer) or the end of ctx. The file is left as it is.
func (p *Phone) identityTrouble(ctx context.Context, err error) {
	p.mu.Lock()
	p.badIdentity = err
	p.mu.Unlock()
	p.log.Error("the identity cannot be read; waiting for the choice of a new one (new-identity)", "err", err)
	path, why := filepath.Join(p.cfg.Profile, identity.FileName), "it is damaged or not an identity file"
	if errors.Is(err, fs.ErrPermission) {
		why = "this user may not read it"
	}
	p.emit(Event{Kind: EventError, Code: CodeIdentityUnreadable, Message: fmt.Sprintf(
		"Your identity %s cannot be read: %s. It was not changed. Restore it from a backup and start "+
			"again, or make a new identity (headless: the new-identity command or --new-identity; the "+
			"old file is kept): people who talked with you before are then told that your key changed.", path, why)})
	<-ctx.Done()
}

// ErrIdentityReadable: NewIdentity is only for an identity that cannot be read.
var ErrIdentityReadable = errors.New("the identity can be read; it is kept")

// NewIdentity sets the unreadable identity file aside (renamed, not deleted) and starts the
// peer again with a new identity: the person's choice after an identity_unreadable error
// (GUI button, headless `new-identity`, --new-identity). Contacts who pinned the old key are
// told that the key changed at the next call, as for any changed key.
func (p *Phone) NewIdentity() error {
	p.mu.Lock()
	bad := p.badIdentity
	p.mu.Unlock()
	if bad == nil {
		return ErrIdentityReadable
	}
	if err := p.setIdentityAside(); err != nil {
		return err
	}
	p.mu.Lock()
	p.badIdentity = nil
	p.mu.Unlock()
	p.requestRestart()
	return nil
}

func (p *Phone) setIdentityAside() error {
	path := filepath.Join(p.cfg.Profile, identity.FileName)
	moved, err := store.SetAside(path, "unreadable", time.Now())
	if err != nil {
		return fmt.Errorf("setting the identity %s aside: %w", path, err)
	}
	p.log.Warn("the unreadable identity was set aside; a new one is made", "moved_to", moved)
	return nil
}
