package rtc_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/rtc"
)

type peer struct {
	s    *rtc.Session
	src  *audio.WAVSource
	sink *audio.WAVSink
	out  string
	sig  []int16
}

func newPeer(t *testing.T, seed uint32) *peer { return newPeerTB(t, seed) }

func newPeerTB(t testing.TB, seed uint32) *peer {
	t.Helper()
	p := &peer{sig: analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, seed)}
	p.src = audio.NewSampleSource(p.sig, audio.WAVSourceOptions{Loop: true})
	p.out = filepath.Join(t.TempDir(), "out.wav")
	var err error
	if p.sink, err = audio.CreateWAVSink(p.out); err != nil {
		t.Fatal(err)
	}
	p.s, err = rtc.NewSession(rtc.SessionConfig{Source: p.src, Sink: p.sink, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.s.Close(); p.sink.Close() })
	return p
}

// connect negotiates a call between a (offerer) and b (answerer) and waits
// until both report EventConnected.
func connect(t *testing.T, ctx context.Context, a, b *peer) { connectTB(t, ctx, a, b) }

func connectTB(t testing.TB, ctx context.Context, a, b *peer) {
	t.Helper()
	offer, err := a.s.CreateOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer, "typ host") || !strings.Contains(offer, "opus/48000/2") || !strings.Contains(offer, "telephone-event/48000") {
		t.Fatalf("offer lacks candidates or codecs:\n%s", offer)
	}
	answer, err := b.s.AcceptOffer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a.s, rtc.EventConnected)
	waitEvent(t, ctx, b.s, rtc.EventConnected)
}

func waitEvent(t testing.TB, ctx context.Context, s *rtc.Session, want rtc.EventType) rtc.Event {
	t.Helper()
	for {
		select {
		case e, ok := <-s.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", want)
			}
			if e.Type == want {
				return e
			}
			if e.Type == rtc.EventFailed {
				t.Fatalf("session failed while waiting for %v: %v", want, e.Err)
			}
		case <-ctx.Done():
			t.Fatalf("no %v event: %v", want, ctx.Err())
		}
	}
}

// waitPackets waits until s has received at least n packets (an event-free
// wait: it polls Stats, which is what a person watching the call sees).
func waitPackets(t *testing.T, ctx context.Context, s *rtc.Session, n uint64) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.Stats().PacketsReceived < n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("only %d of %d packets received", s.Stats().PacketsReceived, n)
		}
	}
}

func waitFrames(t *testing.T, ctx context.Context, s *rtc.Session, n uint64) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.Stats().FramesIn < n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("only %d of %d frames read", s.Stats().FramesIn, n)
		}
	}
}

// checkArrived verifies that the sender's looping signal is present in the
// receiver's output: windows of 0.25 s after the start-up are aligned against
// the reference and must correlate at least 0.9 (median over windows).
func checkArrived(t *testing.T, name string, sent []int16, outPath string) float64 {
	t.Helper()
	got, err := audio.LoadWAV(outPath)
	if err != nil {
		t.Fatal(err)
	}
	ref := append(append([]int16(nil), sent...), sent...) // looped twice
	// Short windows: on a loaded machine the jitter buffer may stretch or
	// drop a frame now and then; only the windows holding such a seam
	// correlate poorly, and the median ignores them.
	win := audio.SampleRate / 4
	var corrs []float64
	for start := audio.SampleRate / 2; start+win <= len(got); start += win {
		seg := got[start : start+win]
		if analysis.RMS(seg) < 100 {
			continue
		}
		_, c := analysis.Align(seg, ref, len(sent))
		corrs = append(corrs, c)
	}
	if len(corrs) < 6 {
		t.Fatalf("%s: only %d non-silent windows in %d samples", name, len(corrs), len(got))
	}
	sorted := append([]float64(nil), corrs...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] < sorted[i] {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	med := sorted[len(sorted)/2]
	t.Logf("%s: correlation per 0.25 s window %.3f (median %.3f)", name, corrs, med)
	if med < 0.9 {
		t.Fatalf("%s: median aligned correlation %.3f < 0.9", name, med)
	}
	return med
}

func TestLoopbackCallCarriesAudioBothWays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newPeer(t, 1), newPeer(t, 2)
	connect(t, ctx, a, b)
	waitPackets(t, ctx, a.s, 200) // 4 s of audio
	waitPackets(t, ctx, b.s, 200)
	sa, sb := a.s.Stats(), b.s.Stats()
	t.Logf("a: %+v", sa)
	t.Logf("b: %+v", sb)
	if sa.Codec != "opus/48000/2" || sa.PacketsSent == 0 || sb.PacketsSent == 0 {
		t.Fatalf("bad stats: %+v / %+v", sa, sb)
	}
	if sa.Relayed || !strings.HasPrefix(sa.LocalCandidate, "host 127.0.0.1") {
		t.Fatalf("unexpected candidate pair %q relayed=%v", sa.LocalCandidate, sa.Relayed)
	}
	if sa.InputLevel < -40 {
		t.Fatalf("input level %.1f dBFS while the signal plays", sa.InputLevel)
	}
	if err := a.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}
	a.sink.Close()
	b.sink.Close()
	checkArrived(t, "a->b", a.sig, b.out)
	checkArrived(t, "b->a", b.sig, a.out)
}

func TestDTMFRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newPeer(t, 3), newPeer(t, 4)
	connect(t, ctx, a, b)
	if err := a.s.SendDTMF("x"); err == nil {
		t.Fatal("invalid digit accepted")
	}
	const digits = "159*#0D"
	if err := a.s.SendDTMF(digits); err != nil {
		t.Fatal(err)
	}
	var got []rune
	for len(got) < len(digits) {
		e := waitEvent(t, ctx, b.s, rtc.EventDTMF)
		got = append(got, e.Digit)
	}
	if string(got) != digits {
		t.Fatalf("received DTMF %q, sent %q", string(got), digits)
	}
}

func TestHoldAndResumeByReoffer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newPeer(t, 5), newPeer(t, 6)
	connect(t, ctx, a, b)
	waitPackets(t, ctx, b.s, 10)

	a.s.SetHold(true)
	reoffer, err := a.s.CreateOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reoffer, "a=sendonly") {
		t.Fatalf("hold offer is not sendonly:\n%s", reoffer)
	}
	answer, err := b.s.AcceptOffer(ctx, reoffer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "a=recvonly") {
		t.Fatalf("answer to hold is not recvonly:\n%s", answer)
	}
	waitEvent(t, ctx, b.s, rtc.EventRemoteHold)
	if err := a.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	if st := b.s.Stats(); !st.RemoteHeld {
		t.Fatal("b does not see itself held")
	}
	// While held b sends nothing: its packet count stays put while its
	// microphone keeps producing frames.
	waitFrames(t, ctx, b.s, b.s.Stats().FramesIn+2) // let an in-flight packet go
	sentB := b.s.Stats().PacketsSent
	recvB := b.s.Stats().PacketsReceived
	waitFrames(t, ctx, b.s, b.s.Stats().FramesIn+25)
	if now := b.s.Stats().PacketsSent; now != sentB {
		t.Fatalf("held party sent %d packets", now-sentB)
	}
	// Resume.
	a.s.SetHold(false)
	reoffer, err = a.s.CreateOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answer, err = b.s.AcceptOffer(ctx, reoffer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "a=sendrecv") {
		t.Fatalf("answer to resume is not sendrecv:\n%s", answer)
	}
	waitEvent(t, ctx, b.s, rtc.EventRemoteResume)
	if err := a.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	waitPackets(t, ctx, b.s, recvB+25)
	waitPackets(t, ctx, a.s, a.s.Stats().PacketsReceived+25)
	if b.s.Stats().PacketsSent <= sentB {
		t.Fatal("b did not send after resume")
	}
}

func TestBadSDPGivesClearError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newPeer(t, 7)
	for name, sdp := range map[string]string{
		"empty":   "",
		"garbage": "this is not SDP",
		"no audio": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n",
		"no opus": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
			"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n",
	} {
		_, err := a.s.AcceptOffer(ctx, sdp)
		if !errors.Is(err, rtc.ErrBadSDP) {
			t.Errorf("%s: error %v does not wrap ErrBadSDP", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if err := a.s.SetAnswer("v=0\r\n"); !errors.Is(err, rtc.ErrBadSDP) {
		t.Errorf("bad answer: %v", err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newPeer(t, 8), newPeer(t, 9)
	connect(t, ctx, a, b)
	if err := a.s.Close(); err != nil {
		t.Fatal(err)
	}
	for range a.s.Events() {
	}
	if _, err := a.s.CreateOffer(ctx); err == nil {
		t.Fatal("offer after Close")
	}
	if err := a.s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// waitUntil polls cond every 20 ms until it holds or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}

func TestMuteGainAndLevelMeter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newPeer(t, 10), newPeer(t, 11)
	connect(t, ctx, a, b)
	waitUntil(t, ctx, "b hears a", func() bool { return b.s.Stats().OutputLevel > -40 })
	a.s.SetMute(true)
	waitUntil(t, ctx, "b hears silence after a muted", func() bool { return b.s.Stats().OutputLevel < -70 })
	if st := a.s.Stats(); !st.Muted || st.InputLevel < -40 {
		t.Fatalf("while muted: muted=%v input level %.1f dBFS (the meter must still show the microphone)", st.Muted, st.InputLevel)
	}
	a.s.SetMute(false)
	waitUntil(t, ctx, "b hears a again", func() bool { return b.s.Stats().OutputLevel > -40 })
	a.s.SetInputGain(-60)
	waitUntil(t, ctx, "input gain -60 dB lowers the meter", func() bool { return a.s.Stats().InputLevel < -70 })
	a.s.SetInputGain(0)
	b.s.SetOutputGain(-60)
	waitUntil(t, ctx, "output gain -60 dB", func() bool { return b.s.Stats().OutputLevel < -70 && a.s.Stats().InputLevel > -40 })
}

// Close ends every goroutine the sessions started (pion's included).
func TestNoGoroutineLeftAfterClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	a, b := newPeer(t, 12), newPeer(t, 13)
	connect(t, ctx, a, b)
	waitPackets(t, ctx, b.s, 10)
	if err := a.s.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, b.s, rtc.EventDTMF)
	a.s.Close()
	b.s.Close()
	waitUntil(t, ctx, "goroutines end", func() bool { return runtime.NumGoroutine() <= before })
}
