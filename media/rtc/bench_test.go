package rtc_test

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPU per call: two Sessions on loopback exchange audio in real time for
// 5 s (WAV sources and sinks paced at 20 ms, Opus, jitter buffer, SRTP,
// RTCP). The process's CPU time divided by wall time and by two (each phone
// runs one Session per call) is one phone's share of a core.
//
//	go test ./media/rtc -run XXX -bench CPU -benchtime 1x
func BenchmarkCPUPerCall(b *testing.B) {
	for range b.N {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tb := b
			a, c := newPeerTB(tb, 1), newPeerTB(tb, 2)
			connectTB(tb, ctx, a, c)
			cpu0, wall0 := cpuTime(), time.Now()
			timer := time.NewTimer(5 * time.Second)
			<-timer.C
			cpu, wall := cpuTime()-cpu0, time.Since(wall0)
			st := a.s.Stats()
			b.ReportMetric(float64(cpu)/float64(wall)/2*100, "core-%/call")
			b.ReportMetric(float64(st.PacketsReceived), "packets")
		}()
	}
}
