package link

import (
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
)

// BenchmarkAttach measures an Attach on loopback from the start of candidate gathering to the
// first RELOAD message delivered over the new DTLS-UDP-SR link (ICE + DTLS + one message).
func BenchmarkAttach(b *testing.B) {
	pa := newPeer(b, "alice", nil)
	pb := newPeer(b, "bob", nil)
	pa.t.AddSTUNServer(addrOf(pb))
	pb.t.AddSTUNServer(addrOf(pa))
	msg := testMessage(b, 1, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx := ctxT(b, 20*time.Second)
		ra, rb := attach(ctx, b, pa, pb, 0, pb.id.NodeID(), pa.id.NodeID())
		if ra.err != nil || rb.err != nil {
			b.Fatal(ra.err, rb.err)
		}
		if err := ra.link.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		pb.rx.next(b, 10*time.Second)
		b.StopTimer()
		_ = ra.link.Close()
		<-rb.link.Done()
		b.StartTimer()
	}
}

// BenchmarkBootstrapDTLS measures a bootstrap link (DTLS handshake, no ICE) to first message.
func BenchmarkBootstrapDTLS(b *testing.B) { benchBootstrap(b, "") }

// BenchmarkBootstrapTLS is the same over TLS/TCP.
func BenchmarkBootstrapTLS(b *testing.B) { benchBootstrap(b, "tls://") }

func benchBootstrap(b *testing.B, scheme string) {
	pa := newPeer(b, "alice", nil)
	pb := newPeer(b, "bob", nil)
	msg := testMessage(b, 1, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx := ctxT(b, 20*time.Second)
		l, err := pa.t.Bootstrap(ctx, scheme+addrOf(pb))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		pb.rx.next(b, 10*time.Second)
		b.StopTimer()
		lb := pb.accepted(b)
		_ = l.Close()
		<-lb.Done()
		b.StartTimer()
	}
}

// BenchmarkThroughputDTLS sends small (≈200-byte) RELOAD messages one way over a bootstrap
// DTLS-UDP-SR link; msgs/s is the rate at which they are delivered, in order.
func BenchmarkThroughputDTLS(b *testing.B) { benchThroughput(b, "") }

// BenchmarkThroughputTLS is the same over TLS-TCP-FH.
func BenchmarkThroughputTLS(b *testing.B) { benchThroughput(b, "tls://") }

func benchThroughput(b *testing.B, scheme string) {
	pa := newPeer(b, "alice", nil)
	pb := newPeer(b, "bob", nil)
	ctx := ctxT(b, 10*time.Minute)
	l, err := pa.t.Bootstrap(ctx, scheme+addrOf(pb))
	if err != nil {
		b.Fatal(err)
	}
	var lb node.Link = pb.accepted(b)
	msg := testMessage(b, 1, 100)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			if err := l.Send(ctx, msg); err != nil {
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		select {
		case <-pb.rx.ch:
		case <-lb.Done():
			b.Fatal("link died")
		case <-time.After(30 * time.Second):
			b.Fatalf("stalled after %d messages", i)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	st := l.(*Link).Stats()
	b.ReportMetric(float64(st.Retransmissions), "retx")
}
