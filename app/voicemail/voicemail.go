// Package voicemail turns a voice message into the payload that waits in the overlay
// (overlay/mailbox, content type ContentVoice) and back: 20 ms Opus packets (RFC 6716) at
// 16 kbit/s, each prefixed with its length (u16, big-endian).
package voicemail

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/opuscodec"
)

// MaxDuration is the longest voice message.
const MaxDuration = 60 * time.Second

// Bitrate of the stored Opus stream: speech stays clear, a minute fits the sender's mailbox
// slots (about 125 kB, 50 parts).
const Bitrate = 16000

// maxFrames bounds what Decode accepts (MaxDuration of 20 ms frames).
const maxFrames = int(MaxDuration / audio.FrameDuration)

// ErrTooLong: a voice message longer than MaxDuration.
var ErrTooLong = fmt.Errorf("a voice message holds at most %v", MaxDuration)

// ErrMalformed: a payload that is not a sequence of length-prefixed Opus packets.
var ErrMalformed = errors.New("voicemail: malformed voice payload")

// Encode compresses samples (48 kHz mono) into a payload; the last frame is padded with
// silence.
func Encode(samples []int16) ([]byte, error) {
	if d := time.Duration(len(samples)) * time.Second / audio.SampleRate; d > MaxDuration {
		return nil, fmt.Errorf("%w (this one is %v)", ErrTooLong, d.Round(100*time.Millisecond))
	}
	enc, err := opuscodec.NewEncoder(opuscodec.Config{Bitrate: Bitrate, DisableFEC: true, ExpectedLoss: 1, Complexity: 5})
	if err != nil {
		return nil, err
	}
	var out []byte
	frame := make([]int16, audio.FrameSamples)
	for off := 0; off < len(samples); off += audio.FrameSamples {
		clear(frame)
		copy(frame, samples[off:])
		pkt, err := enc.Encode(frame)
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(pkt)))
		out = append(out, pkt...)
	}
	return out, nil
}

// Decode turns a payload back into samples. A packet that does not decode is concealed;
// a payload that is not length-prefixed packets, or longer than MaxDuration, is an error.
func Decode(payload []byte) ([]int16, error) {
	dec, err := opuscodec.NewDecoder()
	if err != nil {
		return nil, err
	}
	var out []int16
	frame := make([]int16, audio.FrameSamples)
	for n := 0; len(payload) > 0; n++ {
		if len(payload) < 2 || n == maxFrames {
			return nil, fmt.Errorf("%w: %d bytes left after %d frames", ErrMalformed, len(payload), n)
		}
		l := int(binary.BigEndian.Uint16(payload))
		if l > opuscodec.MaxPacket || 2+l > len(payload) {
			return nil, fmt.Errorf("%w: packet of %d bytes", ErrMalformed, l)
		}
		_ = dec.Decode(payload[2:2+l], frame) // a bad packet is concealed
		out = append(out, frame...)
		payload = payload[2+l:]
	}
	return out, nil
}

// Duration is how long samples play.
func Duration(samples []int16) time.Duration {
	return time.Duration(len(samples)) * time.Second / audio.SampleRate
}
