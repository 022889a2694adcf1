// Package jitter is an adaptive jitter buffer for 20 ms audio packets.
//
// Packets are pushed as they arrive (in any order, with losses and
// duplicates) and frames are pulled at the playout clock, one per 20 ms. The
// buffer grows by one frame (it holds the playout point and conceals) when a
// packet arrives too late or the buffer runs dry, and shrinks when every
// packet of the last second arrived at least a frame early; its
// delay stays within MinDelay..MaxDelay.
// A missing packet is recovered from the next packet's in-band FEC when that
// packet is already here, else concealed (PLC) by the decoder.
//
// The buffer takes arrival times as arguments and never reads the clock, so
// it behaves the same in a simulation as on a network.
package jitter

import (
	"slices"
	"sync"
	"time"
)

// Packet is one received RTP packet of 20 ms of audio.
type Packet struct {
	Seq       uint16
	Timestamp uint32 // RTP timestamp (clock rate Config.ClockRate)
	Payload   []byte
}

// Kind tells what Pop returned.
type Kind int

const (
	// Silence: nothing to play (not started yet, or the sender stopped).
	Silence Kind = iota
	// Normal: Frame.Payload is the packet due now.
	Normal
	// FEC: the packet due now is lost but the next one is here; decode the
	// lost frame from Frame.Payload's in-band FEC.
	FEC
	// Conceal: the packet due now is lost or late; run the decoder's PLC.
	Conceal
)

func (k Kind) String() string {
	return [...]string{"silence", "normal", "fec", "conceal"}[k]
}

// Frame is what to play for one 20 ms slot.
type Frame struct {
	Kind    Kind
	Seq     uint16 // sequence number of the slot
	Payload []byte // valid until the next Push or Pop
}

// Config tunes a Buffer; zero fields take defaults.
type Config struct {
	MinDelay      time.Duration // default 20 ms
	MaxDelay      time.Duration // default 200 ms
	FrameDuration time.Duration // default 20 ms
	ClockRate     int           // RTP clock rate, default 48000
	// SilenceAfter is how many concealed frames in a row are played before
	// the buffer plays silence when the sender went quiet; default 5.
	SilenceAfter int
}

// Stats describes the buffer's work so far.
type Stats struct {
	Received     uint64        // packets pushed (excluding duplicates)
	Played       uint64        // slots played from a packet
	FECRecovered uint64        // slots recovered from in-band FEC
	Concealed    uint64        // slots concealed (PLC) for a missing packet
	Late         uint64        // packets that arrived after their slot was played
	Duplicates   uint64        // packets received twice
	Dropped      uint64        // frames discarded to shrink the delay
	Underruns    uint64        // pops that found the buffer empty
	Stretched    uint64        // frames concealed to grow the delay after a late packet
	Resets       uint64        // sequence jumps that restarted the buffer
	Target       time.Duration // delay the recent jitter needs (95th percentile spread + 1 frame)
	Delay        time.Duration // frames buffered now, as time
	JitterMs     float64       // RFC 3550 §6.4.1 interarrival jitter, ms
}

const ringSize = 128 // 2.56 s of 20 ms packets

type slot struct {
	seq  uint16
	ok   bool
	data []byte
}

// Buffer is an adaptive jitter buffer; safe for concurrent Push and Pop.
type Buffer struct {
	mu  sync.Mutex
	cfg Config

	minFrames, maxFrames int

	ring     [ringSize]slot
	inited   bool
	started  bool
	next     uint16 // slot to play next
	highest  uint16 // newest sequence number received
	target   int    // frames
	underRun int    // consecutive pops that found nothing

	// adaptation: the smallest margin (frames between arrival and playout)
	// seen in the current window of arrivals, and pending growth
	windowPushes int
	minMargin    int
	grow         int
	shrink       int // frames to drop

	// RFC 3550 §6.4.1 jitter and a window of recent transit times for the
	// delay target
	haveTransit bool
	lastTransit float64
	jitter      float64
	transits    []float64
	transitPos  int
	scratch     []float64

	stats Stats
}

// New returns an empty buffer.
func New(cfg Config) *Buffer {
	if cfg.MinDelay <= 0 {
		cfg.MinDelay = 20 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 200 * time.Millisecond
	}
	if cfg.FrameDuration <= 0 {
		cfg.FrameDuration = 20 * time.Millisecond
	}
	if cfg.ClockRate <= 0 {
		cfg.ClockRate = 48000
	}
	if cfg.SilenceAfter <= 0 {
		cfg.SilenceAfter = 5
	}
	b := &Buffer{cfg: cfg}
	b.minFrames = max(1, int(cfg.MinDelay/cfg.FrameDuration))
	b.maxFrames = max(b.minFrames, int(cfg.MaxDelay/cfg.FrameDuration))
	b.target = max(b.minFrames, min(2, b.maxFrames))
	b.minMargin = 1 << 30
	return b
}

func newer(a, b uint16) bool { return int16(a-b) > 0 }

// Push stores a packet that arrived at time arrival.
func (b *Buffer) Push(p Packet, arrival time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.inited {
		b.inited = true
		b.next, b.highest = p.Seq, p.Seq
	}
	d := int(int16(p.Seq - b.next))
	if d < 0 {
		if d < -ringSize {
			b.resetTo(p.Seq)
			d = 0
		} else {
			b.stats.Late++
			if b.started && b.depth() < b.maxFrames {
				b.grow = 1 // play one frame later from now on
			}
			return
		}
	}
	if d >= ringSize {
		b.resetTo(p.Seq)
		d = 0
	}
	s := &b.ring[p.Seq%ringSize]
	if s.ok && s.seq == p.Seq {
		b.stats.Duplicates++
		return
	}
	s.seq, s.ok = p.Seq, true
	s.data = append(s.data[:0], p.Payload...)
	b.stats.Received++
	if b.started {
		// margin: pops left before this packet is due (0: just in time)
		b.minMargin = min(b.minMargin, d)
		b.windowPushes++
		if b.windowPushes >= 50 { // 1 s of packets
			if b.minMargin >= 1 && b.depth() > b.minFrames {
				// every packet waited at least minMargin spare frames:
				// give back half of them
				b.shrink = max(1, b.minMargin/2)
			}
			b.windowPushes, b.minMargin = 0, 1<<30
		}
	}
	if newer(p.Seq, b.highest) {
		b.highest = p.Seq
	}
	b.observe(p.Timestamp, arrival)
}

// resetTo restarts playout at seq (the stream jumped).
func (b *Buffer) resetTo(seq uint16) {
	for i := range b.ring {
		b.ring[i].ok = false
	}
	b.next, b.highest = seq, seq
	b.started = false
	b.transits, b.transitPos, b.haveTransit = b.transits[:0], 0, false
	b.stats.Resets++
}

// observe updates the jitter estimate and the delay target from one arrival.
func (b *Buffer) observe(ts uint32, arrival time.Time) {
	arrMs := float64(arrival.UnixNano()) / 1e6
	tsMs := float64(ts) * 1000 / float64(b.cfg.ClockRate)
	transit := arrMs - tsMs
	if b.haveTransit {
		// RFC 3550 §6.4.1: J += (|D| - J) / 16
		d := transit - b.lastTransit
		if d < 0 {
			d = -d
		}
		if d < 10000 { // ignore stream restarts
			b.jitter += (d - b.jitter) / 16
		}
	}
	b.haveTransit = true
	b.lastTransit = transit
	const window = 100 // 2 s
	if len(b.transits) < window {
		b.transits = append(b.transits, transit)
	} else {
		b.transits[b.transitPos] = transit
		b.transitPos = (b.transitPos + 1) % window
	}
	// Target: the spread between the fastest and the 95th-percentile
	// transit, plus one frame of playout granularity.
	b.scratch = append(b.scratch[:0], b.transits...)
	slices.Sort(b.scratch)
	p95 := b.scratch[len(b.scratch)*95/100]
	spread := p95 - b.scratch[0]
	fd := float64(b.cfg.FrameDuration) / 1e6
	t := int((spread+fd-1)/fd) + 1
	b.target = max(b.minFrames, min(b.maxFrames, t))
}

func (b *Buffer) depth() int {
	d := int(int16(b.highest-b.next)) + 1
	return max(d, 0)
}

// Pop returns what to play in the next slot. Call it once per frame duration.
// Frame.Payload is valid until the next Push or Pop.
func (b *Buffer) Pop() Frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pop()
}

func (b *Buffer) pop() Frame {
	if !b.inited {
		return Frame{Kind: Silence}
	}
	depth := b.depth()
	if !b.started {
		if depth < b.target {
			return Frame{Kind: Silence, Seq: b.next}
		}
		b.started = true
		b.windowPushes, b.minMargin = 0, 1<<30
	}
	if b.grow > 0 {
		// Grow: conceal one frame without advancing.
		b.grow--
		b.stats.Stretched++
		return Frame{Kind: Conceal, Seq: b.next}
	}
	if b.shrink > 0 || depth > b.maxFrames {
		// Shrink: discard the frame due now.
		b.shrink = max(0, b.shrink-1)
		s := &b.ring[b.next%ringSize]
		if s.ok && s.seq == b.next {
			s.ok = false
		}
		b.next++
		b.stats.Dropped++
	}

	s := &b.ring[b.next%ringSize]
	if s.ok && s.seq == b.next {
		s.ok = false
		f := Frame{Kind: Normal, Seq: b.next, Payload: s.data}
		b.next++
		b.underRun = 0
		b.stats.Played++
		return f
	}
	if !newer(b.highest, b.next) && !(b.highest == b.next && s.ok) {
		// Nothing at or after the slot: the network is late or the sender
		// paused. Hold the playout point (this grows the delay) and conceal.
		b.underRun++
		b.stats.Underruns++
		if b.underRun > b.cfg.SilenceAfter {
			return Frame{Kind: Silence, Seq: b.next}
		}
		return Frame{Kind: Conceal, Seq: b.next}
	}
	// The slot's packet is missing but later ones are here: it is lost (or
	// too late). Use the next packet's FEC when we have it, else conceal.
	seq := b.next
	b.next++
	b.underRun = 0
	n := &b.ring[b.next%ringSize]
	if n.ok && n.seq == b.next {
		b.stats.FECRecovered++
		return Frame{Kind: FEC, Seq: seq, Payload: n.data}
	}
	b.stats.Concealed++
	return Frame{Kind: Conceal, Seq: seq}
}

// Stats returns a snapshot of the counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Target = time.Duration(b.target) * b.cfg.FrameDuration
	s.Delay = time.Duration(b.depth()) * b.cfg.FrameDuration
	s.JitterMs = b.jitter
	return s
}

// Decoder is what Play needs from an audio decoder (opuscodec.Decoder).
type Decoder interface {
	Decode(pkt []byte, frame []int16) error
	DecodeFEC(next []byte, frame []int16) error
	Conceal(frame []int16) error
}

// Play pops the next slot and decodes it into frame with dec: the packet,
// its recovery from FEC, concealment, or silence. Decoding happens under the
// buffer's lock, so a concurrent Push cannot touch the payload.
func (b *Buffer) Play(dec Decoder, frame []int16) (Kind, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.pop()
	var err error
	switch f.Kind {
	case Normal:
		err = dec.Decode(f.Payload, frame)
	case FEC:
		err = dec.DecodeFEC(f.Payload, frame)
	case Conceal:
		err = dec.Conceal(frame)
	default:
		clear(frame)
	}
	return f.Kind, err
}
