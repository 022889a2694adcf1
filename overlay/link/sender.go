package link

import (
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// flight is one message (or fragment) sent on a DTLS link and not yet acknowledged.
type flight struct {
	payload  []byte
	seqs     []uint32 // every sequence number it was sent with (one in in-order mode)
	sent     time.Time
	tx       int
	rto      time.Duration
	deadline time.Time
}

// sender is the sending side of a link, owned by the sendLoop goroutine: sequence numbers,
// the window of messages in flight and their retransmission (RFC 6940 §6.6.3.1, DTLS), the
// acknowledgements that measure the round trip (RFC 6940 §6.6.5, TLS).
type sender struct {
	l        *Link
	nextSeq  uint32
	backlog  [][]byte
	inflight []*flight
	pending  map[uint32]time.Time // TLS: unacknowledged frames
	cwnd     int
	est      rtoEstimator
	rtx      *time.Timer // the earliest retransmission deadline (TLS: the next stall check)
	stalled  bool        // TLS: out of routing (Link.OnStall)
}

func newSender(l *Link) *sender {
	s := &sender{l: l, pending: map[uint32]time.Time{}, cwnd: 4,
		est: newRTOEstimator(l.s.RTO, l.s.MinRTO), rtx: time.NewTimer(time.Hour)}
	// RFC 6940 §6.6.3.1: the RTT of the ICE STUN transaction is the first measurement.
	if l.firstRTT > 0 {
		s.sample(l.firstRTT)
	}
	return s
}

func (l *Link) sendLoop() {
	s := newSender(l)
	defer s.rtx.Stop()
	// Keepalives and liveness checks run on a grid of multiples of Keepalive since the Unix
	// epoch, so every link of a process (and of the peers on one host) wakes at the same
	// instants: an idle peer wakes once per Keepalive, not once per link.
	ka := time.NewTimer(untilGrid(time.Now(), l.s.Keepalive))
	defer ka.Stop()
	for {
		var in chan [][]byte
		if len(s.backlog) == 0 && s.room() {
			in = l.sendq
		}
		var err error
		select {
		case <-l.done:
			return
		case parts := <-in:
			s.backlog = append(s.backlog, parts...)
			err = s.pump()
		case a := <-l.acks:
			err = s.acked(a)
		case <-s.rtx.C:
			err = s.retransmit()
		case <-ka.C:
			err = s.keepalive()
			ka.Reset(untilGrid(time.Now(), l.s.Keepalive))
		}
		if err != nil {
			l.fail(err)
			return
		}
	}
}

// sample feeds one round-trip time to the estimator and the link's Stats.
func (s *sender) sample(r time.Duration) {
	s.est.sample(r)
	s.l.st.rto.Store(int64(s.est.RTO()))
	s.l.st.srtt.Store(int64(s.est.SRTT()))
}

// armTimer sets the retransmission timer to the earliest deadline in flight.
func (s *sender) armTimer() {
	if len(s.inflight) == 0 {
		s.rtx.Reset(time.Hour)
		return
	}
	first := s.inflight[0].deadline
	for _, f := range s.inflight[1:] {
		if f.deadline.Before(first) {
			first = f.deadline
		}
	}
	s.rtx.Reset(max(time.Until(first), 0))
}

// room says whether the window lets another message go out.
func (s *sender) room() bool {
	if !s.l.datagram {
		return true
	}
	if s.l.inOrder && len(s.inflight) > 0 {
		// keep the span of sequence numbers in flight within the ack bitmask
		return int(s.nextSeq-s.inflight[0].seqs[0]) < s.cwnd
	}
	return len(s.inflight) < s.cwnd
}

// transmit sends f (again): with its sequence number in in-order mode, else a new one.
func (s *sender) transmit(f *flight) error {
	seq := s.nextSeq
	if s.l.inOrder && len(f.seqs) > 0 {
		seq = f.seqs[0]
	} else {
		s.nextSeq++
		f.seqs = append(f.seqs, seq)
	}
	now := time.Now()
	f.sent = now
	f.tx++
	f.deadline = now.Add(f.rto)
	if err := s.l.writeData(seq, f.payload); err != nil {
		return fmt.Errorf("%w: write: %w", ErrLinkDead, err)
	}
	return nil
}

// pump sends from the backlog while the window has room.
func (s *sender) pump() error {
	for len(s.backlog) > 0 && s.room() {
		p := s.backlog[0]
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		s.l.st.sent.Add(1)
		if !s.l.datagram {
			seq := s.nextSeq
			s.nextSeq++
			if err := s.l.writeData(seq, p); err != nil {
				return fmt.Errorf("%w: write: %w", ErrLinkDead, err)
			}
			s.pending[seq] = time.Now()
			if err := s.checkStall(); err != nil {
				return err
			}
			continue
		}
		f := &flight{payload: p, rto: s.est.RTO()}
		s.inflight = append(s.inflight, f)
		if err := s.transmit(f); err != nil {
			return err
		}
	}
	if s.l.datagram {
		s.armTimer()
	}
	return nil
}

// acked takes an acknowledgement: it ends the flights it covers, samples the round trip and
// opens the window.
func (s *sender) acked(a ackInfo) error {
	now := time.Now()
	if !s.l.datagram {
		// RFC 6940 §6.6.5: acks measure the RTT of a TLS link.
		for d := uint32(0); d <= 32; d++ {
			seq := a.seq - d
			if t0, ok := s.pending[seq]; ok && wire.AckedBefore(a.seq, a.received, seq) {
				if d == 0 {
					s.sample(now.Sub(t0))
				}
				delete(s.pending, seq)
			}
		}
		return s.checkStall()
	}
	kept := s.inflight[:0]
	acked := 0
	for _, f := range s.inflight {
		if !f.ackedBy(a) {
			kept = append(kept, f)
			continue
		}
		acked++
		if f.tx == 1 { // Karn: no samples from retransmitted messages
			s.sample(now.Sub(f.sent))
		}
	}
	for i := len(kept); i < len(s.inflight); i++ {
		s.inflight[i] = nil
	}
	s.inflight = kept
	if acked > 0 && s.cwnd < s.l.s.Window {
		s.cwnd++
	}
	return s.pump()
}

func (f *flight) ackedBy(a ackInfo) bool {
	for _, seq := range f.seqs {
		if wire.AckedBefore(a.seq, a.received, seq) {
			return true
		}
	}
	return false
}

// retransmit sends again what is past its deadline, doubling its timeout, and halves the
// window after a loss.
func (s *sender) retransmit() error {
	if !s.l.datagram {
		return s.checkStall()
	}
	now := time.Now()
	lost := false
	for _, f := range s.inflight {
		if now.Before(f.deadline) {
			continue
		}
		if f.tx >= s.l.s.MaxTransmissions {
			// RFC 6940 §6.6.3.1: all retransmissions failed: close the connection.
			return fmt.Errorf("%w: no ack after %d transmissions", ErrLinkDead, f.tx)
		}
		f.rto *= 2 // RFC 6940 §6.6.3.1: double the time to wait
		s.l.st.retx.Add(1)
		lost = true
		if err := s.transmit(f); err != nil {
			return err
		}
	}
	if lost {
		s.cwnd = max(1, s.cwnd/2)
	}
	s.armTimer()
	return nil
}

// keepalive checks that the link is alive and sends an ack frame as keepalive unless
// something else went out in the last half interval: the link is never silent for more
// than 1.5 Keepalive.
func (s *sender) keepalive() error {
	l, now := s.l, time.Now()
	if l.chord && now.Sub(time.Unix(0, l.lastRecv.Load())) > l.s.DeadAfter {
		return fmt.Errorf("%w: nothing received for %v", ErrLinkDead, l.s.DeadAfter)
	}
	if now.Sub(time.Unix(0, l.lastSend.Load())) >= l.s.Keepalive/2 {
		a := l.lastAck.Load()
		if err := l.write(wire.AckFrame(uint32(a>>32), uint32(a))); err != nil {
			return fmt.Errorf("%w: keepalive: %w", ErrLinkDead, err)
		}
	}
	return nil
}

// checkStall applies RFC 6940 §6.6.5 to a TLS link: its RTO "is not used for
// retransmissions, but rather as a timeout to indicate when the link SHOULD be removed from
// the Routing Table" — the link says so (Link.OnStall) while a data frame is unacknowledged
// for longer, and that it is usable again once acknowledged — and the connection is
// "retained for 30 seconds to determine if the failure was transient" (TLSRetain), then
// declared dead. The timer is set for the next check.
func (s *sender) checkStall() error {
	var oldest time.Time
	for _, t0 := range s.pending {
		if oldest.IsZero() || t0.Before(oldest) {
			oldest = t0
		}
	}
	if oldest.IsZero() {
		s.setStalled(false)
		s.rtx.Reset(time.Hour)
		return nil
	}
	late, retain := max(s.est.RTO(), s.l.s.StallAfter), s.l.s.TLSRetain
	age := time.Since(oldest)
	if age >= retain {
		return fmt.Errorf("%w: data frame unacknowledged for %v (RFC 6940 §6.6.5)", ErrLinkDead, retain)
	}
	s.setStalled(age >= late)
	if age < late {
		s.rtx.Reset(late - age)
	} else {
		s.rtx.Reset(retain - age)
	}
	return nil
}

func (s *sender) setStalled(on bool) {
	if on == s.stalled {
		return
	}
	s.stalled = on
	s.l.log.Debug("link stalled (RFC 6940 §6.6.5)", "stalled", on, "rto", s.est.RTO())
	if f := s.l.onStall.Load(); f != nil {
		(*f)(on)
	}
}
