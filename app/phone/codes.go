package phone

import (
	"errors"

	"github.com/chordphone/chordphone/app/peer"
)

// Codes of `error` and `warning` events: stable, machine-readable, snake_case (README
// "Headless interface"). The message beside a code is for a person and may change.
const (
	// Commands (headless).
	CodeUnknownCommand = "unknown_command" // no such command
	CodeBadArguments   = "bad_arguments"   // wrong number of arguments
	CodeNotJoined      = "not_joined"      // the phone has not joined an overlay yet
	CodeNoCall         = "no_call"         // no call to act on
	CodeBusy           = "busy"            // already in a call
	CodeBadUser        = "bad_user"        // not a valid user name
	CodeNotRinging     = "not_ringing"     // no incoming call to answer or decline
	CodeCommandFailed  = "command_failed"  // any other failure of a command
	// new-identity when the identity can be read: nothing is changed.
	CodeIdentityReadable = "identity_readable"

	// Calls.
	CodeNotRegistered    = "not_registered"     // nobody is registered under the name
	CodeLookupFailed     = "lookup_failed"      // the overlay could not be searched for the name
	CodeUnreachable      = "unreachable"        // no registered device could be reached
	CodeMediaFailed      = "media_failed"       // the audio of a call could not be set up
	CodeMediaUnusable    = "media_unusable"     // the other phone's media description is unusable
	CodePinnedKeyChanged = "pinned_key_changed" // a user's key differs from the one first seen
	CodeCallReconnecting = "call_reconnecting"  // a call's connection died (an address changed?): reconnecting

	// Sound devices (warnings: the call goes on).
	CodeNoCaptureDevice        = "no_capture_device"        // no microphone: the call sends silence
	CodeNoPlaybackDevice       = "no_playback_device"       // no speaker: the call's sound is dropped
	CodeCaptureDeviceFallback  = "capture_device_fallback"  // the chosen microphone is missing: the default is used
	CodePlaybackDeviceFallback = "playback_device_fallback" // the chosen speaker is missing: the default is used

	// The overlay.
	CodeJoinRetrying   = "join_retrying"   // cannot join yet; retrying
	CodeRegisterFailed = "register_failed" // joined, but storing the registration failed
	CodePeerFailed     = "peer_failed"     // the overlay peer could not start
)

// ErrorCode is the event code for err (a command's or a call's), fallback when none fits.
func ErrorCode(err error, fallback string) string {
	switch {
	case errors.Is(err, ErrNotJoined):
		return CodeNotJoined
	case errors.Is(err, ErrNoCall):
		return CodeNoCall
	case errors.Is(err, ErrBusy):
		return CodeBusy
	case errors.Is(err, ErrBadUser):
		return CodeBadUser
	case errors.Is(err, ErrNotRinging):
		return CodeNotRinging
	case errors.Is(err, peer.ErrNotRegistered):
		return CodeNotRegistered
	case errors.Is(err, ErrIdentityReadable):
		return CodeIdentityReadable
	}
	return fallback
}

// Codes of trouble the phone works around by itself or that needs the person's choice
// (README "When something goes wrong").
const (
	CodeListenPortTaken    = "listen_port_taken"   // warning: another port is used
	CodeProfileDBDamaged   = "profile_db_damaged"  // warning: chordphone.db moved aside, a fresh one made
	CodePinsDamaged        = "pins_damaged"        // warning: pins.json set aside; keys are pinned anew
	CodeIdentityUnreadable = "identity_unreadable" // error: identity.pem unreadable; waits for new-identity
	CodeConfigUnreachable  = "config_unreachable"  // error: configuration document not read; retrying
	CodeConfigCached       = "config_cached"       // warning: the cached configuration document is used
)
