// Package rtc is the media session of one call: Opus audio over
// DTLS-SRTP with ICE, built on pion/webrtc, negotiated with SDP offers and
// answers that the caller carries in SIP (RFC 3264 offer/answer).
//
//	caller: s.CreateOffer -> INVITE ... 200 OK -> s.SetAnswer
//	callee: s.AcceptOffer(offer) -> 200 OK with the answer
//	hold:   s.SetHold(true); s.CreateOffer -> re-INVITE; peer AcceptOffer; s.SetAnswer
//
// Audio flows Source -> (DSP) -> Opus -> RTP and RTP -> jitter buffer -> Opus
// -> Sink (media/pipeline). ICE candidates are gathered completely before an
// SDP is returned, so no trickle is needed. DTMF is sent and received as
// RFC 4733 telephone-events. Every goroutine belongs to the Session and
// ends in Close.
package rtc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/chordphone/chordphone/internal/pionslog"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/jitter"
	"github.com/chordphone/chordphone/media/opuscodec"
	"github.com/chordphone/chordphone/media/pipeline"
)

// Payload types we offer (RFC 3551 dynamic range).
const (
	opusPT  = 111
	dtmfPT  = 101
	dtmfVol = 10 // -10 dBm0
)

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URLs       []string // "stun:host:port", "turn:host:port?transport=udp"
	Username   string
	Credential string
}

// SessionConfig configures a Session. Source and Sink are required and stay
// owned by the caller (Close does not close them).
type SessionConfig struct {
	Source audio.Source
	Sink   audio.Sink

	ICEServers []ICEServer
	// RelayOnly uses TURN relays only (ICE transport policy "relay").
	RelayOnly bool
	// PortMin..PortMax bounds the local UDP ports; zero means any.
	PortMin, PortMax uint16
	// LoopbackOnly gathers only 127.0.0.1 candidates (tests on one host).
	LoopbackOnly bool
	// IPFilter, when set, keeps only the local addresses it accepts.
	IPFilter func(net.IP) bool
	// ICE timeouts: no traffic for Disconnected reports EventDisconnected,
	// for Failed ends the session with EventFailed. Defaults 4 s and 12 s.
	DisconnectedTimeout, FailedTimeout time.Duration

	Opus      opuscodec.Config
	Jitter    jitter.Config
	Processor pipeline.Processor // echo canceller / noise suppressor (media/dsp)

	// KeyLogWriter receives the DTLS secrets in NSS key log format.
	KeyLogWriter io.Writer
	Logger       *slog.Logger
}

// EventType tells what happened.
type EventType int

const (
	// EventConnected: ICE and DTLS are up; audio flows.
	EventConnected EventType = iota + 1
	// EventDisconnected: no traffic from the peer for a while (may recover).
	EventDisconnected
	// EventReconnected: traffic resumed after EventDisconnected.
	EventReconnected
	// EventFailed: the connection is lost for good; Err says why.
	EventFailed
	// EventDTMF: the peer sent a DTMF digit (RFC 4733).
	EventDTMF
	// EventRemoteHold / EventRemoteResume: the peer put us on hold or resumed.
	EventRemoteHold
	EventRemoteResume
)

func (t EventType) String() string {
	switch t {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventReconnected:
		return "reconnected"
	case EventFailed:
		return "failed"
	case EventDTMF:
		return "dtmf"
	case EventRemoteHold:
		return "remote-hold"
	case EventRemoteResume:
		return "remote-resume"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Event is delivered on Session.Events.
type Event struct {
	Type  EventType
	Digit rune  // EventDTMF
	Err   error // EventFailed
}

// Stats is a snapshot of the session's media statistics (RFC 3550 §6.4).
type Stats struct {
	Codec             string  // "opus/48000/2"
	FramesIn          uint64  // frames read from the Source since connected
	PacketsSent       uint64  // RTP packets sent (audio and DTMF)
	BytesSent         uint64  // RTP payload bytes sent
	PacketsReceived   uint64  // RTP packets received
	PacketsLost       int64   // expected minus received (RFC 3550 A.3)
	JitterMs          float64 // interarrival jitter of received packets (RFC 3550 §6.4.1)
	RTTMs             float64 // round-trip time from RTCP receiver reports; 0 until known
	RemoteLost        int64   // packets of ours the peer reports lost
	RemoteFractionPct float64 // loss the peer reports over its last interval, percent
	Relayed           bool    // media goes through a TURN relay
	LocalCandidate    string  // selected pair, "typ addr:port"
	RemoteCandidate   string
	InputLevel        float64 // microphone level, dBFS
	OutputLevel       float64 // speaker level, dBFS
	Muted, Held       bool
	RemoteHeld        bool
	Jitter            jitter.Stats
}

// restartGatherWait bounds the wait for candidates when a call under way gathers again.
const restartGatherWait = 1500 * time.Millisecond

// ErrAudioStopped is in the Err of an EventFailed that the audio source or sink caused
// (not the connection: an ICE restart cannot help).
var ErrAudioStopped = errors.New("rtc: audio stopped")

// Session is the media of one call.
type Session struct {
	cfg  SessionConfig
	log  *slog.Logger
	pc   *webrtc.PeerConnection
	net  *liveNet // the interfaces ICE gathers on, listed again before each offer and answer
	tr   *webrtc.RTPTransceiver
	trk  *audioTrack
	send *pipeline.Sender
	recv *pipeline.Receiver

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events chan Event

	mu         sync.Mutex
	closed     bool
	started    bool
	hold       bool
	remoteDir  Direction
	haveRemote bool
	dtmfQueue  []uint8
	rxStats    rtpRecvStats
	lastDTMFTS uint32
	haveDTMF   bool
	failed     bool
	wasDown    bool

	sent       atomic.Uint64
	framesIn   atomic.Uint64
	sentBytes  atomic.Uint64
	rtt        atomic.Uint64 // float64 bits, ms
	remoteLost atomic.Int64
	remoteFrac atomic.Uint64 // float64 bits
	lossPct    atomic.Int32  // peer-reported loss, to retune FEC
	// pair is the selected ICE candidate pair, as ICE reports it: pion's
	// ICETransport.GetSelectedCandidatePair reads fields that Start writes without a lock.
	pair atomic.Pointer[webrtc.ICECandidatePair]
}

// mediaEngine offers Opus and telephone-event, nothing else.
func mediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	// RFC 7587 §7: Opus is always signalled as opus/48000/2.
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: opusPT,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("rtc: register opus: %w", err)
	}
	// RFC 4733 §7.1.1: telephone-event at the audio clock rate.
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000,
			SDPFmtpLine: "0-15"},
		PayloadType: dtmfPT,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("rtc: register telephone-event: %w", err)
	}
	return m, nil
}

// settingEngine is pion's configuration of a session: its network (liveNet), ICE timeouts,
// ports, candidate filters, key log and logger.
func settingEngine(cfg SessionConfig, log *slog.Logger) (webrtc.SettingEngine, *liveNet, error) {
	se := webrtc.SettingEngine{LoggerFactory: pionslog.New(log)}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	lnet, err := newLiveNet(cfg.ICEServers)
	if err != nil {
		return se, nil, err
	}
	se.SetNet(lnet)
	dis, fail := cfg.DisconnectedTimeout, cfg.FailedTimeout
	if dis <= 0 {
		dis = 4 * time.Second
	}
	if fail <= 0 {
		fail = 12 * time.Second
	}
	se.SetICETimeouts(dis, fail, time.Second)
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return se, nil, fmt.Errorf("rtc: port range %d-%d: %w", cfg.PortMin, cfg.PortMax, err)
		}
	}
	filter := cfg.IPFilter
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		inner := filter
		filter = func(ip net.IP) bool { return ip.IsLoopback() && (inner == nil || inner(ip)) }
	}
	if filter != nil {
		se.SetIPFilter(filter)
	}
	if cfg.KeyLogWriter != nil {
		se.SetDTLSKeyLogWriter(cfg.KeyLogWriter)
	}
	return se, lnet, nil
}

// NewSession creates the peer connection with one audio transceiver.
func NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Source == nil || cfg.Sink == nil {
		return nil, errors.New("rtc: SessionConfig needs a Source and a Sink")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "rtc")

	m, err := mediaEngine()
	if err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil { // RFC 3550 §6.4 SR/RR
		return nil, fmt.Errorf("rtc: rtcp reports: %w", err)
	}

	se, lnet, err := settingEngine(cfg, log)
	if err != nil {
		return nil, err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	pcfg := webrtc.Configuration{SDPSemantics: webrtc.SDPSemanticsUnifiedPlan}
	for _, s := range cfg.ICEServers {
		pcfg.ICEServers = append(pcfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	if cfg.RelayOnly {
		pcfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcfg)
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}

	s := &Session{cfg: cfg, log: log, pc: pc, net: lnet, trk: &audioTrack{}, events: make(chan Event, 64)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	fail2 := func(err error) (*Session, error) {
		s.cancel()
		pc.Close()
		return nil, err
	}
	s.send, err = pipeline.NewSender(pipeline.SenderConfig{Source: cfg.Source, Opus: cfg.Opus, Processor: cfg.Processor})
	if err != nil {
		return fail2(err)
	}
	s.recv, err = pipeline.NewReceiver(pipeline.ReceiverConfig{Sink: cfg.Sink, Jitter: cfg.Jitter, Processor: cfg.Processor})
	if err != nil {
		return fail2(err)
	}
	s.tr, err = pc.AddTransceiverFromTrack(s.trk, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return fail2(fmt.Errorf("rtc: add audio transceiver: %w", err))
	}
	pc.OnTrack(s.onTrack)
	pc.OnConnectionStateChange(s.onState)
	if t := s.tr.Sender().Transport(); t != nil {
		t.ICETransport().OnSelectedCandidatePairChange(s.onPair)
	}

	sender := s.tr.Sender()
	s.wg.Add(1)
	go func() { // reads RTCP about what we send; ends when the sender stops (Close)
		defer s.wg.Done()
		s.readSenderRTCP(sender)
	}()
	return s, nil
}

// Events delivers what happens during the session; it is closed by Close.
func (s *Session) Events() <-chan Event { return s.events }

func (s *Session) emit(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.events <- e:
	default:
		s.log.Warn("event dropped: nobody reads Events", "event", e.Type)
	}
}

// CreateOffer returns an SDP offer with every ICE candidate. Use it for the
// first INVITE and for re-INVITEs (hold, resume).
func (s *Session) CreateOffer(ctx context.Context) (string, error) {
	return s.createOffer(ctx, nil)
}

// CreateRestartOffer is CreateOffer with new ICE credentials: an ICE restart (RFC 8445
// §9, signalled as in RFC 8839 §4.4.1.1.1). Candidates are gathered again on the host's
// addresses of now, and the peer's answer starts new connectivity checks, so a call whose
// selected pair died (an address changed) goes on over a new pair; DTLS-SRTP keeps its keys.
//
// The pair the restart selects reports EventReconnected, also when no EventDisconnected
// came before (a host that knows its address is gone restarts at once).
func (s *Session) CreateRestartOffer(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.wasDown = true
	s.mu.Unlock()
	return s.createOffer(ctx, &webrtc.OfferOptions{ICERestart: true})
}

// onPair notes the pair ICE selected; the first one after the connection was down (or an
// ICE restart began) reports EventReconnected.
func (s *Session) onPair(p *webrtc.ICECandidatePair) {
	s.pair.Store(p)
	s.mu.Lock()
	back := s.started && s.wasDown
	s.wasDown = false
	s.mu.Unlock()
	if back {
		s.emit(Event{Type: EventReconnected})
	}
}

// UsesAddr reports whether the call's media goes out from one of addrs: the selected pair's
// local candidate, or the base of a server-reflexive or relayed one. When that base is not
// known, any removed address may be it: true. False before a pair is selected.
func (s *Session) UsesAddr(addrs []netip.Addr) bool {
	p := s.pair.Load()
	if p == nil || p.Local == nil || len(addrs) == 0 {
		return false
	}
	a := p.Local.Address
	if p.Local.Typ != webrtc.ICECandidateTypeHost {
		a = p.Local.RelatedAddress
	}
	ip, err := netip.ParseAddr(a)
	if err != nil || ip.IsUnspecified() {
		return true
	}
	return slices.Contains(addrs, ip.Unmap())
}

func (s *Session) createOffer(ctx context.Context, opts *webrtc.OfferOptions) (string, error) {
	if err := s.checkOpen(); err != nil {
		return "", err
	}
	if err := s.net.refresh(); err != nil {
		return "", err
	}
	offer, err := s.pc.CreateOffer(opts)
	if err != nil {
		return "", fmt.Errorf("rtc: create offer: %w", err)
	}
	sdp, err := s.setLocal(ctx, offer)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	d := s.localDirection()
	s.mu.Unlock()
	return setDirection(sdp, d), nil
}

// AcceptOffer applies the peer's offer (initial or re-offer) and returns our
// answer with every ICE candidate.
func (s *Session) AcceptOffer(ctx context.Context, offer string) (string, error) {
	if err := s.checkOpen(); err != nil {
		return "", err
	}
	dir, err := inspectSDP(offer)
	if err != nil {
		return "", fmt.Errorf("remote offer: %w", err)
	}
	if err := s.net.refresh(); err != nil { // an ICE restart gathers on the addresses of now
		return "", err
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: setDirection(offer, SendRecv)}); err != nil {
		return "", fmt.Errorf("rtc: remote offer: %w: %v", ErrBadSDP, err)
	}
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("rtc: create answer: %w", err)
	}
	sdp, err := s.setLocal(ctx, answer)
	if err != nil {
		return "", err
	}
	s.setRemoteDirection(dir)
	s.mu.Lock()
	// RFC 3264 §6.1: the answer's direction is what we want, limited by
	// the reverse of the offer's.
	mine := s.localDirection()
	rev := dir.Reverse()
	ans := directionOf(mine.Sends() && rev.Sends(), mine.Receives() && rev.Receives())
	s.mu.Unlock()
	return setDirection(sdp, ans), nil
}

// SetAnswer applies the peer's answer to our last offer.
func (s *Session) SetAnswer(answer string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	dir, err := inspectSDP(answer)
	if err != nil {
		return fmt.Errorf("remote answer: %w", err)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: setDirection(answer, SendRecv)}); err != nil {
		return fmt.Errorf("rtc: remote answer: %w: %v", ErrBadSDP, err)
	}
	s.setRemoteDirection(dir)
	return nil
}

func (s *Session) setLocal(ctx context.Context, desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("rtc: set local %s: %w", desc.Type, err)
	}
	// A call under way that gathers again (an ICE restart) waits for its candidates at most
	// restartGatherWait: a STUN server that no longer answers (one on an address the host
	// just lost) would hold the call's audio up for pion's 5 s per server. The candidates
	// gathered by then go out; ICE finds the rest as peer-reflexive ones.
	var capC <-chan time.Time
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		t := time.NewTimer(restartGatherWait)
		defer t.Stop()
		capC = t.C
	}
	select {
	case <-gathered:
	case <-capC:
		s.log.Info("ICE gathering not complete; sending the candidates gathered so far", "after", restartGatherWait)
	case <-ctx.Done():
		return "", fmt.Errorf("rtc: gathering ICE candidates: %w", ctx.Err())
	case <-s.ctx.Done():
		return "", errors.New("rtc: session closed")
	}
	return s.pc.LocalDescription().SDP, nil
}

func (s *Session) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("rtc: session closed")
	}
	return nil
}

// localDirection is what we want: sendonly while we hold (RFC 3264 §8.4).
// Caller holds s.mu.
func (s *Session) localDirection() Direction {
	if s.hold {
		return SendOnly
	}
	return SendRecv
}

func (s *Session) setRemoteDirection(d Direction) {
	s.mu.Lock()
	was := !s.haveRemote || s.remoteDir.Receives()
	s.remoteDir, s.haveRemote = d, true
	s.mu.Unlock()
	switch now := d.Receives(); {
	case was && !now:
		s.emit(Event{Type: EventRemoteHold})
	case !was && now:
		s.emit(Event{Type: EventRemoteResume})
	}
}

// SetHold puts the call on hold (or resumes it) locally at once: while held
// no audio is sent and received audio is not played. Send the change to the
// peer with CreateOffer (re-INVITE) and SetAnswer.
func (s *Session) SetHold(hold bool) {
	s.mu.Lock()
	s.hold = hold
	s.mu.Unlock()
}

// SetMute sends silence instead of the microphone while muted.
func (s *Session) SetMute(mute bool) { s.send.SetMute(mute) }

// SetInputGain and SetOutputGain set gains in dB (0 = unchanged).
func (s *Session) SetInputGain(db float64)  { s.send.SetGain(audio.DBToGain(db)) }
func (s *Session) SetOutputGain(db float64) { s.recv.SetGain(audio.DBToGain(db)) }

// InputLevel is the microphone level in dBFS (shown while muted too).
func (s *Session) InputLevel() float64 { return s.send.Level() }

// canSend reports whether audio may go out now.
func (s *Session) canSend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.hold && (!s.haveRemote || s.remoteDir.Receives())
}

// SendDTMF queues digits (0-9, *, #, A-D) to send as RFC 4733 events of
// 100 ms with 40 ms gaps. It fails when a digit is invalid or the peer did
// not accept telephone-event.
func (s *Session) SendDTMF(digits string) error {
	var evs []uint8
	for _, r := range digits {
		e, err := digitToEvent(r)
		if err != nil {
			return err
		}
		evs = append(evs, e)
	}
	if _, ok := s.trk.dtmfPayloadType(); !ok {
		return errors.New("rtc: the peer does not accept DTMF (no telephone-event in its SDP) or the call is not connected")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("rtc: session closed")
	}
	s.dtmfQueue = append(s.dtmfQueue, evs...)
	return nil
}

func (s *Session) onState(st webrtc.PeerConnectionState) {
	s.log.Debug("connection state", "state", st)
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.mu.Lock()
		first := !s.started && !s.closed
		if first {
			s.started = true
			s.wg.Add(2)
		}
		down := s.wasDown
		s.wasDown, s.failed = false, false
		s.mu.Unlock()
		if first {
			go func() { defer s.wg.Done(); s.sendLoop() }()
			go func() { defer s.wg.Done(); s.playLoop() }()
			s.emit(Event{Type: EventConnected})
		} else if down {
			s.emit(Event{Type: EventReconnected})
		}
	case webrtc.PeerConnectionStateDisconnected:
		s.mu.Lock()
		s.wasDown = true
		s.mu.Unlock()
		s.emit(Event{Type: EventDisconnected})
	case webrtc.PeerConnectionStateFailed:
		s.mu.Lock()
		already := s.failed
		s.failed = true
		s.wasDown = true // an ICE restart may bring it back (EventReconnected)
		s.mu.Unlock()
		if !already {
			s.emit(Event{Type: EventFailed, Err: errors.New("rtc: connection to the peer lost (ICE/DTLS failed)")})
		}
	}
}

// sendLoop: Source -> Sender -> RTP, one packet per 20 ms (paced by the Source).
func (s *Session) sendLoop() {
	var rnd [6]byte
	rand.Read(rnd[:])
	seq := binary.BigEndian.Uint16(rnd[0:])
	ts := binary.BigEndian.Uint32(rnd[2:])
	marker := true
	var (
		dtmfActive bool
		dtmfEvent  uint8
		dtmfStart  uint32
		dtmfTicks  int
		gapTicks   int
		lastLoss   int32 = -1
	)
	const eventTicks = 5 // 100 ms
	for {
		payload, err := s.send.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("audio source stopped", "err", err)
				s.emit(Event{Type: EventFailed, Err: fmt.Errorf("%w: source: %w", ErrAudioStopped, err)})
			}
			return
		}
		s.framesIn.Add(1)
		ts += uint32(audio.FrameSamples) // RTP clock keeps running while silent or held
		if l := s.lossPct.Load(); l != lastLoss {
			lastLoss = l
			s.send.Encoder().SetExpectedLoss(max(int(l), 5))
		}
		if !s.canSend() {
			marker = true
			continue
		}
		if gapTicks > 0 {
			gapTicks--
		} else if !dtmfActive {
			s.mu.Lock()
			if len(s.dtmfQueue) > 0 {
				dtmfEvent = s.dtmfQueue[0]
				s.dtmfQueue = s.dtmfQueue[1:]
				dtmfActive, dtmfStart, dtmfTicks = true, ts, 0
			}
			s.mu.Unlock()
		}
		if dtmfActive {
			if pt, ok := s.trk.dtmfPayloadType(); ok {
				dtmfTicks++
				ev := telephoneEvent{Event: dtmfEvent, Volume: dtmfVol, Duration: uint16(dtmfTicks * audio.FrameSamples)}
				// RFC 4733 §2.5.1.2: all packets of an event carry the
				// event's start timestamp; the first has the marker bit.
				// §2.5.1.4: the final packet (E bit) is sent three times.
				n := 1
				if dtmfTicks >= eventTicks {
					ev.End, n = true, 3
				}
				for range n {
					h := rtp.Header{Version: 2, Marker: dtmfTicks == 1, PayloadType: pt, SequenceNumber: seq, Timestamp: dtmfStart}
					s.writeRTP(&h, ev.marshal())
					seq++
				}
				if ev.End {
					dtmfActive, gapTicks, marker = false, 2, true
				}
				continue
			}
			dtmfActive = false
		}
		h := rtp.Header{Version: 2, Marker: marker, PayloadType: opusPT, SequenceNumber: seq, Timestamp: ts}
		s.writeRTP(&h, payload)
		seq++
		marker = false
	}
}

func (s *Session) writeRTP(h *rtp.Header, payload []byte) {
	if n := s.trk.write(h, payload); n > 0 {
		s.sent.Add(1)
		s.sentBytes.Add(uint64(len(payload)))
	}
}

// playLoop: jitter buffer -> decoder -> Sink, one frame per 20 ms.
func (s *Session) playLoop() {
	if err := s.recv.Run(s.ctx); err != nil && s.ctx.Err() == nil {
		s.log.Error("audio sink stopped", "err", err)
		s.emit(Event{Type: EventFailed, Err: fmt.Errorf("%w: sink: %w", ErrAudioStopped, err)})
	}
}

func (s *Session) onTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() { // receiver RTCP (sender reports feed our receiver reports); ends on Close
		defer s.wg.Done()
		for {
			if _, _, err := receiver.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	// Payload types as negotiated (the offerer's numbers, RFC 3264 §6.1).
	opus, dtmf := uint8(opusPT), uint8(dtmfPT)
	for _, c := range receiver.GetParameters().Codecs {
		switch strings.ToLower(c.MimeType) {
		case strings.ToLower(webrtc.MimeTypeOpus):
			opus = uint8(c.PayloadType)
		case "audio/telephone-event":
			dtmf = uint8(c.PayloadType)
		}
	}
	s.readTrack(track, opus, dtmf) // runs on pion's OnTrack goroutine, counted in s.wg
}

func (s *Session) readTrack(track *webrtc.TrackRemote, opus, dtmf uint8) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || s.ctx.Err() != nil || strings.Contains(err.Error(), "closed") {
				return
			}
			s.log.Debug("rtp read", "err", err)
			continue
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		s.rxStats.update(pkt.SequenceNumber)
		held := s.hold
		s.mu.Unlock()
		switch pkt.PayloadType {
		case opus:
			if held {
				continue // on hold we do not play the peer
			}
			s.recv.Push(jitter.Packet{Seq: pkt.SequenceNumber, Timestamp: pkt.Timestamp, Payload: pkt.Payload}, now)
		case dtmf:
			s.onTelephoneEvent(pkt.Timestamp, pkt.Payload)
		}
	}
}

func (s *Session) onTelephoneEvent(ts uint32, payload []byte) {
	ev, err := parseTelephoneEvent(payload)
	if err != nil {
		s.log.Debug("bad telephone-event", "err", err)
		return
	}
	digit, ok := eventToDigit(ev.Event)
	if !ok {
		return
	}
	s.mu.Lock()
	// RFC 4733 §2.5.2: packets of one event share its timestamp.
	isNew := !s.haveDTMF || s.lastDTMFTS != ts
	s.lastDTMFTS, s.haveDTMF = ts, true
	s.mu.Unlock()
	if isNew {
		s.emit(Event{Type: EventDTMF, Digit: digit})
	}
}

// readSenderRTCP reads the peer's receiver reports about our stream: loss and
// the round-trip time (RFC 3550 §6.4.1: RTT = A - LSR - DLSR).
func (s *Session) readSenderRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, p := range pkts {
			var reports []rtcp.ReceptionReport
			switch r := p.(type) {
			case *rtcp.ReceiverReport:
				reports = r.Reports
			case *rtcp.SenderReport:
				reports = r.Reports
			}
			for _, rr := range reports {
				if !s.trk.ownsSSRC(rr.SSRC) {
					continue
				}
				s.remoteLost.Store(int64(rr.TotalLost))
				frac := float64(rr.FractionLost) * 100 / 256
				s.remoteFrac.Store(math.Float64bits(frac))
				s.lossPct.Store(int32(frac + 0.5))
				if rr.LastSenderReport != 0 {
					a := ntpMiddle(now)
					rtt := a - rr.LastSenderReport - rr.Delay
					if rtt < 1<<30 { // ignore clock glitches
						s.rtt.Store(math.Float64bits(float64(rtt) * 1000 / 65536))
					}
				}
			}
		}
	}
}

// Stats returns the session's statistics now.
func (s *Session) Stats() Stats {
	st := Stats{
		Codec:             "opus/48000/2",
		FramesIn:          s.framesIn.Load(),
		PacketsSent:       s.sent.Load(),
		BytesSent:         s.sentBytes.Load(),
		RTTMs:             math.Float64frombits(s.rtt.Load()),
		RemoteLost:        s.remoteLost.Load(),
		RemoteFractionPct: math.Float64frombits(s.remoteFrac.Load()),
		InputLevel:        s.send.Level(),
		OutputLevel:       s.recv.Level(),
		Muted:             s.send.Muted(),
		Jitter:            s.recv.Jitter(),
	}
	st.JitterMs = st.Jitter.JitterMs
	s.mu.Lock()
	st.PacketsReceived = s.rxStats.received
	st.PacketsLost = s.rxStats.lost()
	st.Held = s.hold
	st.RemoteHeld = s.haveRemote && !s.remoteDir.Receives()
	s.mu.Unlock()
	if pair := s.pair.Load(); pair != nil && pair.Local != nil && pair.Remote != nil {
		st.Relayed = pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay
		st.LocalCandidate = fmt.Sprintf("%s %s:%d", pair.Local.Typ, pair.Local.Address, pair.Local.Port)
		st.RemoteCandidate = fmt.Sprintf("%s %s:%d", pair.Remote.Typ, pair.Remote.Address, pair.Remote.Port)
	}
	return st
}

// Close ends the session: it stops the media, closes the peer connection,
// waits for every goroutine and closes Events. Source and Sink stay open.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	err := s.pc.Close()
	s.wg.Wait()
	close(s.events)
	if err != nil {
		return fmt.Errorf("rtc: close: %w", err)
	}
	return nil
}

// rtpRecvStats counts received packets per RFC 3550 Appendix A.3.
type rtpRecvStats struct {
	init     bool
	base     uint32 // first extended sequence number
	maxSeq   uint16
	cycles   uint32
	received uint64
}

func (r *rtpRecvStats) update(seq uint16) {
	r.received++
	if !r.init {
		r.init, r.base, r.maxSeq = true, uint32(seq), seq
		return
	}
	if d := seq - r.maxSeq; d < 0x8000 && d != 0 {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
}

func (r *rtpRecvStats) lost() int64 {
	if !r.init {
		return 0
	}
	expected := int64(r.cycles+uint32(r.maxSeq)) - int64(r.base) + 1
	return max(0, expected-int64(r.received))
}

// ntpMiddle returns the middle 32 bits of the NTP timestamp of t (RFC 3550 §4).
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return uint32((secs<<32 | frac) >> 16)
}

// audioTrack is our local track. It writes RTP itself so that Opus and
// telephone-event packets share one SSRC and sequence space (RFC 4733 §2.1).
type audioTrack struct {
	mu       sync.Mutex
	bindings []binding
}

type binding struct {
	id     string
	ssrc   uint32
	w      webrtc.TrackLocalWriter
	opusPT uint8
	dtmfPT uint8
	dtmf   bool
}

func (t *audioTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var opus *webrtc.RTPCodecParameters
	b := binding{id: ctx.ID(), ssrc: uint32(ctx.SSRC()), w: ctx.WriteStream()}
	for _, c := range ctx.CodecParameters() {
		c := c
		switch strings.ToLower(c.MimeType) {
		case strings.ToLower(webrtc.MimeTypeOpus):
			if opus == nil {
				opus = &c
				b.opusPT = uint8(c.PayloadType)
			}
		case "audio/telephone-event":
			if c.ClockRate == 48000 {
				b.dtmfPT, b.dtmf = uint8(c.PayloadType), true
			}
		}
	}
	if opus == nil {
		return webrtc.RTPCodecParameters{}, errors.New("rtc: the peer does not support Opus")
	}
	t.mu.Lock()
	t.bindings = append(t.bindings, b)
	t.mu.Unlock()
	return *opus, nil
}

func (t *audioTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, b := range t.bindings {
		if b.id == ctx.ID() {
			t.bindings = append(t.bindings[:i], t.bindings[i+1:]...)
			return nil
		}
	}
	return nil
}

func (t *audioTrack) ID() string                { return "audio" }
func (t *audioTrack) RID() string               { return "" }
func (t *audioTrack) StreamID() string          { return "chordphone" }
func (t *audioTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }
func (t *audioTrack) dtmfPayloadType() (uint8, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range t.bindings {
		if b.dtmf {
			return b.dtmfPT, true
		}
	}
	return 0, false
}

func (t *audioTrack) ownsSSRC(ssrc uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range t.bindings {
		if b.ssrc == ssrc {
			return true
		}
	}
	return false
}

// write sends the packet on every binding (one per peer connection); h's
// PayloadType is opusPT or dtmfPT and is mapped to the negotiated one.
func (t *audioTrack) write(h *rtp.Header, payload []byte) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, b := range t.bindings {
		hh := *h
		hh.SSRC = b.ssrc
		if h.PayloadType == opusPT {
			hh.PayloadType = b.opusPT
		}
		if _, err := b.w.WriteRTP(&hh, payload); err == nil {
			n++
		}
	}
	return n
}
