package sipadapter

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/zaf/g711"

	"github.com/chordphone/chordphone/media/audio"
)

// G.711 on the user agent's side (RFC 3551 §4.5.14): 8 kHz, 20 ms = 160 samples a packet.
const (
	ptPCMU    = 0
	ptPCMA    = 8
	ptEvent   = 101 // telephone-event (RFC 4733) in our offers
	uaRate    = 8000
	uaSamples = uaRate / 50
	ratio     = audio.SampleRate / uaRate // 6
	queueMax  = 6                         // frames waiting for the phone: 120 ms, then the oldest go
)

// ErrNoCommonCodec: the user agent offers neither PCMU nor PCMA (answer 488).
var ErrNoCommonCodec = errors.New("no common codec (the adapter speaks PCMU and PCMA)")

// leg is the user agent's side of a bridged call: plain RTP (RFC 3550) with G.711 on one
// UDP socket, decoded to and encoded from the phone's 48 kHz frames. It is the line phone's
// audio.Source (what the UA says) and audio.Sink (what the UA hears).
type leg struct {
	conn   net.PacketConn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	remote *net.UDPAddr
	pt     uint8
	evPT   uint8 // telephone-event's payload type, as the UA's SDP has it (RFC 4733 §7.1.1)
	srtp   *sdes // SDES-SRTP keys when the UA offered RTP/SAVP, else nil (plain RTP)
	queue  [][]int16
	ready  chan struct{} // a frame was queued
	up     fir           // 8 -> 48 kHz
	down   fir           // 48 -> 8 kHz
	pacer  *audio.Pacer
	seq    uint16
	ts     uint32
	ssrc   uint32
	onDTMF func(rune)

	dtmfWG   sync.WaitGroup
	received atomic.Uint64
	sent     atomic.Uint64
}

// newLeg opens the RTP socket on host (any port).
func newLeg(host string, log *slog.Logger) (*leg, error) {
	conn, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("opening an RTP socket: %w", err)
	}
	var b [10]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	l := &leg{conn: conn, log: log, ctx: ctx, cancel: cancel, done: make(chan struct{}), pt: ptPCMU, evPT: ptEvent,
		ready: make(chan struct{}, 1), up: newFIR(ratio), down: newFIR(1),
		seq: binary.BigEndian.Uint16(b[0:]), ts: binary.BigEndian.Uint32(b[2:]), ssrc: binary.BigEndian.Uint32(b[6:])}
	go l.readLoop() // owner: l; ends when Close closes the socket
	return l, nil
}

func (l *leg) port() int { return l.conn.LocalAddr().(*net.UDPAddr).Port }

// offer is our SDP offer or answer (RFC 3264): PCMU, PCMA and telephone-event on the leg's
// socket; with pt set only that codec is listed (an answer).
func (l *leg) sdp(ip string, answerPT int) []byte {
	ev := l.eventPT()
	pts := fmt.Sprintf("0 8 %d", ev)
	maps := "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
	if answerPT >= 0 {
		pts = fmt.Sprintf("%d %d", answerPT, ev)
		maps = map[int]string{ptPCMU: "a=rtpmap:0 PCMU/8000\r\n", ptPCMA: "a=rtpmap:8 PCMA/8000\r\n"}[answerPT]
	}
	proto, crypto := "RTP/AVP", ""
	l.mu.Lock()
	if l.srtp != nil {
		proto, crypto = "RTP/SAVP", "a=crypto:"+l.srtp.line+"\r\n"
	}
	l.mu.Unlock()
	return []byte("v=0\r\no=chordphone 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(l.port()) + " " + proto + " " + pts + "\r\n" + maps + crypto +
		fmt.Sprintf("a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", ev, ev) + "a=ptime:20\r\na=sendrecv\r\n")
}

// setRemote takes the UA's SDP (offer or answer): its address and the first G.711 codec.
func (l *leg) setRemote(body []byte) error {
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil {
		return fmt.Errorf("the SDP cannot be read: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		c := d.ConnectionInformation
		if m.ConnectionInformation != nil {
			c = m.ConnectionInformation
		}
		if c == nil || c.Address == nil {
			return errors.New("the SDP has no connection address")
		}
		ip := net.ParseIP(c.Address.Address)
		if ip == nil {
			return fmt.Errorf("the SDP's address %q is not an IP address", c.Address.Address)
		}
		for _, a := range m.Attributes {
			if pt, name, ok := strings.Cut(a.Value, " "); a.Key == "rtpmap" && ok && strings.HasPrefix(strings.ToLower(name), "telephone-event/8000") {
				if n, err := strconv.Atoi(pt); err == nil && n >= 96 && n <= 127 {
					l.mu.Lock()
					l.evPT = uint8(n)
					l.mu.Unlock()
				}
			}
		}
		var keys *sdes
		if isSAVP(m) {
			var err error
			if keys, err = newSDES(m); err != nil {
				return err
			}
		}
		for _, f := range m.MediaName.Formats {
			if f == "0" || f == "8" {
				pt, _ := strconv.Atoi(f)
				l.mu.Lock()
				l.remote, l.pt = &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value}, uint8(pt)
				if keys != nil || l.srtp == nil { // a re-INVITE without SAVP after SAVP keeps the keys
					l.srtp = keys
				}
				l.mu.Unlock()
				return nil
			}
		}
		return ErrNoCommonCodec
	}
	return errors.New("the SDP has no audio stream")
}

func (l *leg) eventPT() uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evPT
}

func (l *leg) codec() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.pt)
}

// readLoop takes the UA's RTP: G.711 becomes 48 kHz frames for the phone; RFC 4733 events
// become digits.
func (l *leg) readLoop() {
	defer close(l.done)
	buf := make([]byte, 1500)
	st := rxState{ended: true}
	for {
		n, from, err := l.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		l.receive(buf[:n], from, &st)
	}
}

// rxState tells RFC 4733 events apart across packets.
type rxState struct {
	lastEvent uint32
	ended     bool
}

// receive handles one datagram from the UA: (S)RTP with G.711 or a telephone-event;
// anything else is dropped.
func (l *leg) receive(b []byte, from net.Addr, st *rxState) {
	l.mu.Lock()
	pt, keys, onDTMF := l.pt, l.srtp, l.onDTMF
	if l.remote == nil {
		l.remote, _ = from.(*net.UDPAddr) // no SDP address yet: answer where it comes from
	}
	l.mu.Unlock()
	if keys != nil {
		var err error
		if b, err = keys.in.DecryptRTP(nil, b, nil); err != nil {
			return // RFC 3711 §3.3: a packet that fails authentication is dropped
		}
	}
	var p rtp.Packet
	if p.Unmarshal(b) != nil {
		return // not RTP (or RTCP on the same port): ignored
	}
	switch {
	case p.PayloadType == pt:
		l.received.Add(1)
		l.push(l.decode(pt, p.Payload))
	case p.PayloadType >= 96 && len(p.Payload) >= 4 && onDTMF != nil:
		// RFC 4733 §2.5.1: one digit per event; a new event has a new start time stamp, or
		// follows the end (E bit) of the last one.
		end := p.Payload[1]&0x80 != 0
		if (p.Timestamp != st.lastEvent || st.ended && !end) && p.Payload[0] <= 15 {
			onDTMF(rune("0123456789*#ABCD"[p.Payload[0]]))
		}
		st.lastEvent, st.ended = p.Timestamp, end
	}
}

func (l *leg) decode(pt uint8, payload []byte) []int16 {
	var pcm []byte
	if pt == ptPCMA {
		pcm = g711.DecodeAlaw(payload)
	} else {
		pcm = g711.DecodeUlaw(payload)
	}
	in := make([]int16, len(pcm)/2)
	for i := range in {
		in[i] = int16(binary.LittleEndian.Uint16(pcm[2*i:]))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up.upsample(in)
}

// push queues decoded samples as whole frames; a queue longer than queueMax loses its
// oldest frames (the UA sends faster than the phone takes).
func (l *leg) push(samples []int16) {
	l.mu.Lock()
	if n := len(l.queue); n > 0 && len(l.queue[n-1]) < audio.FrameSamples {
		last := l.queue[n-1]
		take := min(audio.FrameSamples-len(last), len(samples))
		l.queue[n-1], samples = append(last, samples[:take]...), samples[take:]
	}
	for len(samples) > 0 {
		take := min(audio.FrameSamples, len(samples))
		l.queue = append(l.queue, append(make([]int16, 0, audio.FrameSamples), samples[:take]...))
		samples = samples[take:]
	}
	if len(l.queue) > queueMax {
		l.queue = l.queue[len(l.queue)-queueMax:]
	}
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// ReadFrame gives the phone the next 20 ms the UA said (silence when none came in time).
func (l *leg) ReadFrame(ctx context.Context, frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	l.mu.Lock()
	if l.pacer == nil {
		l.pacer = audio.NewPacer()
	}
	p := l.pacer
	l.mu.Unlock()
	if err := p.Wait(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 && len(l.queue[0]) == audio.FrameSamples {
		copy(frame, l.queue[0])
		l.queue = l.queue[1:]
		return nil
	}
	audio.Silence(frame)
	return nil
}

// WriteFrame sends the phone's 20 ms to the UA as one G.711 RTP packet.
func (l *leg) WriteFrame(frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return audio.ErrFrameSize
	}
	l.mu.Lock()
	low := l.down.downsample(frame, ratio)
	pcm := make([]byte, 2*len(low))
	for i, s := range low {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
	}
	payload := g711.EncodeUlaw(pcm)
	if l.pt == ptPCMA {
		payload = g711.EncodeAlaw(pcm)
	}
	pt, ts := l.pt, l.ts
	l.ts += uaSamples
	l.mu.Unlock()
	l.writeRTP(pt, false, ts, payload)
	return nil // a lost datagram is not the phone's trouble
}

// sendDigits sends digits to the UA as RFC 4733 events, one after another: each lasts 100 ms
// (five updates 20 ms apart, all with the event's start time stamp, §2.5.1.2), ends with
// three packets with the E bit (§2.5.1.4), then 40 ms of pause. The leg's goroutine owns the
// sending; it ends early when the leg closes.
func (l *leg) sendDigits(digits string) {
	l.dtmfWG.Add(1)
	go func() { // owner: l (Close waits); ends after the digits or when the leg closes
		defer l.dtmfWG.Done()
		t := time.NewTicker(audio.FrameDuration)
		defer t.Stop()
		for _, r := range digits {
			ev := strings.IndexRune("0123456789*#ABCD", unicode.ToUpper(r))
			if ev < 0 {
				continue
			}
			l.mu.Lock()
			start := l.ts
			l.mu.Unlock()
			for tick := 1; tick <= 7; tick++ {
				select {
				case <-l.ctx.Done():
					return
				case <-t.C:
				}
				end := tick >= 5
				if tick > 5 {
					continue // the pause between digits
				}
				n := 1
				if end {
					n = 3
				}
				for range n {
					payload := []byte{byte(ev), 10, 0, 0} // volume -10 dBm0
					if end {
						payload[1] |= 0x80
					}
					binary.BigEndian.PutUint16(payload[2:], uint16(tick*uaSamples))
					l.writeRTP(l.eventPT(), tick == 1, start, payload)
				}
			}
		}
	}()
}

// writeRTP sends one packet to the UA on the leg's sequence.
func (l *leg) writeRTP(pt uint8, marker bool, ts uint32, payload []byte) {
	l.mu.Lock()
	h := rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: l.seq, Timestamp: ts, SSRC: l.ssrc}
	l.seq++
	to, keys := l.remote, l.srtp
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err == nil && keys != nil {
		b, err = keys.out.EncryptRTP(nil, b, nil) // under l.mu: the SRTP context is not safe for concurrent use
	}
	l.mu.Unlock()
	if to == nil || err != nil {
		return
	}
	if _, err := l.conn.WriteTo(b, to); err == nil {
		l.sent.Add(1)
	}
}

// Close ends the leg (the phone closes its Source and Sink at the end of the call; the
// adapter closes the leg too: the second Close does nothing).
func (l *leg) Close() error {
	l.cancel()
	err := l.conn.Close()
	<-l.done
	l.dtmfWG.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// fir is a windowed-sinc low-pass (cut-off 3.6 kHz at 48 kHz) with its history, for the
// 8 <-> 48 kHz conversions; gain makes up for the zeros an upsampler stuffs in.
type fir struct {
	taps []float64
	hist []float64
}

func newFIR(gain int) fir {
	const n = 61
	const fc = 3600.0 / audio.SampleRate
	taps := make([]float64, n)
	var sum float64
	for i := range taps {
		x := float64(i - n/2)
		v := 2 * fc
		if x != 0 {
			v = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/float64(n-1)) // Hamming
		taps[i] = v * w
		sum += taps[i]
	}
	for i := range taps {
		taps[i] *= float64(gain) / sum
	}
	return fir{taps: taps, hist: make([]float64, n)}
}

func (f *fir) step(x float64) float64 {
	copy(f.hist, f.hist[1:])
	f.hist[len(f.hist)-1] = x
	var y float64
	for i, t := range f.taps {
		y += t * f.hist[i]
	}
	return y
}

func clip(v float64) int16 {
	return int16(max(math.MinInt16, min(math.MaxInt16, math.Round(v))))
}

// upsample makes ratio samples of each (zeros stuffed, then low-passed).
func (f *fir) upsample(in []int16) []int16 {
	out := make([]int16, 0, len(in)*ratio)
	for _, s := range in {
		for k := range ratio {
			x := 0.0
			if k == 0 {
				x = float64(s)
			}
			out = append(out, clip(f.step(x)))
		}
	}
	return out
}

// downsample low-passes and keeps every by-th sample.
func (f *fir) downsample(in []int16, by int) []int16 {
	out := make([]int16, 0, len(in)/by)
	for i, s := range in {
		y := f.step(float64(s))
		if i%by == by-1 {
			out = append(out, clip(y))
		}
	}
	return out
}
