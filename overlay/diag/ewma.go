package diag

import (
	"context"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
)

// EWMA parameters of EWMA_BYTES_SENT and EWMA_BYTES_RCVD (RFC 7851 §5.3: exponentially
// weighted averages of the bytes per second): the rate over each interval is weighed in
// with EWMAAlpha.
const (
	EWMAInterval = 5 * time.Second
	EWMAAlpha    = 0.25
)

// ewma averages a node's byte counters.
type ewma struct {
	mu           sync.Mutex
	sent, rcvd   float64 // bytes per second
	lastS, lastR uint64
	last         time.Time
}

// run samples n's counters every EWMAInterval until ctx ends.
func (e *ewma) run(ctx context.Context, n *node.Node) {
	st := n.Stats()
	e.mu.Lock()
	e.lastS, e.lastR, e.last = st.BytesSent, st.BytesReceived, time.Now()
	e.mu.Unlock()
	t := time.NewTicker(EWMAInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := n.Stats()
			e.sample(now, st.BytesSent, st.BytesReceived)
		}
	}
}

func (e *ewma) sample(now time.Time, sent, rcvd uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dt := now.Sub(e.last).Seconds()
	if dt <= 0 {
		return
	}
	e.sent += EWMAAlpha * (float64(sent-e.lastS)/dt - e.sent)
	e.rcvd += EWMAAlpha * (float64(rcvd-e.lastR)/dt - e.rcvd)
	e.lastS, e.lastR, e.last = sent, rcvd, now
}

// rates returns the averages in bytes per second.
func (e *ewma) rates() (sent, rcvd uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return uint32(min(e.sent, 1<<32-1)), uint32(min(e.rcvd, 1<<32-1))
}
