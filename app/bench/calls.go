package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/internal/wanemu"
	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
)

// CallsReport is what `chordphone bench calls` prints.
type CallsReport struct {
	Peers            int     `json:"peers"`
	Calls            int     `json:"calls"`
	Failed           int     `json:"failed"`
	RingingMedianMs  float64 `json:"dial_to_ringing_median_ms"`
	RingingP95Ms     float64 `json:"dial_to_ringing_p95_ms"`
	AnsweredMedianMs float64 `json:"dial_to_answered_median_ms"`
	AnsweredP95Ms    float64 `json:"dial_to_answered_p95_ms"`
	JoinSeconds      float64 `json:"overlay_join_seconds"`
	// With --wan: the emulated network, dial to the first audio packet received, and
	// dial-to-ringing's median in round trips of the emulated network.
	WAN                *WANParams `json:"wan,omitempty"`
	FirstAudioMedianMs float64    `json:"dial_to_first_audio_median_ms,omitempty"`
	FirstAudioP95Ms    float64    `json:"dial_to_first_audio_p95_ms,omitempty"`
	RingingRoundTrips  float64    `json:"dial_to_ringing_median_round_trips,omitempty"`
}

// WANParams describe the emulated wide-area network of `bench calls --wan`.
type WANParams struct {
	OneWayMs float64 `json:"one_way_delay_ms"`
	JitterMs float64 `json:"jitter_ms"`
	Loss     float64 `json:"loss"`
}

// Calls measures call setup: a loopback overlay of storing peers plus alice and bob (bob
// answers automatically); alice calls bob n times and hangs up after each answer.
func Calls(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	peers := fs.Int("peers", 20, "overlay size, including the two phones")
	calls := fs.Int("calls", 50, "number of calls")
	var p wanemu.Params
	fs.DurationVar(&p.Delay, "wan", 0, "one-way delay of an emulated wide-area network: every process in its own network namespace behind a delaying router (needs root); 0: loopback")
	fs.DurationVar(&p.Jitter, "jitter", 0, "with --wan: each packet's delay varies by up to this much either way")
	fs.Float64Var(&p.Loss, "loss", 0, "with --wan: fraction of packets lost, 0..1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := runCalls(ctx, *peers, *calls, p, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench calls: %v\n", err)
		return 1
	}
	return printJSON(stdout, r)
}

func runCalls(ctx context.Context, peers, calls int, wp wanemu.Params, progress io.Writer) (*CallsReport, error) {
	if peers < 3 {
		return nil, fmt.Errorf("need at least 3 peers")
	}
	var wan *wanemu.Net
	if wp.Delay > 0 {
		var err error
		if wan, err = wanemu.New(peers, wp); err != nil {
			return nil, fmt.Errorf("emulated wide-area network: %w", err)
		}
		defer wan.Close() // after the processes stop (deferred later, run earlier)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "chordphone-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	in := filepath.Join(dir, "signal.wav")
	if err := audio.SaveWAV(in, analysis.TestSignal(audio.SampleRate, audio.SampleRate, 1)); err != nil {
		return nil, err
	}
	members := make([]member, peers)
	for i := range members {
		members[i] = member{name: fmt.Sprintf("peer%02d", i), ready: "joined"}
	}
	members[peers-2] = member{name: "bob", ready: "registered",
		args: []string{"--user", "bob", "--auto-answer", "--audio-in", in, "--audio-out", filepath.Join(dir, "bob-out.wav")}}
	members[peers-1] = member{name: "alice", ready: "registered",
		args: []string{"--user", "alice", "--audio-in", in, "--audio-out", filepath.Join(dir, "alice-out.wav")}}
	if wan != nil {
		for i := range members {
			members[i].ns, members[i].addr = wan.Namespaces[i], wan.Addrs[i].String()
		}
	}
	start := time.Now()
	procs, err := startOverlay(ctx, exe, dir, "bench.test", members)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	r := &CallsReport{Peers: peers, Calls: calls, JoinSeconds: time.Since(start).Seconds()}
	if wan != nil {
		r.WAN = &WANParams{OneWayMs: ms(wp.Delay), JitterMs: ms(wp.Jitter), Loss: wp.Loss}
	}
	fmt.Fprintf(progress, "bench calls: %d peers joined in %.1f s\n", peers, r.JoinSeconds)
	bob, alice := procs[peers-2], procs[peers-1]
	var ringing, answered, audio []float64
	for i := 0; i < calls; i++ {
		t0 := time.Now()
		if err := alice.send("call bob"); err != nil {
			return nil, err
		}
		_, tr, err := alice.wait("ringing", 20*time.Second)
		if err == nil {
			var ta time.Time
			if _, ta, err = alice.wait("answered", 20*time.Second); err == nil {
				ringing = append(ringing, ms(tr.Sub(t0)))
				answered = append(answered, ms(ta.Sub(t0)))
			}
			if err == nil && wan != nil {
				var tf time.Time
				if tf, err = firstAudio(alice, 20*time.Second); err == nil {
					audio = append(audio, ms(tf.Sub(t0)))
				}
			}
		}
		if err != nil {
			r.Failed++
			fmt.Fprintf(progress, "bench calls: call %d: %v\n", i+1, err)
		}
		_ = alice.send("hangup")
		if _, _, err := alice.wait("hangup", 20*time.Second); err != nil {
			return nil, err
		}
		if _, _, err := bob.wait("hangup", 20*time.Second); err != nil {
			return nil, err
		}
	}
	r.RingingMedianMs, r.RingingP95Ms = quantile(ringing, 0.5), quantile(ringing, 0.95)
	r.AnsweredMedianMs, r.AnsweredP95Ms = quantile(answered, 0.5), quantile(answered, 0.95)
	if wan != nil {
		r.FirstAudioMedianMs, r.FirstAudioP95Ms = quantile(audio, 0.5), quantile(audio, 0.95)
		r.RingingRoundTrips = r.RingingMedianMs / ms(2*wp.Delay)
	}
	return r, nil
}

// firstAudio asks p's status until its call has received an audio packet and returns when it
// saw that (late by at most one status exchange with the process, well under a millisecond
// on an idle machine).
func firstAudio(p *proc, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := p.send("status"); err != nil {
			return time.Time{}, err
		}
		st, t, err := p.wait("status", timeout)
		if err != nil {
			return time.Time{}, err
		}
		var s struct {
			Calls []phone.CallInfo `json:"calls"`
		}
		if b, err := json.Marshal(st); err == nil && json.Unmarshal(b, &s) == nil {
			for _, c := range s.Calls {
				if c.Stats != nil && c.Stats.Received > 0 {
					return t, nil
				}
			}
		}
	}
	return time.Time{}, fmt.Errorf("%s: no audio received within %v", p.name, timeout)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quantile returns the q-quantile of v (nearest rank).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
