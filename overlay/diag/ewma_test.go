package diag

import (
	"testing"
	"time"
)

// TestEWMA: a steady 1000 B/s sent and 200 B/s received are weighed in with EWMAAlpha per
// interval and converge on the rates.
func TestEWMA(t *testing.T) {
	t0 := time.Unix(0, 0)
	e := ewma{last: t0}
	var sent, rcvd uint64
	for i := 1; i <= 40; i++ {
		sent, rcvd = sent+5000, rcvd+1000
		e.sample(t0.Add(time.Duration(i)*EWMAInterval), sent, rcvd)
		if i == 1 {
			if s, r := e.rates(); s != 1000*EWMAAlpha || r != 200*EWMAAlpha {
				t.Fatalf("after one interval: %d %d B/s", s, r)
			}
		}
	}
	if s, r := e.rates(); s < 995 || s > 1000 || r < 198 || r > 200 {
		t.Errorf("after 40 intervals: %d %d B/s, want about 1000 and 200", s, r)
	}
}
