// Package e2e holds end-to-end tests that run the real chordphone binary: headless peers on
// loopback and the GUI under Xvfb. This file is the harness they share.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RaceBinary reports whether the binary under test is built with the race detector: when the
// tests run with it and CHORDPHONE_E2E_RACE is set (packaging/test.sh does so for the call
// tests; race-enabled processes are several times heavier, too heavy for the 30-process tests).
func RaceBinary() bool { return raceEnabled && os.Getenv("CHORDPHONE_E2E_RACE") != "" }

// BuildBinary builds chordphone into dir and returns its path.
func BuildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "chordphone")
	args := []string{"build", "-o", bin}
	if RaceBinary() {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/chordphone/chordphone")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building chordphone: %w", err)
	}
	return bin, nil
}

// IsolatedEnv returns an environment whose HOME and XDG directories are inside dir, so that
// nothing the program (or Fyne, or Mesa) writes lands outside the test's directory.
func IsolatedEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "DISPLAY":
			continue
		}
		env = append(env, kv)
	}
	for _, d := range []string{"home", "config", "cache", "data", "state", "runtime"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	env = append(env,
		"HOME="+filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"),
		"XDG_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
	)
	env = append(env, "LANG=en_US.UTF-8") // Fyne cannot parse the C locale and says so at start
	return append(env, extra...)
}

// StartXvfb starts a virtual X server and returns its DISPLAY value. It waits for the server
// to say it is ready (-displayfd), not for a fixed time. The server stops at test cleanup.
func StartXvfb(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Fatalf("Xvfb is missing (packaging/install-deps.sh --test installs it): %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = IsolatedEnv(t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	n, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil {
		t.Fatalf("Xvfb did not report a display: %q %v", line, err)
	}
	return fmt.Sprintf(":%d", n)
}

// Proc is a running headless chordphone with its event stream.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string // the process's stderr
	stdin   io.WriteCloser
	events  chan map[string]any
	mu      sync.Mutex
	all     []map[string]any
	exited  chan struct{}
	// ExitErr is the process's exit error once Exited is closed.
	ExitErr error
}

// StartHeadless starts `chordphone --headless args...` with an isolated environment in dir.
func StartHeadless(t testing.TB, bin, name, dir string, args ...string) *Proc {
	t.Helper()
	return StartHeadlessIn(t, "", bin, name, dir, args...)
}

// StartHeadlessIn is StartHeadless inside network namespace ns (`ip netns exec`, which execs
// the program, so the process is chordphone itself); "" is the test's own namespace.
func StartHeadlessIn(t testing.TB, ns, bin, name, dir string, args ...string) *Proc {
	t.Helper()
	return startHeadless(t, ns, bin, name, dir, nil, args...)
}

// StartHeadlessEnv is StartHeadless with env added to the isolated environment.
func StartHeadlessEnv(t testing.TB, bin, name, dir string, env []string, args ...string) *Proc {
	t.Helper()
	return startHeadless(t, "", bin, name, dir, env, args...)
}

func startHeadless(t testing.TB, ns, bin, name, dir string, env []string, args ...string) *Proc {
	t.Helper()
	argv := append([]string{bin, "--headless"}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = IsolatedEnv(dir, env...)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".stderr.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, stdin: stdin, events: make(chan map[string]any, 1024), exited: make(chan struct{})}
	go func() { // owner: the Proc; ends when the process's stdout closes and it has exited
		defer func() {
			close(p.events)
			p.ExitErr = cmd.Wait()
			close(p.exited)
		}()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = map[string]any{"event": "_invalid_json", "line": sc.Text()}
			}
			p.mu.Lock()
			p.all = append(p.all, e)
			p.mu.Unlock()
			select {
			case p.events <- e:
			default: // nobody is reading; the event stays in the log
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s events: %v", name, p.Events())
		}
		_ = cmd.Process.Kill()
		<-p.Exited()
		logf.Close()
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race:\n%s", name, tail(string(b), 6000))
		}
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

// Exited is closed when the process has exited (then ExitErr is set).
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Send writes one command line to the process's stdin.
func (p *Proc) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("%s: writing %q: %v", p.Name, line, err)
	}
}

// CloseStdin closes the process's stdin.
func (p *Proc) CloseStdin() { p.stdin.Close() }

// Wait returns the next event of the given kind, failing the test after timeout. Events of
// other kinds are kept in the log but skipped. An "error" event is returned if want is "error".
func (p *Proc) Wait(t testing.TB, want string, timeout time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("%s exited while waiting for %q; events: %v", p.Name, want, p.Events())
			}
			if e["event"] == want {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %q event within %v; events: %v", p.Name, want, timeout, p.Events())
		}
	}
}

// Next returns the next event of any kind, failing the test after timeout.
func (p *Proc) Next(t testing.TB, timeout time.Duration) map[string]any {
	t.Helper()
	select {
	case e, ok := <-p.events:
		if !ok {
			t.Fatalf("%s exited; events: %v", p.Name, p.Events())
		}
		return e
	case <-time.After(timeout):
		t.Fatalf("%s: no event within %v; events: %v", p.Name, timeout, p.Events())
	}
	return nil
}

// Events returns every event seen so far.
func (p *Proc) Events() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.all...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
