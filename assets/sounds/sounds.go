// Package sounds holds the phone's built-in sounds as WAV files (mono, 16-bit, 16 kHz),
// rendered by assets/gen. It has no dependencies so the phone can play them without the GUI.
package sounds

import _ "embed"

// Ringtone loops while an incoming call rings: two short bursts of 400+450 Hz, then 2 s of quiet.
//
//go:embed ringtone.wav
var Ringtone []byte

// Ringback loops while the callee's phone rings: 440+480 Hz, 1 s on, 3 s off.
//
//go:embed ringback.wav
var Ringback []byte
