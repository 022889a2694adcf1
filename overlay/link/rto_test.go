package link

import (
	"testing"
	"time"
)

func TestRTOEstimatorFollowsRFC6298(t *testing.T) {
	ms := time.Millisecond
	e := newRTOEstimator(500*ms, 100*ms)
	if e.RTO() != 500*ms || e.SRTT() != 0 {
		t.Fatalf("before any sample: rto %v srtt %v, want 500ms and 0", e.RTO(), e.SRTT())
	}
	// §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR.
	e.sample(80 * ms)
	if e.SRTT() != 80*ms || e.rttvar != 40*ms || e.RTO() != 240*ms {
		t.Fatalf("first sample: srtt %v rttvar %v rto %v, want 80ms 40ms 240ms", e.SRTT(), e.rttvar, e.RTO())
	}
	// §2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|, then SRTT = 7/8 SRTT + 1/8 R'.
	e.sample(40 * ms)
	if e.rttvar != 40*ms || e.SRTT() != 75*ms || e.RTO() != 235*ms {
		t.Fatalf("second sample: srtt %v rttvar %v rto %v, want 75ms 40ms 235ms", e.SRTT(), e.rttvar, e.RTO())
	}
}

func TestRTOEstimatorBounds(t *testing.T) {
	ms := time.Millisecond
	e := newRTOEstimator(500*ms, 100*ms)
	for range 50 {
		e.sample(ms) // a fast LAN: the estimate would fall to a few ms
	}
	if e.RTO() != 100*ms {
		t.Errorf("rto %v on a 1 ms path, want the 100 ms floor", e.RTO())
	}
	e = newRTOEstimator(500*ms, 0)
	for range 50 {
		e.sample(10 * ms) // RTTVAR decays to 0: G = 1 ms keeps RTO above SRTT
	}
	if e.RTO() <= e.SRTT() {
		t.Errorf("rto %v not above srtt %v: the clock granularity term is missing", e.RTO(), e.SRTT())
	}
	e.sample(2 * time.Minute)
	if e.RTO() != maxRTO {
		t.Errorf("rto %v after a 2 min sample, want the %v ceiling", e.RTO(), maxRTO)
	}
}
