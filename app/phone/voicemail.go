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
	return p.sendVoice(user, samples, path)
}

// SendVoicemailSamples leaves samples (48 kHz mono, from RecordVoicemail) for user; the
// sound is kept in the profile's voicemail/ for the history.
func (p *Phone) SendVoicemailSamples(user string, samples []int16) (string, error) {
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	dir := filepath.Join(p.cfg.Profile, voicemailDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keeping the voice message: %w", err)
	}
	path := filepath.Join(dir, time.Now().Format("20060102-150405")+"-to-"+user+".wav")
	if err := audio.SaveWAV(path, samples); err != nil {
		return "", fmt.Errorf("keeping the voice message: %w", err)
	}
	return p.sendVoice(user, samples, path)
}

// sendVoice encodes samples and leaves them for user in the background.
func (p *Phone) sendVoice(user string, samples []int16, path string) (string, error) {
	payload, err := voicemail.Encode(samples)
	if err != nil {
		return "", err
	}
	ep, pr, ctx, ok := p.registeredParts()
	if !ok {
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

// RecordVoicemail records a voice message from the microphone (the one chosen in Settings)
// until ctx ends or voicemail.MaxDuration has passed.
func (p *Phone) RecordVoicemail(ctx context.Context) ([]int16, error) {
	mic, err := audio.OpenCapture(audio.DeviceConfig{Name: p.deviceSetting(settingAudioIn)})
	if err != nil {
		return nil, fmt.Errorf("opening the microphone: %w", err)
	}
	defer mic.Close()
	ctx, cancel := context.WithTimeout(ctx, voicemail.MaxDuration)
	defer cancel()
	var out []int16
	frame := make([]int16, audio.FrameSamples)
	for {
		if err := mic.ReadFrame(ctx, frame); err != nil {
			if ctx.Err() != nil {
				return out, nil // stopped, or a minute is full
			}
			return out, fmt.Errorf("recording: %w", err)
		}
		out = append(out, frame...)
	}
}

// PlayVoicemail plays a voice message's WAV file on the speaker until it ends or ctx ends.
func (p *Phone) PlayVoicemail(ctx context.Context, path string) error {
	samples, err := audio.LoadWAV(path)
	if err != nil {
		return err
	}
	out, err := audio.OpenPlayback(audio.DeviceConfig{Name: p.deviceSetting(settingAudioOut)})
	if err != nil {
		return fmt.Errorf("opening the speaker: %w", err)
	}
	defer out.Close()
	for off := 0; off < len(samples) && ctx.Err() == nil; off += audio.FrameSamples {
		frame := make([]int16, audio.FrameSamples)
		copy(frame, samples[off:])
		if err := out.WriteFrame(frame); err != nil { // the device paces the loop
			return fmt.Errorf("playing: %w", err)
		}
	}
	return nil
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
