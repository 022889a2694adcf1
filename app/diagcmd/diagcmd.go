// Package diagcmd is `chordphone diag`: RFC 7851 overlay diagnostics from the command line.
// It runs the profile's phone as a RELOAD client (RFC 6940 §4.2) until it has joined, asks,
// prints the answer and leaves.
package diagcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/chordphone/chordphone/app/cli"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/diag"
)

// Usage is the command's synopsis (after "chordphone diag").
const Usage = "inspect|path NODE-ID|USER [phone flags: --profile --overlay --config --bootstrap --listen]"

// JoinTimeout bounds how long the command waits to join the overlay.
const JoinTimeout = 60 * time.Second

// Command runs `chordphone diag inspect|path TARGET [flags]` and returns the exit status.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || (args[0] != "inspect" && args[0] != "path") {
		fmt.Fprintf(stderr, "usage: chordphone diag %s\n", Usage)
		return 2
	}
	what, target := args[0], args[1]
	opts, err := cli.Parse(args[2:], stderr)
	var ue *cli.UsageError
	switch {
	case errors.Is(err, cli.ErrHelp), errors.Is(err, cli.ErrVersion):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "chordphone diag: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "chordphone diag: %v\n", err)
		return 1
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(opts.LogLevel))
	cfg := opts.Config
	cfg.Client = true // ask, route nothing for others
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: max(level, slog.LevelWarn)}))
	p, err := phone.New(cfg)
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(stderr, "chordphone diag: the phone is running with this profile; run diag with another --profile (a new one joins as its own node)\n")
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "chordphone diag: %v\n", err)
		return 1
	}
	if err := run(ctx, p, what, target, stdout); err != nil {
		fmt.Fprintf(stderr, "chordphone diag: %v\n", err)
		return 1
	}
	return 0
}

// run starts p, waits until it has joined, asks, and stops p.
func run(ctx context.Context, p *phone.Phone, what, target string, out io.Writer) error {
	events, unsubscribe := p.Subscribe(64)
	defer unsubscribe()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }() // owner: run; ends with ctx
	defer func() { cancel(); <-done }()
	if err := waitJoined(ctx, events); err != nil {
		return err
	}
	ask, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	if what == "inspect" {
		id, h, err := p.Inspect(ask, target)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: answered in %s over %d hops\n", name(target, id.String()), h.RTT.Round(time.Microsecond*100), h.Hops)
		h.Print(out)
		return nil
	}
	id, hops, err := p.PathTrack(ask, target)
	printPath(out, target, id.String(), hops)
	return err
}

func waitJoined(ctx context.Context, events <-chan phone.Event) error {
	timer := time.NewTimer(JoinTimeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return errors.New("the phone stopped before joining the overlay")
			}
			switch e.Kind {
			case phone.EventJoined:
				return nil
			case phone.EventError:
				return fmt.Errorf("%s (%s)", e.Message, e.Code)
			}
		case <-timer.C:
			return fmt.Errorf("could not join the overlay within %v; check --overlay, --config or --bootstrap", JoinTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func printPath(out io.Writer, target, id string, hops []diag.Hop) {
	fmt.Fprintf(out, "path to %s: %d hops\n", name(target, id), len(hops))
	for i, h := range hops {
		fmt.Fprintf(out, "%3d  %s  %8s\n", i+1, h.Node, h.RTT.Round(time.Microsecond*100))
	}
}

// name is "USER (NODE-ID)", or the Node-ID when that was the target.
func name(target, id string) string {
	if target == id {
		return id
	}
	return target + " (" + id + ")"
}
