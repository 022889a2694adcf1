// Package netsim runs the audio pipeline through a simulated network in
// virtual time: seeded packet loss, uniform extra delay (jitter, which also
// reorders packets) and a fixed base delay. Results depend only on the seed,
// never on the machine's speed, so tests can assert on them.
package netsim

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/jitter"
	"github.com/chordphone/chordphone/media/pipeline"
)

// Config describes the simulated path.
type Config struct {
	Loss      float64       // probability that a packet is lost, 0..1
	Jitter    time.Duration // extra delay uniform in [0, Jitter)
	BaseDelay time.Duration // fixed one-way delay
	Seed      uint64
	// PlayoutPhase is when, within a frame period, the receiver pulls a
	// frame relative to the sender finishing one (the clocks of two phones
	// are not aligned). Default: half a frame.
	PlayoutPhase time.Duration
}

type inflight struct {
	at  time.Duration
	pkt jitter.Packet
}

// Link is a one-way simulated path.
type Link struct {
	cfg   Config
	rng   *rand.Rand
	queue []inflight
	Sent  int
	Lost  int
}

// NewLink returns a link with the given behaviour.
func NewLink(cfg Config) *Link {
	return &Link{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
}

// Send puts a packet on the link at virtual time at.
func (l *Link) Send(p jitter.Packet, at time.Duration) {
	l.Sent++
	lossDraw := l.rng.Float64()
	delay := l.cfg.BaseDelay
	if l.cfg.Jitter > 0 {
		delay += time.Duration(l.rng.Int64N(int64(l.cfg.Jitter)))
	}
	if lossDraw < l.cfg.Loss {
		l.Lost++
		return
	}
	p.Payload = append([]byte(nil), p.Payload...)
	l.queue = append(l.queue, inflight{at: at + delay, pkt: p})
}

// Deliver removes and returns, in arrival order, the packets that have
// arrived by virtual time now, with their arrival times.
func (l *Link) Deliver(now time.Duration, fn func(p jitter.Packet, at time.Duration)) {
	slices.SortStableFunc(l.queue, func(a, b inflight) int { return int(a.at - b.at) })
	n := 0
	for n < len(l.queue) && l.queue[n].at <= now {
		fn(l.queue[n].pkt, l.queue[n].at)
		n++
	}
	l.queue = l.queue[n:]
}

// Epoch is the wall-clock time of virtual time zero (arrival times given to
// the jitter buffer).
var Epoch = time.Unix(1_700_000_000, 0)

// Result of a simulated run.
type Result struct {
	Output  []int16 // one output frame per played slot
	Jitter  jitter.Stats
	Sent    int
	Lost    int
	Phase   time.Duration // playout phase used
	Latency func(lagSamples int) time.Duration
}

// Run feeds signal (a multiple of audio.FrameSamples long) frame by frame
// into snd, carries the packets over a Link with cfg, and pulls one frame
// from rcv per frame period (plus tail extra frames) in virtual time.
//
// Frame i is sent when it is complete, at (i+1)*20 ms; slot k is played
// from (k+1)*20 ms + PlayoutPhase. If the output matches the input at a
// cross-correlation lag of L samples (Output[n] ~ signal[n-L]), the
// pipeline's mouth-to-ear latency excluding devices and network is
// Result.Latency(L).
func Run(cfg Config, snd *pipeline.Sender, rcv *pipeline.Receiver, signal []int16, tail int) (Result, error) {
	if cfg.PlayoutPhase == 0 {
		cfg.PlayoutPhase = audio.FrameDuration / 2
	}
	link := NewLink(cfg)
	frames := len(signal) / audio.FrameSamples
	out := make([]int16, 0, (frames+tail)*audio.FrameSamples)
	frame := make([]int16, audio.FrameSamples)
	const ts0 = 12345
	for k := 0; k < frames+tail; k++ {
		sendAt := time.Duration(k+1) * audio.FrameDuration
		if k < frames {
			pkt, err := snd.Encode(signal[k*audio.FrameSamples : (k+1)*audio.FrameSamples])
			if err != nil {
				return Result{}, err
			}
			link.Send(jitter.Packet{Seq: uint16(k), Timestamp: ts0 + uint32(k*audio.FrameSamples), Payload: pkt}, sendAt)
		}
		playAt := sendAt + cfg.PlayoutPhase
		link.Deliver(playAt, func(p jitter.Packet, at time.Duration) { rcv.Push(p, Epoch.Add(at)) })
		rcv.Next(frame)
		out = append(out, frame...)
	}
	phase := cfg.PlayoutPhase
	return Result{
		Output: out, Jitter: rcv.Jitter(), Sent: link.Sent, Lost: link.Lost, Phase: phase,
		Latency: func(lag int) time.Duration {
			return time.Duration(lag)*time.Second/audio.SampleRate + audio.FrameDuration + phase
		},
	}, nil
}
