package rtc_test

import (
	"context"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/rtc"
)

var ufragRE = regexp.MustCompile(`a=ice-ufrag:(\S+)`)

// An ICE restart (new credentials in a re-offer, RFC 8445 §9) during a call gathers again
// and checks a new pair while audio goes on: the offer and answer carry new ufrags and the
// callee's output has no gap longer than a few frames.
func TestICERestartKeepsAudio(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newPeer(t, 7), newPeer(t, 8)
	connect(t, ctx, a, b)
	waitPackets(t, ctx, b.s, 50)
	// The call's media goes out from loopback: removing that address concerns it (the phone
	// restarts ICE at once), removing another does not.
	if !a.s.UsesAddr([]netip.Addr{netip.MustParseAddr("127.0.0.1")}) || a.s.UsesAddr([]netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("UsesAddr wrong for the selected pair %+v", a.s.Stats().LocalCandidate)
	}
	// A plain re-offer keeps the credentials (no restart).
	plain, err := a.s.CreateOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := b.s.AcceptOffer(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.SetAnswer(ans); err != nil {
		t.Fatal(err)
	}
	before := ufragRE.FindStringSubmatch(plain)
	sig := analysis.TestSignal(audio.SampleRate, audio.SampleRate, 7)
	t.Logf("longest silence in the sent signal itself: %v", longestSilence(sig))

	offer, err := a.s.CreateRestartOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := ufragRE.FindStringSubmatch(offer)
	if got == nil || before == nil || got[1] == before[1] {
		t.Fatalf("restart offer ufrag %v, before %v", got, before)
	}
	answer, err := b.s.AcceptOffer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	// The restart's new pair says so to the side that restarted, although the connection
	// never went down: it may have restarted because it knew its address was gone.
	waitEvent(t, ctx, a.s, rtc.EventReconnected)
	n := b.s.Stats().PacketsReceived
	waitPackets(t, ctx, b.s, n+100)
	waitPackets(t, ctx, a.s, a.s.Stats().PacketsReceived+50)
	a.s.Close()
	b.s.Close()
	b.sink.Close()
	checkArrived(t, "a -> b across the restart", a.sig, b.out)
	out, err := audio.LoadWAV(b.out)
	if err != nil {
		t.Fatal(err)
	}
	gap := longestSilence(out[audio.SampleRate/2:])
	t.Logf("longest silence in b's output after the start: %v", gap)
	if gap > 500*time.Millisecond {
		t.Fatalf("a gap of %v across the ICE restart", gap)
	}
}

// longestSilence is the longest run of silent 20 ms frames in samples.
func longestSilence(samples []int16) time.Duration {
	run, longest := 0, 0
	for i := 0; i+audio.FrameSamples <= len(samples); i += audio.FrameSamples {
		if analysis.RMS(samples[i:i+audio.FrameSamples]) < 30 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return time.Duration(longest) * audio.FrameDuration
}
