package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/chordphone/chordphone/overlay/sim"
)

// Usage lists the benches.
const Usage = `Usage: chordphone bench KIND [flags]

  overlay   CHORD-RELOAD simulation in one process (same node code, in-memory links):
            lookup success, hops, maintenance traffic, convergence, churn repair
  calls     call setup in a loopback overlay of headless processes:
            dial to ringing and dial to answered, median and p95; with --wan DELAY, on an
            emulated wide-area network (needs root), also dial to first audio
  idle      idle cost of storing peers in a loopback overlay of headless processes:
            CPU per peer as a fraction of one core, maintenance bytes per second
  presence  extra overlay traffic of following contacts' presence (one round of lookups
            against the overlay's own traffic), as bytes per second at rest

Each prints its figures as JSON on stdout. "chordphone bench KIND --help" lists the flags.
`

// Main runs `chordphone bench ARGS`.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, Usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "overlay":
		return Overlay(ctx, args[1:], stdout, stderr)
	case "calls":
		return Calls(ctx, args[1:], stdout, stderr)
	case "idle":
		return Idle(ctx, args[1:], stdout, stderr)
	case "presence":
		return Presence(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "chordphone bench: unknown bench %q\n\n%s", args[0], Usage)
	return 2
}

// Overlay runs the CHORD-RELOAD simulation (overlay/sim) and prints its report.
func Overlay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var p sim.Params
	fs := flag.NewFlagSet("bench overlay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.N, "peers", 100, "number of peers")
	fs.Uint64Var(&p.Seed, "seed", 1, "random seed")
	fs.Float64Var(&p.TimeScale, "scale", 100, "divide the RFC intervals and the churn half-life by this")
	fs.DurationVar(&p.ReliabilityTimer, "reliability", 500*time.Millisecond, "overlay-reliability-timer")
	fs.IntVar(&p.Lookups, "lookups", 1000, "lookups per measurement")
	fs.Float64Var(&p.KillFraction, "kill", 0.2, "fraction of peers killed at once (negative: skip)")
	fs.DurationVar(&p.ChurnDuration, "churn", 30*time.Minute, "simulated duration of continuous churn (negative: skip)")
	fs.DurationVar(&p.HalfLife, "half-life", 30*time.Minute, "simulated peer half-life under churn")
	fs.StringVar(&p.Security, "security", sim.SecurityECDSA, "message signatures: ecdsa-p256, rsa-2048 or none")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*quiet {
		p.Progress = func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	}
	r, err := sim.Run(ctx, p)
	if err != nil {
		fmt.Fprintf(stderr, "bench overlay: %v\n", err)
		return 1
	}
	return printJSON(stdout, r)
}

func printJSON(w io.Writer, v any) int {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if err := e.Encode(v); err != nil {
		return 1
	}
	return 0
}
