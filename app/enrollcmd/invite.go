// Package enrollcmd holds the command lines of running and joining a named overlay: the
// operator's `chordphone overlay-server` (init, user, config, ca, kind-limit, serve,
// invite) on an operator directory of overlay/enroll, and the headless `chordphone enroll`.
package enrollcmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/overlay/enroll"
)

const inviteUsage = `usage: chordphone overlay-server invite --dir DIR [--user NAME] [--config-url URL] [--qr FILE.png]

Prints a join link for the overlay in DIR that pins its CA by SHA-256 fingerprint
(chordphone:join?overlay=NAME&ca=sha256:HEX[&user=NAME][&config=URL]) and writes it as a
QR code (default DIR/invite.png, or DIR/invite-NAME.png with --user). A phone given the link
trusts exactly that CA for the overlay's configuration and enrollment servers.
`

// Invite runs "chordphone overlay-server invite ARGS"; it returns the exit status.
func Invite(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("overlay-server invite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "operator directory (made by overlay-server init)")
	user := fs.String("user", "", "the account the invitation is for")
	cfgURL := fs.String("config-url", "", "configuration URL, when phones do not reach https://NAME/.well-known/reload-config")
	qr := fs.String("qr", "", "QR code PNG to write (default DIR/invite[-NAME].png)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, inviteUsage)
		return 0
	} else if err != nil || fs.NArg() > 0 || *dir == "" {
		msg := "--dir is required"
		if err != nil {
			msg = err.Error()
		} else if fs.NArg() > 0 {
			msg = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintf(stderr, "overlay-server invite: %s\n%s", msg, inviteUsage)
		return 2
	}
	if err := invite(*dir, *user, *cfgURL, *qr, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "overlay-server invite: %v\n", err)
		return 1
	}
	return 0
}

func invite(dir, user, cfgURL, qr string, stdout, stderr io.Writer) error {
	srv, set, err := enroll.LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	if cfgURL != "" && !strings.HasPrefix(cfgURL, "https://") {
		return fmt.Errorf("--config-url %s: must be https (RFC 6940 §11.2)", cfgURL)
	}
	if user != "" && !set.Open && !slices.ContainsFunc(srv.Users.Names(), func(n string) bool { return strings.EqualFold(n, user) }) {
		fmt.Fprintf(stderr, "overlay-server invite: warning: there is no user %s yet (chordphone overlay-server user add %s --dir %s)\n", user, user, dir)
	}
	inv := enroll.Invitation{Overlay: set.Overlay, CAFingerprint: enroll.CAFingerprint(srv.CA.Cert), User: user, Config: cfgURL}
	link := inv.String()
	if qr == "" {
		name := "invite.png"
		if user != "" {
			name = "invite-" + user + ".png"
		}
		qr = filepath.Join(dir, name)
	}
	if err := qrcode.WriteFile(link, qrcode.Medium, 512, qr); err != nil {
		return fmt.Errorf("writing the QR code: %w", err)
	}
	fmt.Fprintln(stdout, link)
	fmt.Fprintf(stderr, "overlay %s: CA fingerprint %s\nthe link is also a QR code in %s; give it to the person with their password\n",
		set.Overlay, join.FingerprintText(inv.CAFingerprint), qr)
	return nil
}
