package sipcall

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCallSetup measures INVITE -> 180 -> 200 -> ACK and BYE -> 200 between two
// Endpoints over one DTLS connection on loopback (kept open: both ends serve it). It reports
// the median time to the 180 ("dial to ringing") and to the answer.
func BenchmarkCallSetup(b *testing.B) {
	quiet := func(s *Settings) { s.Keepalive = -1 }
	alice, bob := newPhone(b, "alice", quiet), newPhone(b, "bob", quiet)
	bob.ep.OnInvite(func(in *Incoming) {
		_ = in.Ringing()
		_ = in.Answer(context.Background(), []byte(answerSDP))
	})
	aConn, bConn := dtlsPair(b, nil)
	if err := bob.ep.Serve(bConn, "alice"); err != nil {
		b.Fatal(err)
	}
	if err := alice.ep.Serve(aConn, "bob"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var ringing, answered []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
		if err != nil {
			b.Fatal(err)
		}
		for r := range out.Responses() {
			if r.StatusCode == 180 {
				ringing = append(ringing, time.Since(start))
			}
		}
		if _, err := out.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		answered = append(answered, time.Since(start))
		if err := out.Bye(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(median(ringing).Microseconds())/1000, "ms-to-180")
	b.ReportMetric(float64(median(answered).Microseconds())/1000, "ms-to-200")
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	for i := range s { // small n: insertion sort
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}
