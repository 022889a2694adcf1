package phone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/tones"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Settings keys (the GUI's Settings dialog writes them; values are strconv text).
const (
	settingAudioIn       = "audio.input"
	settingAudioOut      = "audio.output"
	settingEchoCancel    = "audio.echo_cancellation" // bool, default true
	settingNoiseSuppress = "audio.noise_suppression" // bool, default true
	settingListenPort    = "network.listen_port"     // int; 0: the default
	settingStorageMB     = "peer.storage_limit_mb"   // int; 0: no limit but the defaults
	settingStoreOthers   = "peer.store_for_others"   // bool, default true; false: a RELOAD client
)

// LocalOverlay is the name of the local network's overlay, joined when none is chosen.
const LocalOverlay = peer.DefaultOverlay

func (p *Phone) boolSetting(key string, def bool) bool {
	if v, ok, _ := p.store.Setting(key); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

func (p *Phone) intSetting(key string) int {
	if v, ok, _ := p.store.Setting(key); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return 0
}

// wantClient reports whether the phone should run as a RELOAD client: --client, or the
// setting "peer.store_for_others" turned off.
func (p *Phone) wantClient() bool {
	p.mu.Lock()
	forced := p.cfg.Client
	p.mu.Unlock()
	return forced || !p.boolSetting(settingStoreOthers, true)
}

// SetStoreForOthers chooses whether this phone is a storing peer (on, the default) or a
// RELOAD client that stores and routes nothing for others (RFC 6940 §4.2): it is kept in
// the profile, and the phone rejoins in the new role when that changes what it runs as.
func (p *Phone) SetStoreForOthers(on bool) error {
	if err := p.store.SetSetting(settingStoreOthers, strconv.FormatBool(on)); err != nil {
		return fmt.Errorf("saving the storing choice: %w", err)
	}
	want := p.wantClient()
	p.mu.Lock()
	running := p.peer != nil && p.runClient != want
	p.mu.Unlock()
	if running {
		p.requestRestart()
	}
	return nil
}

// Store is the profile's database: contacts, call history, settings.
func (p *Phone) Store() *store.Store { return p.store }

// SetUser sets the user name (first start, Settings): it is kept in the profile and the phone
// rejoins to register sip:NAME@OVERLAY.
func (p *Phone) SetUser(name string) error {
	if err := ValidateUser(name); err != nil {
		return err
	}
	if err := p.store.SetSetting(settingUser, name); err != nil {
		return fmt.Errorf("saving the user name: %w", err)
	}
	p.mu.Lock()
	changed := p.cfg.User != name
	p.cfg.User = name
	p.mu.Unlock()
	if changed {
		p.requestRestart()
	}
	return nil
}

// JoinOverlay leaves the current overlay and joins another: by name or configuration URL
// (RFC 6940 §11.2), enrolling with user and password when the overlay needs it (§11.3). Empty
// overlay and configURL mean the local network's overlay. It returns once the phone has
// joined (or ctx ends); a failure leaves the profile as it was.
func (p *Phone) JoinOverlay(ctx context.Context, overlay, configURL, user, password string) error {
	return p.Join(ctx, JoinRequest{Overlay: overlay, Config: configURL, User: user, Password: password})
}

// JoinRequest is what Settings → Overlay (or an invitation link) asks to join.
type JoinRequest struct {
	Overlay, Config string
	User, Password  string
	// CAFingerprint trusts exactly that CA for the overlay's configuration and enrollment
	// servers: from an invitation, or a fingerprint the person confirmed. Empty: the CA
	// remembered for the overlay, else the system's roots.
	CAFingerprint string
}

// Join is JoinOverlay with a pinned CA. Trouble a person can act on is a *join.Error (with
// join.CodeCANotTrusted and the CA's fingerprint when the person has to confirm it first).
func (p *Phone) Join(ctx context.Context, r JoinRequest) error {
	user := r.User
	if user != "" {
		if err := ValidateUser(user); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if user == "" {
		user = p.cfg.User
	}
	p.mu.Unlock()
	t := join.Target{Overlay: r.Overlay, Config: r.Config, CAFingerprint: r.CAFingerprint}
	src := t.Source()
	newOverlay := ""
	if src != "" {
		if user == "" {
			return errors.New("choose a user name first")
		}
		res, err := join.Enroll(ctx, p.cfg.Profile, join.Request{Target: t, User: user, Password: r.Password})
		if err != nil {
			return err // written for people
		}
		newOverlay = res.Config.InstanceName
	}
	settings := map[string]string{settingOverlay: newOverlay, settingConfig: src, settingUser: user}
	if err := p.store.SetSettings(settings); err != nil {
		return fmt.Errorf("saving the overlay choice: %w", err)
	}
	events, unsubscribe := p.Subscribe(64)
	defer unsubscribe()
	p.mu.Lock()
	p.cfg.Overlay, p.cfg.Config, p.cfg.User, p.cfg.Bootstrap = newOverlay, src, user, nil
	p.mu.Unlock()
	p.requestRestart()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-events:
			if !ok {
				return ErrNotJoined
			}
			switch e.Kind {
			case EventJoined:
				return nil
			case EventError:
				return &join.Error{Code: e.Code, Message: e.Message, Overlay: newOverlay}
			}
		}
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Fingerprint is the SHA-256 fingerprint of the user's certificate, for Settings → Identity.
func (p *Phone) Fingerprint() string {
	p.mu.Lock()
	pr := p.peer
	p.mu.Unlock()
	if pr == nil {
		return ""
	}
	return identity.FormatFingerprint(identity.Fingerprint(pr.Identity().Cert()))
}

// AudioDevices lists the sound devices by name.
func (p *Phone) AudioDevices() (inputs, outputs []string, err error) {
	devs, err := audio.Devices()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range devs {
		if d.MaxInputChannels > 0 {
			inputs = append(inputs, d.Name)
		}
		if d.MaxOutputChannels > 0 {
			outputs = append(outputs, d.Name)
		}
	}
	return inputs, outputs, nil
}

// SetAudioDevices chooses the microphone and speaker by name ("" = the system default): the
// current call switches to them and the next calls use them. The choice is saved even when
// the current call cannot switch (the error says why).
func (p *Phone) SetAudioDevices(input, output string) error {
	oldIn, oldOut := p.deviceSetting(settingAudioIn), p.deviceSetting(settingAudioOut)
	if err := p.store.SetSettings(map[string]string{settingAudioIn: input, settingAudioOut: output}); err != nil {
		return err
	}
	return p.switchDevices(oldIn, oldOut, input, output)
}

func (p *Phone) deviceSetting(key string) string {
	v, _, _ := p.store.Setting(key)
	return v
}

// InputLevel is the microphone level of the current call, 0..1 (0 when there is no call).
func (p *Phone) InputLevel() float64 {
	p.mu.Lock()
	c := p.call
	var db float64 = math.Inf(-1)
	if c != nil && c.media != nil {
		db = c.media.InputLevel()
	}
	p.mu.Unlock()
	// -60 dBFS and below show as empty, 0 dBFS as full.
	return math.Max(0, math.Min(1, (db+60)/60))
}

// PlayTestTone plays two seconds of ringback tone on the chosen speaker.
func (p *Phone) PlayTestTone(ctx context.Context) error {
	return p.playPattern(ctx, tones.Ringback, 2*time.Second)
}

// playPattern plays a tone pattern on the speaker for d (or until ctx ends).
func (p *Phone) playPattern(ctx context.Context, pat tones.Pattern, d time.Duration) error {
	out, err := audio.OpenPlayback(audio.DeviceConfig{Name: p.deviceSetting(settingAudioOut)})
	if err != nil {
		return fmt.Errorf("opening the speaker: %w", err)
	}
	defer out.Close()
	src := tones.NewUnpacedSource(pat)
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	frame := make([]int16, audio.FrameSamples)
	for ctx.Err() == nil {
		if err := src.ReadFrame(ctx, frame); err != nil {
			return nil
		}
		if err := out.WriteFrame(frame); err != nil { // the device paces the loop
			return fmt.Errorf("playing: %w", err)
		}
	}
	return nil
}

// Ring plays the ringtone until Ring(false).
func (p *Phone) Ring(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopRing != nil {
		p.stopRing()
		p.stopRing = nil
	}
	if !on {
		return
	}
	ctx, cancel := context.WithCancel(p.runCtx)
	p.stopRing = cancel
	p.spawn(func() {
		if err := p.playPattern(ctx, tones.Ringtone, 2*time.Minute); err != nil {
			p.log.Info("no ringtone", "err", err)
		}
	})
}

// SaveJoined records in a profile's database the overlay that `chordphone enroll` enrolled it
// in, as Join does: the phone's next start joins it. st is the profile's open database.
func SaveJoined(st *store.Store, overlay, configSrc, user string) error {
	return st.SetSettings(map[string]string{settingOverlay: overlay, settingConfig: configSrc, settingUser: user})
}

// Profile is the profile directory the phone runs on.
func (p *Phone) Profile() string { return p.cfg.Profile }
