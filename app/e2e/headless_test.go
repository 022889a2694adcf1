package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chordphone-e2e-")
	if err != nil {
		panic(err)
	}
	binPath, err = BuildBinary(dir)
	if err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHeadlessStartStatusQuit(t *testing.T) {
	dir := t.TempDir()
	p := StartHeadless(t, binPath, "peer", dir, "--profile", filepath.Join(dir, "profile"), "--overlay", "headless.test", "--listen", "127.0.0.1:0")
	started := p.Wait(t, "started", 30*time.Second)
	if v, _ := started["version"].(string); v == "" {
		t.Fatalf("started event without version: %v", started)
	}
	if _, ok := started["time"].(string); !ok {
		t.Fatalf("started event without time: %v", started)
	}
	p.Send(t, "status")
	st := p.Wait(t, "status", 10*time.Second)
	for _, k := range []string{"state", "predecessors", "successors", "fingers", "stored_records", "calls"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status event lacks %q: %v", k, st)
		}
	}
	p.Send(t, "frobnicate")
	e := p.Wait(t, "error", 10*time.Second)
	if msg, _ := e["message"].(string); !strings.Contains(msg, "unknown command") {
		t.Errorf("unknown command gave %v", e)
	}
	p.Send(t, "quit")
	select {
	case <-p.Exited():
		if p.ExitErr != nil {
			t.Fatalf("exit after quit: %v", p.ExitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after quit")
	}
}

func TestHeadlessSignalsExitZero(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := StartHeadless(t, binPath, "peer", dir, "--profile", filepath.Join(dir, "profile"), "--overlay", "headless.test", "--listen", "127.0.0.1:0")
			p.Wait(t, "started", 30*time.Second)
			if err := p.Cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Exited():
				if p.ExitErr != nil {
					t.Fatalf("exit after %v: %v", sig, p.ExitErr)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no exit after %v", sig)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	// run returns stdout and stderr apart: stdout is the JSON channel of a headless phone.
	run := func(env []string, args ...string) (string, string, int) {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(IsolatedEnv(t.TempDir()), env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), stderr.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), stderr.String(), 0
	}
	if out, _, code := run(nil, "--version"); code != 0 || !strings.HasPrefix(out, "chordphone 0.") {
		t.Errorf("--version: code %d, %q", code, out)
	}
	out, _, code := run(nil, "--help")
	if code != 0 {
		t.Errorf("--help: code %d", code)
	}
	// The flags, the subcommands and every headless command.
	for _, want := range []string{"--headless", "--profile", "chordphone bench", "chordphone overlay-server",
		"call USER", "answer", "decline", "hangup", "hold", "resume", "mute", "unmute", "dtmf DIGITS",
		"lookup USER", "status", "quit"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not mention %q:\n%s", want, out)
		}
	}
	// An unknown flag: the error on stderr, nothing on stdout (the JSON channel), status 2.
	if out, errOut, code := run(nil, "--headless", "--no-such-flag"); code != 2 || out != "" || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("unknown flag: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := run(nil, "no-such-command"); code != 2 || out != "" || !strings.Contains(errOut, "bench") {
		t.Errorf("unknown command: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestNoLocaleNoise: under the C locales systemd and minimal systems set, nothing but the
// program's own lines reaches stderr (Fyne used to log "Error parsing user locale C").
func TestNoLocaleNoise(t *testing.T) {
	for _, env := range [][]string{{"LANG=C.UTF-8"}, {"LANG=", "LC_ALL=C.UTF-8"}, {"LANG=C"}, {"LANG="}} {
		cmd := exec.Command(binPath, "--version")
		cmd.Env = append(IsolatedEnv(t.TempDir()), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "Fyne") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v: --version printed %q (%v)", env, out, err)
		}
	}
	dir := t.TempDir()
	p := StartHeadlessEnv(t, binPath, "peer", dir, []string{"LANG=C.UTF-8"}, "--profile", filepath.Join(dir, "profile"),
		"--overlay", "locale.test", "--listen", "127.0.0.1:0")
	p.Wait(t, "joined", 30*time.Second)
	p.Send(t, "quit")
	select {
	case <-p.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after quit")
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Fyne") || strings.Contains(string(b), "user locale") {
		t.Errorf("stderr under LANG=C.UTF-8:\n%s", b)
	}
}
