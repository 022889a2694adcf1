package enrollcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/chordphone/chordphone/app/cli"
	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/enroll"
)

const enrollUsage = `usage: chordphone enroll [--profile DIR] (--overlay NAME | --config URL|FILE | --invite LINK)
                        --user NAME [--ca-fingerprint HEX]   (password on the first line of standard input)

Gets this profile a certificate from the overlay's enrollment server (RFC 6940 §11.3) and
makes the overlay the profile's own: "chordphone --headless --profile DIR" then joins it.
--invite takes the operator's join link (chordphone:join?...), which names the overlay and
pins its CA; --ca-fingerprint pins the CA by its SHA-256 fingerprint. Writes one JSON event
on standard output: "enrolled", or "error" with a "code" and a "message".
`

// event is what `chordphone enroll` writes: one JSON object, as headless mode does.
type event struct {
	Event         string    `json:"event"`
	Time          time.Time `json:"time"`
	Overlay       string    `json:"overlay,omitempty"`
	User          string    `json:"user,omitempty"`
	NodeID        string    `json:"node_id,omitempty"`
	CAFingerprint string    `json:"ca_fingerprint,omitempty"`
	Profile       string    `json:"profile,omitempty"`
	Code          string    `json:"code,omitempty"`
	Message       string    `json:"message,omitempty"`
}

type enrollArgs struct {
	profile, overlay, config, user, fp, invite string
}

// Enroll runs "chordphone enroll ARGS" with the password on stdin; it returns the exit status.
func Enroll(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, err := parseEnroll(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, enrollUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chordphone enroll: %v\n%s", err, enrollUsage)
		return 2
	}
	out := json.NewEncoder(stdout)
	fail := func(code, msg string) int {
		_ = out.Encode(event{Event: "error", Time: time.Now().UTC(), Code: code, Message: msg})
		return 1
	}
	// The profile's database first: a phone running on it must not be enrolled under its feet.
	st, err := store.Open(a.profile)
	if errors.Is(err, store.ErrLocked) {
		return fail("profile_in_use", fmt.Sprintf("The profile %s is in use by a running Chordphone. Stop it, then enroll.", a.profile))
	}
	if err != nil {
		return fail("profile_unusable", fmt.Sprintf("The profile %s cannot be opened: %v.", a.profile, err))
	}
	defer st.Close()
	pw, err := ReadPassword(stdin, stderr)
	if err != nil {
		return fail("no_password", "No password: give it on the first line of standard input.")
	}
	t := join.Target{Overlay: a.overlay, Config: a.config, CAFingerprint: a.fp}
	res, err := join.Enroll(ctx, a.profile, join.Request{Target: t, User: a.user, Password: pw})
	if err != nil {
		var je *join.Error
		if !errors.As(err, &je) {
			return fail("enrollment_failed", err.Error())
		}
		msg := je.Message
		if je.Code == join.CodeCANotTrusted && je.CAFingerprint != "" {
			msg += " If it is the same, run again with --ca-fingerprint " + je.CAFingerprint + " (or with the operator's --invite link)."
		}
		return fail(je.Code, msg)
	}
	overlay := res.Config.InstanceName
	if err := phone.SaveJoined(st, overlay, t.Source(), a.user); err != nil {
		return fail("profile_unusable", fmt.Sprintf("Enrolled, but the profile %s could not keep the overlay choice: %v.", a.profile, err))
	}
	_ = out.Encode(event{Event: "enrolled", Time: time.Now().UTC(), Overlay: overlay, User: res.Identity.User(),
		NodeID: res.Identity.NodeID().String(), CAFingerprint: res.CAFingerprint, Profile: a.profile})
	return 0
}

func parseEnroll(args []string) (enrollArgs, error) {
	var a enrollArgs
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.profile, "profile", "", "profile DIR (default: the user's config directory)")
	fs.StringVar(&a.overlay, "overlay", "", "overlay name")
	fs.StringVar(&a.config, "config", "", "configuration URL or file")
	fs.StringVar(&a.user, "user", "", "user name (the account)")
	fs.StringVar(&a.fp, "ca-fingerprint", "", "SHA-256 fingerprint of the overlay's CA")
	fs.StringVar(&a.invite, "invite", "", "the operator's join link (chordphone:join?...)")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if fs.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if a.invite != "" {
		inv, err := enroll.ParseInvitation(a.invite)
		if err != nil {
			return a, fmt.Errorf("--invite: %v", err)
		}
		if a.fp != "" {
			return a, errors.New("give --invite or --ca-fingerprint, not both")
		}
		if a.overlay != "" && !strings.EqualFold(a.overlay, inv.Overlay) {
			return a, fmt.Errorf("--overlay %s, but the invitation is for %s", a.overlay, inv.Overlay)
		}
		a.overlay, a.fp = inv.Overlay, inv.CAFingerprint
		if a.config == "" {
			a.config = inv.Config
		}
		if a.user == "" {
			a.user = inv.User
		}
	}
	if a.fp != "" {
		fp, err := enroll.NormalizeFingerprint(a.fp)
		if err != nil {
			return a, fmt.Errorf("--ca-fingerprint: %v", err)
		}
		a.fp = fp
	}
	if a.config != "" && !strings.HasPrefix(a.config, "https://") {
		abs, err := filepath.Abs(a.config) // the profile keeps it: the peer may start elsewhere
		if err != nil {
			return a, fmt.Errorf("--config: %w", err)
		}
		a.config = abs
	}
	if a.overlay == "" && a.config == "" {
		return a, errors.New("--overlay NAME, --config URL|FILE or --invite LINK is required")
	}
	if a.user == "" {
		return a, errors.New("--user NAME is required")
	}
	if err := phone.ValidateUser(a.user); err != nil {
		return a, err
	}
	if a.profile == "" {
		dir, err := cli.DefaultProfile()
		if err != nil {
			return a, err
		}
		a.profile = dir
	}
	return a, nil
}
