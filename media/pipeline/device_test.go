package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/jitter"
	"github.com/chordphone/chordphone/media/netsim"
	"github.com/chordphone/chordphone/media/opuscodec"
	"github.com/chordphone/chordphone/media/pipeline"
	"github.com/chordphone/chordphone/media/pulsetest"
)

// Real devices: a signal played into the PulseAudio "microphone" is captured
// through PortAudio, encoded, carried over a simulated network with 5% loss
// and 30 ms jitter, jitter-buffered, decoded and played through PortAudio
// to the "speaker", where parec records it. The recording must still carry
// the signal; its SNR is reported against the codec alone.
func TestDevicePipelineUnderLossAndJitter(t *testing.T) {
	d := pulsetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sig := analysis.TestSignal(2*audio.SampleRate, audio.SampleRate, 21)
	stopMic, err := d.PlayToMic(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	defer stopMic()
	rec, err := d.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Generous device buffers: the test must pass on a loaded 2-core machine.
	capDev, err := audio.OpenCapture(audio.DeviceConfig{Latency: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer capDev.Close()
	playDev, err := audio.OpenPlayback(audio.DeviceConfig{Latency: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	snd, err := pipeline.NewSender(pipeline.SenderConfig{Source: capDev})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := pipeline.NewReceiver(pipeline.ReceiverConfig{Sink: playDev})
	if err != nil {
		t.Fatal(err)
	}
	// codec alone, for comparison
	enc, _ := opuscodec.NewEncoder(opuscodec.Config{})
	dec, _ := opuscodec.NewDecoder()

	link := netsim.NewLink(netsim.Config{Loss: 0.05, Jitter: 30 * time.Millisecond, BaseDelay: 5 * time.Millisecond, Seed: 7})
	var captured, clean []int16
	frame := make([]int16, audio.FrameSamples)
	out := make([]int16, audio.FrameSamples)
	started := false
	for k := 0; len(captured) < 6*audio.SampleRate; k++ {
		if k > 1000 {
			t.Fatal("the signal never arrived through capture")
		}
		if err := capDev.ReadFrame(ctx, frame); err != nil {
			t.Fatal(err)
		}
		if !started && analysis.RMS(frame) < 200 {
			continue // wait for pacat's signal to reach the microphone
		}
		started = true
		captured = append(captured, frame...)
		p, err := enc.Encode(frame)
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(p, out)
		clean = append(clean, out...)

		pkt, err := snd.Encode(frame)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Duration(k+1) * audio.FrameDuration
		link.Send(jitter.Packet{Seq: uint16(k), Timestamp: uint32(k * audio.FrameSamples), Payload: pkt}, at)
		link.Deliver(at+10*time.Millisecond, func(p jitter.Packet, at time.Duration) { rcv.Push(p, netsim.Epoch.Add(at)) })
		rcv.Next(out)
		if err := playDev.WriteFrame(out); err != nil {
			t.Fatal(err)
		}
	}
	playDev.Close() // drains what is queued
	got := rec.Stop()

	ref := append(append([]int16(nil), sig...), sig...)
	capC, _ := analysis.WindowCorrelations(ref, captured, audio.SampleRate/2, 0, 0)
	cleanC, _ := analysis.WindowCorrelations(captured, clean, audio.SampleRate/2, audio.SampleRate/2, audio.SampleRate/4)
	// Short windows, each aligned on its own: a playback underrun on a loaded
	// machine shifts everything after it, and only the window holding the
	// shift may suffer for it.
	gotC, gotD := analysis.WindowCorrelations(captured, got, audio.SampleRate/10, audio.SampleRate, audio.SampleRate)
	js := rcv.Jitter()
	t.Logf("recorded %d samples for %d captured; per-window corr %.2f delays %v; playback underruns %d, capture overruns %d",
		len(got), len(captured), gotC, gotD, playDev.Underruns(), capDev.Overruns())
	t.Logf("captured vs played into the mic: median corr %.3f", analysis.Median(capC))
	t.Logf("codec alone:                    median corr %.3f, SNR %.1f dB", analysis.Median(cleanC), analysis.CorrToSNR(analysis.Median(cleanC)))
	t.Logf("devices+5%% loss+30 ms jitter:   median corr %.3f, SNR %.1f dB (windows %d; lost %d/%d, fec %d, concealed %d, late %d)",
		analysis.Median(gotC), analysis.CorrToSNR(analysis.Median(gotC)), len(gotC), link.Lost, link.Sent, js.FECRecovered, js.Concealed, js.Late)
	if len(gotC) < 25 || analysis.Median(gotC) < 0.8 {
		// compared with what was captured, so glitches of pacat feeding
		// the microphone on a loaded machine do not count
		t.Fatalf("speaker recording lost the signal: corr %.3f over %d windows", analysis.Median(gotC), len(gotC))
	}
}
