// Command chordsim runs the CHORD-RELOAD simulation and prints its figures as JSON.
//
//	go run ./overlay/sim/cmd/chordsim -n 1000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/chordphone/chordphone/overlay/sim"
)

func main() {
	var p sim.Params
	flag.IntVar(&p.N, "n", 100, "number of peers")
	flag.Uint64Var(&p.Seed, "seed", 1, "random seed")
	flag.Float64Var(&p.TimeScale, "scale", 100, "divide the RFC intervals and the churn half-life by this")
	flag.DurationVar(&p.ReliabilityTimer, "reliability", 500*time.Millisecond, "overlay-reliability-timer")
	flag.IntVar(&p.Lookups, "lookups", 1000, "lookups per measurement")
	flag.Float64Var(&p.KillFraction, "kill", 0.2, "fraction killed at once (negative: skip)")
	flag.DurationVar(&p.ChurnDuration, "churn", 30*time.Minute, "simulated duration of continuous churn (negative: skip)")
	flag.DurationVar(&p.HalfLife, "half-life", 30*time.Minute, "simulated peer half-life under churn")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	flag.Parse()
	if !*quiet {
		p.Progress = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := sim.Run(ctx, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chordsim:", err)
		os.Exit(1)
	}
	e := json.NewEncoder(os.Stdout)
	e.SetIndent("", "  ")
	e.Encode(r)
}
