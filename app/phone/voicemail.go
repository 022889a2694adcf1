package phone

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/app/voicemail"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/overlay/mailbox"
)

// Voice messages (issue 19): up to a minute of Opus, left in the recipient's mailbox in the
// overlay like an offline text (in as many parts as it needs), whether or not the recipient
// is online; an online recipient is told to look at once.

// EventVoicemail: a voice message arrived (from, id, file, duration_ms, time).
const EventVoicemail EventKind = "voicemail"

// contentMailbox is the content type of a MESSAGE that says "look into your mailbox".
const contentMailbox = "application/vnd.chordphone.mailbox"

// voicemailDir is where received voice messages are kept, inside the profile.
const voicemailDir = "voicemail"

// SendVoicemail leaves the voice message in the WAV file path (48 kHz mono, at most
// voicemail.MaxDuration) for user. It returns the message's id once the sound is read;
// `stored`, then `delivered` (or a message_failed error) follow.
func (p *Phone) SendVoicemail(user, path string) (string, error) {
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	samples, err := audio.LoadWAV(path)
	if err != nil {
		return "", err
	}
	payload, err := voicemail.Encode(samples)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	ep, pr, ctx := p.ep, p.peer, p.runCtx
	joined := p.state == Registered
	p.mu.Unlock()
	if ep == nil || pr == nil || !joined {
		return "", fmt.Errorf("cannot leave a voice message for %s: %w", user, ErrNotJoined)
	}
	e := store.MessageEntry{ID: newMessageID(), Peer: user, Direction: store.Outgoing, Time: time.Now().UTC(),
		Status: store.MessageSending, File: path, Text: voiceText(voicemail.Duration(samples))}
	if _, _, err := p.store.AddMessage(e); err != nil {
		p.log.Warn("saving a sent voice message", "err", err)
	}
	p.emit(Event{Kind: EventSent, ID: e.ID, Peer: user, Text: e.Text})
	p.spawn(func() {
		ctx, cancel := context.WithTimeout(ctx, 2*messageTimeout)
		defer cancel()
		if err := p.depositPayload(ctx, pr, user, e, mailbox.ContentVoice, payload); err != nil {
			if p.runCtx.Err() == nil {
				p.messageStatus(user, e.ID, store.MessageFailed)
				p.emit(Event{Kind: EventError, Code: CodeMessageFailed, ID: e.ID, Peer: user,
					Message: fmt.Sprintf("the voice message for %s was not left: %v", user, err)})
			}
			return
		}
		p.emit(Event{Kind: EventStored, ID: e.ID, Peer: user})
		nudge := store.MessageEntry{ID: newMessageID(), Peer: user}
		if err := p.sendOnline(ctx, ep, pr, user, nudge, contentMailbox, []byte(e.ID)); err != nil {
			p.log.Debug("the recipient was not told of the voice message; it will find it when it joins", "err", err)
		}
	})
	return e.ID, nil
}

func voiceText(d time.Duration) string {
	return fmt.Sprintf("Voice message (%d s)", int(d.Round(time.Second)/time.Second))
}

// receivedVoice keeps a voice message from the mailbox as a WAV file in the profile, and
// announces it once.
func (p *Phone) receivedVoice(e store.MessageEntry, payload []byte) error {
	samples, err := voicemail.Decode(payload)
	if err != nil {
		return err
	}
	dir := filepath.Join(p.cfg.Profile, voicemailDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keeping a voice message: %w", err)
	}
	e.File = filepath.Join(dir, e.Time.Format("20060102-150405")+"-"+e.Peer+"-"+e.ID[:8]+".wav")
	e.Text = voiceText(voicemail.Duration(samples))
	e, added, err := p.store.AddMessage(e)
	if err != nil {
		return fmt.Errorf("keeping a voice message: %w", err)
	}
	if !added {
		return nil // shown before: a replay, only deleted
	}
	if err := audio.SaveWAV(e.File, samples); err != nil {
		return fmt.Errorf("keeping a voice message: %w", err)
	}
	ms := voicemail.Duration(samples).Milliseconds()
	p.emit(Event{Kind: EventVoicemail, Time: e.Time, ID: e.ID, From: e.Peer, Peer: e.Peer, Text: e.Text, File: e.File, DurationMs: &ms})
	return nil
}
