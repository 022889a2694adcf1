package phone

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/chordphone/chordphone/media/rtc"
)

// newMedia makes a media session on the phone's audio devices or files.
func (p *Phone) newMedia(c *call) (*rtc.Session, error) {
	src, sink, proc, err := p.openAudio(c)
	if err != nil {
		return nil, err
	}
	cfg := rtc.SessionConfig{Source: src, Sink: sink, Logger: p.log.With("layer", "media"),
		DisconnectedTimeout: mediaSilenceLimit}
	if proc != nil {
		cfg.Processor = proc
	}
	if ap, err := netip.ParseAddrPort(p.cfg.Listen); err == nil && ap.Addr().IsLoopback() {
		cfg.LoopbackOnly = true
	}
	if pr := p.peer; pr != nil { // STUN and the overlay's TURN relays (RFC 6940 §9)
		for _, s := range pr.ICEServers() {
			cfg.ICEServers = append(cfg.ICEServers, rtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	m, err := rtc.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting media: %w", err)
	}
	return m, nil
}

// rtpStats summarises media statistics; the bitrate is averaged since the answer.
func rtpStats(s rtc.Stats, answered time.Time) *RTPStats {
	r := &RTPStats{Sent: s.PacketsSent, Received: s.PacketsReceived, Lost: s.PacketsLost,
		JitterMs: s.JitterMs, RTTMs: s.RTTMs, Codec: s.Codec, Relayed: s.Relayed}
	if secs := time.Since(answered).Seconds(); !answered.IsZero() && secs > 0 {
		r.BitrateKbps = float64(s.BytesSent) * 8 / 1000 / secs
	}
	return r
}
