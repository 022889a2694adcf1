package ui

import (
	"context"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
)

// Phone is what the views need from app/phone; *phone.Phone satisfies it.
type Phone interface {
	Subscribe(buf int) (<-chan phone.Event, func())
	Status() phone.Status
	Call(ctx context.Context, user string) error
	Answer() error
	Decline() error
	Hangup() error
	Hold() error
	Resume() error
	SetMute(on bool) error
	SendDTMF(digits string) error
}

// The interfaces below are capabilities the GUI uses when the phone has them; each is a
// method set proposed for *phone.Phone. Without one, the view says what is missing instead.

// StoreOwner gives the profile's database (contacts, history, settings) that the phone opened
// and records call history into.
type StoreOwner interface {
	Store() *store.Store
}

// UserSetter sets the user name on first start (and from Settings → Overlay): the phone
// remembers it in the profile and registers sip:NAME@OVERLAY.
type UserSetter interface {
	SetUser(name string) error
}

// OverlayJoiner leaves the current overlay and joins another: by overlay name, or by a
// configuration document URL (RFC 6940 §11.1) with enrollment user name and password. An
// empty overlay and configURL means the local-network overlay. It returns once joined.
type OverlayJoiner interface {
	JoinOverlay(ctx context.Context, overlay, configURL, user, password string) error
}

// TrustingJoiner joins like OverlayJoiner, trusting exactly the CA req.CAFingerprint names
// (an invitation's, or one the person confirmed). Trouble a person can act on is a
// *join.Error; join.CodeCANotTrusted carries the fingerprint for the person to confirm.
type TrustingJoiner interface {
	Join(ctx context.Context, req phone.JoinRequest) error
}

// StoreForOthersSetter chooses between a storing peer (on) and a RELOAD client that stores
// nothing for others (Settings → Peer); the phone rejoins in the new role.
type StoreForOthersSetter interface {
	SetStoreForOthers(on bool) error
}

// AudioDeviceLister lists sound devices and selects the ones the phone uses.
type AudioDeviceLister interface {
	AudioDevices() (inputs, outputs []string, err error)
	SetAudioDevices(input, output string) error
}

// LevelMeter reports the microphone's level, 0..1, while a call or a test tone runs.
type LevelMeter interface {
	InputLevel() float64
}

// TonePlayer plays a short test tone on the output device.
type TonePlayer interface {
	PlayTestTone(ctx context.Context) error
}

// Fingerprinter gives the user's certificate fingerprint (Settings → Identity).
type Fingerprinter interface {
	Fingerprint() string
}

// Ringer plays the ringtone (assets/sounds.Ringtone) while on; the GUI turns it on for an
// incoming call and off when answered, declined or cancelled.
type Ringer interface {
	Ring(on bool)
}

// IdentityMaker sets an unreadable identity aside and makes a new one: the person's choice
// after an identity_unreadable error (never done silently).
type IdentityMaker interface {
	NewIdentity() error
}
