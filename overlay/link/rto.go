package link

import "time"

// maxRTO bounds the retransmission timeout from above (RFC 6298 §2.5 allows 60 s or more).
const maxRTO = 60 * time.Second

// rtoEstimator computes a link's retransmission timeout from round-trip samples: RFC 6298 §2
// with a clock granularity of one millisecond (RFC 6940 §6.6.3.1), bounded by min and
// maxRTO. Until the first sample the timeout is the initial one.
type rtoEstimator struct {
	srtt, rttvar time.Duration
	rto, min     time.Duration
}

func newRTOEstimator(initial, min time.Duration) rtoEstimator {
	return rtoEstimator{rto: initial, min: min}
}

// sample takes one round-trip measurement r (RFC 6298 §2.2, §2.3; Karn's rule, no samples
// from retransmitted messages, is the caller's).
func (e *rtoEstimator) sample(r time.Duration) {
	if e.srtt == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		diff := e.srtt - r
		if diff < 0 {
			diff = -diff
		}
		e.rttvar = (3*e.rttvar + diff) / 4 // beta = 1/4
		e.srtt = (7*e.srtt + r) / 8        // alpha = 1/8
	}
	k := max(4*e.rttvar, time.Millisecond) // max(G, K*RTTVAR), G = 1 ms
	e.rto = min(max(e.srtt+k, e.min), maxRTO)
}

// RTO is the current retransmission timeout.
func (e *rtoEstimator) RTO() time.Duration { return e.rto }

// SRTT is the smoothed round-trip time, 0 before the first sample.
func (e *rtoEstimator) SRTT() time.Duration { return e.srtt }
