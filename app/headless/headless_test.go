package headless

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/phone"
)

// lineWriter hands each JSON line Run writes to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan map[string]any
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		var e map[string]any
		if err := json.Unmarshal(w.buf[:i], &e); err != nil {
			e = map[string]any{"event": "_invalid_json", "line": string(w.buf[:i])}
		}
		w.buf = w.buf[i+1:]
		select {
		case w.lines <- e:
		default:
		}
	}
}

func (w *lineWriter) wait(t *testing.T, kind string, timeout time.Duration) {
	t.Helper()
	w.next(t, kind, timeout)
}

// next returns the next event of kind, skipping others.
func (w *lineWriter) next(t *testing.T, kind string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-w.lines:
			if e["event"] == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", kind, timeout)
		}
	}
}

// logSignal closes seen when a record whose message contains want is logged.
type logSignal struct {
	slog.Handler
	want string
	once *sync.Once
	seen chan struct{}
}

func (h logSignal) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.want) {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h logSignal) WithAttrs(a []slog.Attr) slog.Handler {
	return logSignal{h.Handler.WithAttrs(a), h.want, h.once, h.seen}
}

func (h logSignal) WithGroup(g string) slog.Handler {
	return logSignal{h.Handler.WithGroup(g), h.want, h.once, h.seen}
}

func newPhone(t *testing.T, log *slog.Logger) *phone.Phone {
	t.Helper()
	dir := t.TempDir()
	p, err := phone.New(phone.Config{Profile: filepath.Join(dir, "profile"), Overlay: "headless-unit.test",
		Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Under systemd stdin is /dev/null: its end of input must not stop the peer (a storing peer
// run as a service would otherwise exit at once); a signal (ctx) still does.
func TestNullStdinKeepsRunning(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	sig := logSignal{Handler: slog.NewTextHandler(io.Discard, nil), want: "stdin is the null device", once: &sync.Once{}, seen: make(chan struct{})}
	log := slog.New(sig)
	p := newPhone(t, log)
	out := &lineWriter{lines: make(chan map[string]any, 256)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, p, null, out, log) }()

	select {
	case <-sig.seen: // Run has read the end of /dev/null
	case err := <-done:
		t.Fatalf("Run ended at the end of /dev/null: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not report reading the end of /dev/null")
	}
	// Still serving after the end of input: a change of user restarts the peer, which the phone
	// reports as a "left" event, and Run writes it out only while it runs (it unsubscribes when
	// it ends). What the restart itself then does is the phone's business, not this test's.
	if err := p.SetUser("carol"); err != nil {
		t.Fatal(err)
	}
	out.wait(t, "left", 30*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("Run ended with the phone's error after the restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end after cancel")
	}
}

// End of input from a pipe (a script or a parent process closing stdin) still quits.
func TestPipeEOFQuits(t *testing.T) {
	w, out, done := runPiped(t)
	bw := bufio.NewWriter(w)
	bw.WriteString("status\n")
	bw.Flush()
	out.wait(t, "status", 30*time.Second)
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after end of input: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end at the end of a pipe's input")
	}
}

func TestIsNullDevice(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if !isNullDevice(null) {
		t.Error("os.DevNull is not recognised as the null device")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isNullDevice(r) {
		t.Error("a pipe is taken for the null device")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isNullDevice(f) {
		t.Error("a regular file is taken for the null device")
	}
	if isNullDevice(strings.NewReader("")) {
		t.Error("a strings.Reader is taken for the null device")
	}
}

// Every error event carries a stable code beside its message (README "Headless interface").
func TestErrorCodes(t *testing.T) {
	w, out, done := runPiped(t)
	for _, c := range []struct{ line, code string }{
		{"frobnicate", "unknown_command"},
		{"call", "bad_arguments"},
		{"status now", "bad_arguments"},
		{"hangup", "no_call"},
		{"answer", "not_ringing"},
		{"call bad/name", "bad_user"},
		{"lookup bad/name", "bad_user"},
		{"new-identity", "identity_readable"},
	} {
		if _, err := io.WriteString(w, c.line+"\n"); err != nil {
			t.Fatal(err)
		}
		e := out.next(t, "error", 30*time.Second)
		if e["code"] != c.code || e["message"] == "" {
			t.Errorf("%q: got %v, want code %q and a message", c.line, e, c.code)
		}
	}
	w.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end at the end of input")
	}
}

// TestHintsNameNoSettings: trouble with a command-line way out says it, and no headless
// message points to the GUI's Settings.
func TestHintsNameNoSettings(t *testing.T) {
	for code, want := range map[string]string{
		phone.CodeListenPortTaken:  "--listen",
		phone.CodeNoCaptureDevice:  "--audio-in",
		phone.CodeNoPlaybackDevice: "--audio-out",
		"needs_enrollment":         "chordphone enroll",
	} {
		e := withHint(phone.Event{Kind: phone.EventWarning, Code: code, Message: "Something happened."})
		if code == "needs_enrollment" {
			e = withHint(phone.Event{Kind: phone.EventError, Code: code, Message: "Something happened."})
		}
		if !strings.Contains(e.Message, want) || strings.Contains(e.Message, "Settings") {
			t.Errorf("%s: %q, want a hint with %q and no Settings", code, e.Message, want)
		}
	}
	if e := withHint(phone.Event{Kind: phone.EventRegistered, Code: phone.CodeListenPortTaken, Message: "x"}); e.Message != "x" {
		t.Errorf("a hint on a %s event: %q", e.Kind, e.Message)
	}
}

// runPiped runs a headless phone reading a pipe (returned: its write end) and waits for
// started; done gets Run's result.
func runPiped(t *testing.T) (*os.File, *lineWriter, chan error) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := newPhone(t, log)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	out := &lineWriter{lines: make(chan map[string]any, 256)}
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), p, r, out, log) }()
	out.wait(t, "started", 30*time.Second)
	return w, out, done
}
