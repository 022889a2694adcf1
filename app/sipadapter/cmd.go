package sipadapter

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/chordphone/chordphone/app/cli"
	"github.com/chordphone/chordphone/app/enrollcmd"
)

// CommandUsage is the usage line of `chordphone adapter`.
const CommandUsage = "user add NAME [--digest both|sha-256|md5] [--invite LINK | --config URL|FILE | --overlay NAME [--ca-fingerprint HEX]] | user list | user remove NAME [--profile DIR]"

// Command runs `chordphone adapter ARGS`: the accounts of the user agents that register to
// this phone's SIP adapter (--sip-adapter). add reads the password from the first line of
// stdin; with --invite, --config or --overlay it also enrolls the user's line with the
// overlay's enrollment server, with the same password (the operator's account for NAME). It
// returns the exit status.
func Command(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chordphone adapter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	profile := fs.String("profile", "", "profile `DIR`")
	alg := fs.String("digest", DigestBoth, "digest algorithms of a new user: both, sha-256 or md5")
	var enrollArgs []string // passed on to chordphone enroll for the line's profile
	for _, name := range []string{"invite", "config", "overlay", "ca-fingerprint"} {
		fs.Func(name, "enroll the line: as chordphone enroll --"+name, func(v string) error {
			enrollArgs = append(enrollArgs, "--"+name, v)
			return nil
		})
	}
	var pos []string
	for len(args) > 0 { // flags may come before or after the words
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(stderr, "chordphone adapter: %v\nUsage: chordphone adapter %s\n", err, CommandUsage)
			return 2
		}
		args = fs.Args()
		if len(args) > 0 {
			pos, args = append(pos, args[0]), args[1:]
		}
	}
	if *profile == "" {
		dir, err := cli.DefaultProfile()
		if err != nil {
			fmt.Fprintf(stderr, "chordphone adapter: %v\n", err)
			return 1
		}
		*profile = dir
	}
	acc := OpenAccounts(*profile)
	var err error
	switch {
	case len(pos) == 3 && pos[0] == "user" && pos[1] == "add":
		var pw string
		if pw, err = readPassword(stdin); err == nil {
			err = acc.Add(pos[2], pw, *alg)
		}
		if err == nil && len(enrollArgs) > 0 {
			// The line's identity from the enrollment server (RFC 6940 §11.3): the line
			// registers NAME with it (see the package doc).
			args := append([]string{"--profile", LineProfile(*profile, pos[2]), "--user", pos[2]}, enrollArgs...)
			if code := enrollcmd.Enroll(ctx, args, strings.NewReader(pw+"\n"), stdout, stderr); code != 0 {
				_ = acc.Remove(pos[2])
				fmt.Fprintf(stderr, "chordphone adapter: %s was not added: its line could not be enrolled (above)\n", pos[2])
				return code
			}
		}
		if err == nil {
			fmt.Fprintf(stdout, "added %s: a SIP phone registers as user %s, realm %s, with this password\n", pos[2], pos[2], Realm)
		}
	case len(pos) == 3 && pos[0] == "user" && pos[1] == "remove":
		if err = acc.Remove(pos[2]); err == nil {
			fmt.Fprintf(stdout, "removed %s\n", pos[2])
		}
	case len(pos) == 2 && pos[0] == "user" && pos[1] == "list":
		var names []string
		if names, err = acc.List(); err == nil {
			for _, n := range names {
				fmt.Fprintln(stdout, n)
			}
		}
	default:
		fmt.Fprintf(stderr, "Usage: chordphone adapter %s\n", CommandUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "chordphone adapter: %v\n", err)
		return 1
	}
	return 0
}

func readPassword(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin (give it as the first line)")
	}
	return pw, nil
}
