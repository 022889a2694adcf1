// Package cli parses Chordphone's command line. The GUI and headless mode take the same flags
// (see README "Headless interface").
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/version"
)

// Options is what the command line selects: the phone's Config (each flag sets its field)
// and what only the program itself uses.
type Options struct {
	phone.Config
	Headless bool
	LogLevel string
	// Invite is a join link given as the one argument (chordphone:join?..., what the desktop
	// entry's x-scheme-handler/chordphone passes): the GUI opens Settings → Overlay filled
	// from it.
	Invite string
	// SIPAdapter is the address of the SIP adapter for ordinary SIP phones (RFC 7890 §3,
	// app/sipadapter); "" runs none.
	SIPAdapter string
}

// ErrHelp is returned when --help was asked for; the usage has been written.
var ErrHelp = flag.ErrHelp

// ErrVersion is returned when --version was asked for; the version has been written.
var ErrVersion = errors.New("version requested")

// UsageError is a bad command line; the caller exits with status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Parse parses args (without the program name). Output (help, version, errors) goes to out.
func Parse(args []string, out io.Writer) (Options, error) {
	var o Options
	var bootstrap string
	var showVersion bool
	fs := flag.NewFlagSet("chordphone", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.Headless, "headless", false, "run without a window: JSON events on stdout, commands on stdin")
	fs.StringVar(&o.Profile, "profile", "", "profile `DIR` (identity, settings, contacts, history); default: the user's config directory")
	fs.StringVar(&o.User, "user", "", "user `NAME`; the AoR is sip:NAME@OVERLAY")
	fs.StringVar(&o.Overlay, "overlay", "", "overlay `NAME`")
	fs.StringVar(&o.Config.Config, "config", "", "overlay configuration document `URL|FILE` (RFC 6940 §11.1)")
	fs.StringVar(&bootstrap, "bootstrap", "", "bootstrap peers `HOST:PORT[,...]`; overrides the configuration")
	fs.StringVar(&o.Listen, "listen", "", "overlay link address `HOST:PORT`")
	fs.StringVar(&o.AudioIn, "audio-in", "", "microphone from `FILE.wav` instead of a sound device")
	fs.StringVar(&o.AudioOut, "audio-out", "", "speaker to `FILE.wav` instead of a sound device")
	fs.BoolVar(&o.AutoAnswer, "auto-answer", false, "answer incoming calls")
	fs.BoolVar(&o.Client, "client", false, "run as a RELOAD client (RFC 6940 §4.2): store and route nothing for others")
	fs.StringVar(&o.KeyLog, "keylog", "", "write an NSS key log of every DTLS/TLS session to `FILE`")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log `LEVEL` on stderr: debug, info, warn, error")
	fs.BoolVar(&o.NewIdentity, "new-identity", false, "when the profile's identity cannot be read, set it aside and make a new one (callers are told the key changed)")
	fs.StringVar(&o.SIPAdapter, "sip-adapter", "", "serve ordinary SIP phones on `HOST:PORT` (UDP and TCP; accounts: chordphone adapter user add)")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {} // the usage goes to out only when asked for: out is the JSON channel

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, out)
			return o, ErrHelp
		}
		return o, &UsageError{Err: err}
	}
	if showVersion {
		fmt.Fprintf(out, "chordphone %s\n", version.Version)
		return o, ErrVersion
	}
	rest := fs.Args()
	if len(rest) == 1 && strings.HasPrefix(strings.ToLower(rest[0]), "chordphone:") {
		o.Invite, rest = rest[0], nil
	}
	if len(rest) > 0 {
		return o, &UsageError{Err: fmt.Errorf("unexpected argument %q", rest[0])}
	}
	if bootstrap != "" {
		for _, b := range strings.Split(bootstrap, ",") {
			if b = strings.TrimSpace(b); b != "" {
				o.Bootstrap = append(o.Bootstrap, b)
			}
		}
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return o, &UsageError{Err: fmt.Errorf("invalid --log-level %q (want debug, info, warn or error)", o.LogLevel)}
	}
	if o.Profile == "" {
		dir, err := DefaultProfile()
		if err != nil {
			return o, err
		}
		o.Profile = dir
	}
	return o, nil
}

// DefaultProfile is the profile directory when --profile is not given: chordphone in the
// user's config directory.
func DefaultProfile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user's config directory (use --profile DIR): %w", err)
	}
	return filepath.Join(dir, "chordphone"), nil
}

// HeadlessCommands lists what a headless phone's stdin accepts (README "Headless interface").
const HeadlessCommands = "call USER, answer, decline, hangup, hold, resume, mute, unmute, dtmf DIGITS, lookup USER, msg USER TEXT, voicemail USER FILE.wav, contact USER, status, new-identity, quit"

// Subcommands are the first arguments that select another program than the phone.
var Subcommands = []struct{ Name, Args, Text string }{
	{"adapter", "user add NAME [--digest both|sha-256|md5] [--invite LINK|--config URL|FILE|--overlay NAME]|user list|user remove NAME [--profile DIR]", "accounts of the SIP phones that register to --sip-adapter (password on stdin)"},
	{"bench", "overlay|calls|idle [flags]", "measure the overlay, calls or idle cost (JSON on stdout)"},
	{"diag", "inspect|path NODE-ID|USER [--profile DIR] [--overlay NAME|--config URL|FILE] [--bootstrap HOST:PORT]", "RFC 7851 diagnostics: a node's figures, or the overlay path to it with round-trip times"},
	{"enroll", "--overlay NAME|--config URL|FILE|--invite LINK --user NAME [--ca-fingerprint HEX] [--profile DIR]", "get this profile a certificate from a named overlay (password on stdin)"},
	{"overlay-server", "init|user|config|ca|invite|serve [flags]", "run an overlay: configuration document, enrollment, bootstrap peer, invitations"},
}

func usage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, `Chordphone %s — a softphone that is its own P2PSIP (RELOAD) peer.

Usage:
  chordphone [flags]              start the phone with its window
  chordphone --headless [flags]   start without a window (JSON events on stdout, commands on stdin)
  chordphone [flags] chordphone:join?...   open Settings → Overlay filled from an invitation link
`, version.Version)
	for _, c := range Subcommands {
		fmt.Fprintf(out, "  chordphone %s %s\n      %s\n", c.Name, c.Args, c.Text)
	}
	fmt.Fprint(out, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(out, "  --%s %s\n      %s", f.Name, name, text)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(out, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
	fmt.Fprintf(out, "\nHeadless commands (stdin, one per line):\n  %s\n", strings.ReplaceAll(HeadlessCommands, ", ", " | "))
}
