// Package opuscodec encodes and decodes 20 ms mono 48 kHz frames with Opus
// (libopus through hraban/opus), tuned for speech over lossy networks: VoIP
// application, in-band FEC, packet-loss concealment.
package opuscodec

import (
	"errors"
	"fmt"

	"github.com/hraban/opus"

	"github.com/chordphone/chordphone/media/audio"
)

// MaxPacket is the largest Opus packet the encoder produces (RFC 6716 §3.4
// allows 1275 bytes per frame).
const MaxPacket = 1275

// Config tunes the encoder. The zero value is a good speech setting.
type Config struct {
	// Bitrate in bits per second; 0 means 28000 (wideband speech with
	// room for FEC). Valid 6000..128000.
	Bitrate int
	// DisableFEC turns off in-band forward error correction (RFC 6716 §2.1.7),
	// which is on by default.
	DisableFEC bool
	// ExpectedLoss is the packet loss percentage (0..100) the encoder plans
	// FEC for; 0 means 10.
	ExpectedLoss int
	// DTX enables discontinuous transmission: near-silent frames are sent
	// as tiny packets every 400 ms instead of every frame.
	DTX bool
	// Complexity 1..10; 0 means 3 (about 1% of a core for encoding and
	// decoding one call; higher settings gave no measurable gain on speech).
	Complexity int
}

// Encoder turns frames into Opus packets.
type Encoder struct {
	enc *opus.Encoder
	buf [MaxPacket]byte
}

// NewEncoder returns an Opus encoder for 48 kHz mono with the VoIP
// application (RFC 6716, OPUS_APPLICATION_VOIP).
func NewEncoder(cfg Config) (*Encoder, error) {
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 28000
	}
	if cfg.Bitrate < 6000 || cfg.Bitrate > 128000 {
		return nil, fmt.Errorf("opus: bitrate %d out of range 6000..128000", cfg.Bitrate)
	}
	if cfg.ExpectedLoss == 0 {
		cfg.ExpectedLoss = 10
	}
	if cfg.ExpectedLoss < 0 || cfg.ExpectedLoss > 100 {
		return nil, fmt.Errorf("opus: expected loss %d%% out of range", cfg.ExpectedLoss)
	}
	if cfg.Complexity == 0 {
		cfg.Complexity = 3
	}
	enc, err := opus.NewEncoder(audio.SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus: new encoder: %w", err)
	}
	set := []struct {
		name string
		err  error
	}{
		{"bitrate", enc.SetBitrate(cfg.Bitrate)},
		{"fec", enc.SetInBandFEC(!cfg.DisableFEC)},
		{"loss", enc.SetPacketLossPerc(cfg.ExpectedLoss)},
		{"dtx", enc.SetDTX(cfg.DTX)},
		{"complexity", enc.SetComplexity(cfg.Complexity)},
	}
	for _, s := range set {
		if s.err != nil {
			return nil, fmt.Errorf("opus: set %s: %w", s.name, s.err)
		}
	}
	return &Encoder{enc: enc}, nil
}

// Encode compresses one frame (audio.FrameSamples samples). The returned
// packet is valid until the next call. With DTX a silent frame may give a
// packet of 1-2 bytes, which the caller may choose not to send.
func (e *Encoder) Encode(frame []int16) ([]byte, error) {
	if len(frame) != audio.FrameSamples {
		return nil, audio.ErrFrameSize
	}
	n, err := e.enc.Encode(frame, e.buf[:])
	if err != nil {
		return nil, fmt.Errorf("opus: encode: %w", err)
	}
	return e.buf[:n], nil
}

// SetExpectedLoss retunes FEC to the loss the receiver reports (percent).
func (e *Encoder) SetExpectedLoss(percent int) error {
	percent = max(0, min(100, percent))
	if err := e.enc.SetPacketLossPerc(percent); err != nil {
		return fmt.Errorf("opus: set loss: %w", err)
	}
	return nil
}

// SetBitrate changes the target bitrate.
func (e *Encoder) SetBitrate(bps int) error {
	if err := e.enc.SetBitrate(bps); err != nil {
		return fmt.Errorf("opus: set bitrate %d: %w", bps, err)
	}
	return nil
}

// Decoder turns Opus packets back into frames and conceals lost ones.
type Decoder struct {
	dec *opus.Decoder
}

// NewDecoder returns a 48 kHz mono decoder.
func NewDecoder() (*Decoder, error) {
	dec, err := opus.NewDecoder(audio.SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus: new decoder: %w", err)
	}
	return &Decoder{dec: dec}, nil
}

// ErrBadPacket is returned for a packet that is not a 20 ms Opus packet.
var ErrBadPacket = errors.New("opus: bad packet")

// Decode decodes pkt into frame (audio.FrameSamples samples). A packet of
// another duration, or a corrupt one, gives an error wrapping ErrBadPacket
// and frame is concealed instead.
func (d *Decoder) Decode(pkt []byte, frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	if len(pkt) == 0 {
		return d.Conceal(frame)
	}
	buf := frame
	var big []int16
	if dur := packetSamples(pkt); dur != audio.FrameSamples {
		if dur <= 0 || dur > 5760 {
			_ = d.Conceal(frame)
			return fmt.Errorf("%w: undecodable TOC", ErrBadPacket)
		}
		big = make([]int16, dur)
		buf = big
	}
	n, err := d.dec.Decode(pkt, buf)
	if err != nil {
		_ = d.Conceal(frame)
		return fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if big != nil {
		copy(frame, big[:min(n, len(frame))])
		clear(frame[min(n, len(frame)):])
		return fmt.Errorf("%w: %d samples, not 20 ms", ErrBadPacket, n)
	}
	return nil
}

// DecodeFEC recovers the frame before next (the packet that follows a lost
// one) from next's in-band FEC data (RFC 6716 §2.1.7). Without FEC data in
// next, libopus conceals instead.
func (d *Decoder) DecodeFEC(next []byte, frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	if packetSamples(next) <= 0 {
		return d.Conceal(frame)
	}
	if err := d.dec.DecodeFEC(next, frame); err != nil {
		_ = d.Conceal(frame)
		return fmt.Errorf("%w: fec: %v", ErrBadPacket, err)
	}
	return nil
}

// Conceal synthesises a frame for a lost packet (packet-loss concealment),
// fading to silence over consecutive losses.
func (d *Decoder) Conceal(frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	if err := d.dec.DecodePLC(frame); err != nil {
		clear(frame)
		return fmt.Errorf("opus: conceal: %w", err)
	}
	return nil
}

// packetSamples returns the number of 48 kHz samples in pkt from its TOC byte
// and frame count (RFC 6716 §3.1-3.2), or -1 if malformed.
func packetSamples(pkt []byte) int {
	if len(pkt) == 0 {
		return -1
	}
	toc := pkt[0]
	config := toc >> 3
	var per int // samples per frame at 48 kHz
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		per = []int{480, 960, 1920, 2880}[config&3]
	case config < 16: // hybrid: 10, 20 ms
		per = []int{480, 960}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		per = []int{120, 240, 480, 960}[config&3]
	}
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 {
			return -1
		}
		frames = int(pkt[1] & 0x3f)
		if frames == 0 {
			return -1
		}
	}
	return per * frames
}
