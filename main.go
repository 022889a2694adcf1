// Command chordphone is a softphone that is its own P2PSIP (RELOAD) peer.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chordphone/chordphone/app/bench"
	"github.com/chordphone/chordphone/app/cli"
	"github.com/chordphone/chordphone/app/diagcmd"
	"github.com/chordphone/chordphone/app/enrollcmd"
	"github.com/chordphone/chordphone/app/handoff"
	"github.com/chordphone/chordphone/app/headless"
	_ "github.com/chordphone/chordphone/app/locale" // before Fyne reads the locale (see there)
	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/sipadapter"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/ui"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && !enroll.IsInvitation(args[0]) {
		return subcommand(args)
	}
	opts, err := cli.Parse(args, os.Stdout)
	var ue *cli.UsageError
	switch {
	case errors.Is(err, cli.ErrHelp), errors.Is(err, cli.ErrVersion):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "chordphone: %v\nRun 'chordphone --help' for usage.\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "chordphone: %v\n", err)
		return 1
	}
	if opts.Invite != "" && opts.Headless {
		fmt.Fprintf(os.Stderr, "chordphone: a join link opens the desktop phone's dialog; without a window, enroll with: chordphone enroll --invite LINK --user NAME\n")
		return 2
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(opts.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := opts.Config
	cfg.Logger = log
	p, err := phone.New(cfg)
	if err != nil && opts.Invite != "" && errors.Is(err, store.ErrLocked) {
		// A link opened while the phone runs on this profile: the running phone takes it.
		if herr := handoff.Send(opts.Profile, opts.Invite); herr == nil {
			fmt.Fprintln(os.Stderr, "chordphone: the running phone shows the invitation")
			return 0
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chordphone: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.SIPAdapter == "" { // Settings → Peer may have chosen one
		opts.SIPAdapter, _, _ = p.Store().Setting(sipadapter.SettingListen)
	}
	if opts.SIPAdapter != "" {
		stopAdapter, err := sipadapter.Start(ctx, sipadapter.Config{Listen: opts.SIPAdapter, TLSListen: sipadapter.TLSAddress(opts.SIPAdapter),
			Profile: opts.Profile, Logger: log, Lines: &sipadapter.LineConfig{Phone: p, Config: opts.Config.Config}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "chordphone: %v (choose another --sip-adapter address)\n", err)
			return 1
		}
		defer stopAdapter()
	}
	if opts.Headless {
		err = headless.Run(ctx, p, os.Stdin, os.Stdout, log)
	} else {
		err = ui.RunWithInvitation(ctx, p, opts.Invite)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chordphone: %v\n", err)
		return 1
	}
	return 0
}

// subcommand runs the program args[0] names (bench, adapter, diag, enroll, overlay-server).
func subcommand(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "bench":
		return bench.Main(ctx, args[1:], os.Stdout, os.Stderr)
	case "adapter":
		return sipadapter.Command(ctx, args[1:], os.Stdin, os.Stdout, os.Stderr)
	case "enroll":
		return enrollcmd.Enroll(ctx, args[1:], os.Stdin, os.Stdout, os.Stderr)
	case "diag":
		return diagcmd.Command(ctx, args[1:], os.Stdout, os.Stderr)
	case "overlay-server":
		if len(args) > 1 && args[1] == "invite" {
			return enrollcmd.Invite(args[2:], os.Stdout, os.Stderr)
		}
		op := enrollcmd.Operator{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, StartPeer: peer.RunBootstrap}
		return op.Run(ctx, args[1:])
	}
	var names []string
	for _, c := range cli.Subcommands {
		names = append(names, c.Name)
	}
	fmt.Fprintf(os.Stderr, "chordphone: unknown command %q (commands: %s)\nRun 'chordphone --help' for usage.\n", args[0], strings.Join(names, ", "))
	return 2
}
