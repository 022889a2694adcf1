package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

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
}

// Calls measures call setup: a loopback overlay of storing peers plus alice and bob (bob
// answers automatically); alice calls bob n times and hangs up after each answer.
func Calls(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	peers := fs.Int("peers", 20, "overlay size, including the two phones")
	calls := fs.Int("calls", 50, "number of calls")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := runCalls(ctx, *peers, *calls, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench calls: %v\n", err)
		return 1
	}
	return printJSON(stdout, r)
}

func runCalls(ctx context.Context, peers, calls int, progress io.Writer) (*CallsReport, error) {
	if peers < 3 {
		return nil, fmt.Errorf("need at least 3 peers")
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
	fmt.Fprintf(progress, "bench calls: %d peers joined in %.1f s\n", peers, r.JoinSeconds)
	bob, alice := procs[peers-2], procs[peers-1]
	var ringing, answered []float64
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
	return r, nil
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
