package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/netsim"
	"github.com/chordphone/chordphone/media/opuscodec"
	"github.com/chordphone/chordphone/media/pipeline"
)

type simResult struct {
	corr    float64 // median windowed correlation
	snr     float64 // dB, from corr
	latency time.Duration
	res     netsim.Result
}

// simulate sends seconds of the test signal through Sender -> netsim ->
// Receiver and measures how well it survived.
func simulate(tb testing.TB, cfg netsim.Config, seconds int) simResult {
	tb.Helper()
	sig := analysis.TestSignal(audio.SampleRate*seconds, audio.SampleRate, 11)
	snd, err := pipeline.NewSender(pipeline.SenderConfig{Source: audio.NewSampleSource(nil, audio.WAVSourceOptions{})})
	if err != nil {
		tb.Fatal(err)
	}
	rcv, err := pipeline.NewReceiver(pipeline.ReceiverConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := netsim.Run(cfg, snd, rcv, sig, 15)
	if err != nil {
		tb.Fatal(err)
	}
	corrs, lags := analysis.WindowCorrelations(sig, res.Output, audio.SampleRate/2, audio.SampleRate/2, audio.SampleRate/2)
	c := analysis.Median(corrs)
	lagsF := make([]float64, len(lags))
	for i, l := range lags {
		lagsF[i] = float64(l)
	}
	return simResult{corr: c, snr: analysis.CorrToSNR(c), latency: res.Latency(int(analysis.Median(lagsF))), res: res}
}

func (r simResult) String() string {
	j := r.res.Jitter
	return fmt.Sprintf("corr %.3f SNR %.1f dB latency %v | lost %d/%d, fec %d, concealed %d, late %d, dropped %d, underruns %d, target %v",
		r.corr, r.snr, r.latency, r.res.Lost, r.res.Sent, j.FECRecovered, j.Concealed, j.Late, j.Dropped, j.Underruns, j.Target)
}

// The pipeline keeps the signal under 5% loss and 30 ms jitter; the SNR is
// compared with the codec alone (no loss, no jitter).
func TestPipelineKeepsSignalUnderLossAndJitter(t *testing.T) {
	clean := simulate(t, netsim.Config{Seed: 1}, 6)
	lossy := simulate(t, netsim.Config{Loss: 0.05, Jitter: 30 * time.Millisecond, BaseDelay: 5 * time.Millisecond, Seed: 1}, 6)
	t.Logf("codec alone:            %v", clean)
	t.Logf("5%% loss, 30 ms jitter:  %v", lossy)
	if clean.corr < 0.93 {
		t.Fatalf("codec alone correlation %.3f < 0.93", clean.corr)
	}
	if lossy.corr < 0.85 {
		t.Fatalf("correlation under loss %.3f < 0.85", lossy.corr)
	}
	if lossy.res.Jitter.FECRecovered == 0 {
		t.Fatal("no frame was recovered from in-band FEC")
	}
	if lossy.res.Jitter.Target < 40*time.Millisecond || lossy.res.Jitter.Target > 200*time.Millisecond {
		t.Fatalf("jitter buffer target %v does not follow 30 ms of jitter", lossy.res.Jitter.Target)
	}
}

// Benchmark figures (quality and latency are deterministic; reported as metrics):
//
//	go test ./media/pipeline -run XXX -bench Quality -benchtime 1x
func BenchmarkQuality(b *testing.B) {
	b.Run("codec-alone", func(b *testing.B) {
		var r simResult
		for range b.N {
			r = simulate(b, netsim.Config{Seed: 2}, 20)
		}
		b.ReportMetric(r.corr, "corr")
		b.ReportMetric(r.snr, "SNR-dB")
		b.Logf("%v", r)
	})
	for _, loss := range []float64{0, 0.05, 0.10} {
		b.Run(fmt.Sprintf("loss=%.0f%%,jitter=30ms", loss*100), func(b *testing.B) {
			var r simResult
			for range b.N {
				r = simulate(b, netsim.Config{Loss: loss, Jitter: 30 * time.Millisecond, BaseDelay: 5 * time.Millisecond, Seed: 2}, 20)
			}
			b.ReportMetric(r.corr, "corr")
			b.ReportMetric(r.snr, "SNR-dB")
			b.ReportMetric(float64(r.latency.Microseconds())/1000, "latency-ms")
			b.Logf("%v", r)
		})
	}
}

// Added latency of the pipeline excluding devices and network: frame
// buffering, Opus look-ahead, jitter buffer, playout phase (half a frame).
//
//	go test ./media/pipeline -run XXX -bench Latency -benchtime 1x
func BenchmarkLatency(b *testing.B) {
	for _, jit := range []time.Duration{0, 30 * time.Millisecond} {
		b.Run(fmt.Sprintf("jitter=%v", jit), func(b *testing.B) {
			var r simResult
			for range b.N {
				r = simulate(b, netsim.Config{Jitter: jit, Seed: 3}, 10)
			}
			b.ReportMetric(float64(r.latency.Microseconds())/1000, "latency-ms")
			b.Logf("%v", r)
		})
	}
}

// CPU of one call's audio processing: per 20 ms frame, encode one frame and
// decode one through the jitter buffer. ns/op divided by 20 ms is the
// fraction of one core (reported as core-%).
//
//	go test ./media/pipeline -run XXX -bench CPU
func BenchmarkCPUPerFrame(b *testing.B) {
	for _, cx := range []int{0, 3, 10} {
		name := fmt.Sprintf("complexity=%d", cx)
		if cx == 0 {
			name = "complexity=default"
		}
		b.Run(name, func(b *testing.B) {
			sig := analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, 5)
			snd, _ := pipeline.NewSender(pipeline.SenderConfig{Source: audio.NewSampleSource(nil, audio.WAVSourceOptions{}), Opus: opuscodec.Config{Complexity: cx}})
			rcv, _ := pipeline.NewReceiver(pipeline.ReceiverConfig{})
			out := make([]int16, audio.FrameSamples)
			frames := len(sig) / audio.FrameSamples
			b.ResetTimer()
			for i := range b.N {
				k := i % frames
				pkt, err := snd.Encode(sig[k*audio.FrameSamples : (k+1)*audio.FrameSamples])
				if err != nil {
					b.Fatal(err)
				}
				rcv.Push(jitterPacket(i, pkt), netsim.Epoch.Add(time.Duration(i)*audio.FrameDuration))
				rcv.Next(out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(audio.FrameDuration.Nanoseconds())*100, "core-%")
		})
	}
}
