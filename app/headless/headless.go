// Package headless runs the phone with no window: one JSON event per line on stdout and one
// command per line on stdin (README "Headless interface").
package headless

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/cli"
	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/app/version"
)

// Commands lists what stdin accepts.
const Commands = cli.HeadlessCommands

// Run runs p until ctx ends, stdin says quit, or stdin closes. Events go to out as JSON lines.
// It returns nil on an orderly end.
//
// When in is the null device (a service under systemd, whose stdin is /dev/null, or a shell's
// `</dev/null`), its immediate end of input means "no commands", not "quit": Run then goes on
// until ctx ends (SIGINT or SIGTERM in main). End of input from a pipe or a terminal quits.
func Run(ctx context.Context, p *phone.Phone, in io.Reader, out io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	w := &writer{out: out}
	events, unsubscribe := p.Subscribe(256)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: Run; ends when the phone closes the subscription or unsubscribe
		defer wg.Done()
		for e := range events {
			w.event(withHint(e))
		}
	}()

	w.event(phone.Event{Kind: phone.EventStarted, Version: version.Version})

	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }() // owner: Run; ends with ctx

	nullInput := isNullDevice(in)
	lines := make(chan string)
	go func() { // owner: Run; ends at EOF of in (the process's stdin ends with the process)
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), 64*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			log.Warn("reading commands", "err", err)
		}
	}()

	var cmds sync.WaitGroup // commands running in the background; they end with ctx
	bg := func(f func()) {
		cmds.Add(1)
		go func() { // owner: Run; ends when f returns (f's waits end with ctx)
			defer cmds.Done()
			f()
		}()
	}

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-runErr:
			runErr = nil
			break loop
		case line, ok := <-lines:
			if !ok {
				if nullInput {
					log.Info("stdin is the null device: no commands; running until stopped by a signal")
					lines = nil // never ready again
					continue
				}
				break loop // stdin closed: same as quit
			}
			if quit := execute(ctx, p, w, bg, line); quit {
				break loop
			}
		}
	}
	cancel()
	cmds.Wait()
	if runErr != nil {
		if e := <-runErr; e != nil && !errors.Is(e, context.Canceled) {
			err = e
		}
	}
	unsubscribe()
	wg.Wait()
	return err
}

// isNullDevice reports whether in is the null device (os.DevNull), which a service manager
// gives as stdin: a character device that is the same file as /dev/null, not a terminal.
func isNullDevice(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// execute runs one command line and reports whether it was quit. A command that waits on the
// overlay (lookup) runs through bg, so that it never holds up the next command. It is one
// piece: one switch case per headless command (README "Headless interface").
func execute(ctx context.Context, p *phone.Phone, w *writer, bg func(func()), line string) (quit bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false
	}
	cmd, args := strings.ToLower(fields[0]), fields[1:]
	if cmd == "msg" || cmd == "voicemail" { // msg USER TEXT, voicemail USER FILE.wav: the rest of the line, spaces and all
		message(p, w, cmd, line)
		return false
	}
	want := func(n int) bool {
		if len(args) != n {
			if n == 0 {
				w.errorf(phone.CodeBadArguments, "%s takes no argument", cmd)
			} else {
				w.errorf(phone.CodeBadArguments, "usage: %s %s", cmd, map[string]string{"call": "USER", "dtmf": "DIGITS", "lookup": "USER", "contact": "USER"}[cmd])
			}
			return false
		}
		return true
	}
	var err error
	switch cmd {
	case "quit", "exit":
		return want(0)
	case "status":
		if want(0) {
			s := p.Status()
			w.event(phone.Event{Kind: phone.EventStatus, Status: &s})
		}
		return false
	case "call":
		if want(1) {
			err = p.Call(ctx, args[0])
		}
	case "answer":
		if want(0) {
			err = p.Answer()
		}
	case "decline":
		if want(0) {
			err = p.Decline()
		}
	case "hangup":
		if want(0) {
			err = p.Hangup()
		}
	case "hold":
		if want(0) {
			err = p.Hold()
		}
	case "resume":
		if want(0) {
			err = p.Resume()
		}
	case "mute", "unmute":
		if want(0) {
			err = p.SetMute(cmd == "mute")
		}
	case "new-identity": // after an identity_unreadable error: the person's choice
		if want(0) {
			err = p.NewIdentity()
		}
	case "dtmf":
		if want(1) {
			err = p.SendDTMF(args[0])
		}
	case "contact": // contact USER: add to the contacts, whose presence the phone follows
		if want(1) {
			err = p.AddContact(args[0])
		}
	case "lookup":
		if want(1) { // answers within the lookup's timeout (5 s), meanwhile other commands run
			user := args[0]
			bg(func() {
				devices, err := p.Lookup(ctx, user)
				if ctx.Err() != nil {
					return // Run is ending
				}
				if err != nil {
					w.event(phone.Event{Kind: phone.EventError, Code: phone.ErrorCode(err, phone.CodeLookupFailed),
						Peer: user, Message: fmt.Sprintf("lookup: %v", err)})
					return
				}
				w.event(phone.Event{Kind: phone.EventLookup, Peer: user, Devices: devices})
			})
		}
	default:
		w.errorf(phone.CodeUnknownCommand, "unknown command %q; commands: %s", fields[0], Commands)
		return false
	}
	if err != nil {
		w.errorf(phone.ErrorCode(err, phone.CodeCommandFailed), "%s: %v", cmd, err)
	}
	return false
}

// message runs `msg USER TEXT` and `voicemail USER FILE.wav`: the phone's sent event gives
// the id; delivered (or stored, then delivered) or an error event with code message_failed
// follows.
func message(p *phone.Phone, w *writer, cmd, line string) {
	rest := strings.TrimLeft(strings.TrimSpace(line)[len(cmd):], " \t")
	user, arg := rest, ""
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		user, arg = rest[:i], rest[i+1:]
	}
	usage := map[string]string{"msg": "usage: msg USER TEXT", "voicemail": "usage: voicemail USER FILE.wav"}[cmd]
	if user == "" || strings.TrimSpace(arg) == "" {
		w.errorf(phone.CodeBadArguments, "%s", usage)
		return
	}
	var err error
	if cmd == "msg" {
		_, err = p.SendMessage(user, arg)
	} else {
		_, err = p.SendVoicemail(user, strings.TrimSpace(arg))
	}
	if err != nil {
		w.errorf(phone.ErrorCode(err, phone.CodeCommandFailed), "%s: %v", cmd, err)
	}
}

// writer serialises events onto out, one JSON object per line.
type writer struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *writer) errorf(code, format string, args ...any) {
	w.event(phone.Event{Kind: phone.EventError, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (w *writer) event(e phone.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := marshal(e)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"error","time":%q,"code":"internal","message":"encoding event: %s"}`, e.Time.Format(time.RFC3339Nano), err))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Write(append(b, '\n'))
}

// marshal encodes an event; a status event carries the status fields at the top level.
func marshal(e phone.Event) ([]byte, error) {
	if e.Status == nil {
		return json.Marshal(e)
	}
	var m map[string]any
	sb, err := json.Marshal(e.Status)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(sb, &m); err != nil {
		return nil, err
	}
	m["event"] = e.Kind
	m["time"] = e.Time
	return json.Marshal(m)
}

// commandLineHints are the command-line ways out of trouble, by code: the phone's messages
// name no front end (and headless messages never point to the GUI's Settings).
var commandLineHints = map[string]string{
	join.CodeNeedsEnrollment:   enrollHint,
	join.CodeCANotTrusted:      enrollHint,
	phone.CodeListenPortTaken:  "--listen HOST:PORT sets the port.",
	phone.CodeNoCaptureDevice:  "--audio-in FILE.wav takes the microphone from a file.",
	phone.CodeNoPlaybackDevice: "--audio-out FILE.wav writes what the speaker would play to a file.",
}

const enrollHint = "Enroll this profile first: chordphone enroll --profile DIR --overlay NAME --user NAME " +
	"[--invite LINK | --ca-fingerprint HEX], with the password on standard input."

// withHint adds the command-line way out to an error or warning that has one.
func withHint(e phone.Event) phone.Event {
	if h, ok := commandLineHints[e.Code]; ok && (e.Kind == phone.EventError || e.Kind == phone.EventWarning) {
		e.Message += " " + h
	}
	return e
}
