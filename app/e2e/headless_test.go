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
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binPath, args...)
		cmd.Env = IsolatedEnv(t.TempDir())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		out = append(out, stderr.String()...)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run("--version"); code != 0 || !strings.HasPrefix(out, "chordphone 0.") {
		t.Errorf("--version: code %d, %q", code, out)
	}
	if out, code := run("--help"); code != 0 || !strings.Contains(out, "--headless") || !strings.Contains(out, "--profile") {
		t.Errorf("--help: code %d, %q", code, out)
	}
	if out, code := run("--no-such-flag"); code != 2 || !strings.Contains(out, "no-such-flag") {
		t.Errorf("unknown flag: code %d, %q", code, out)
	}
}
