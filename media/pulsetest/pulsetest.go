// Package pulsetest runs a private PulseAudio daemon for a test, so real
// PortAudio capture and playback work on a machine without a sound card.
//
// The daemon has two null sinks: "speaker" (the default sink: what the
// program plays) and "mic" whose monitor is the default source (what the
// program records). PlayToMic feeds a signal into the microphone and Record
// captures what the program plays to the speaker.
//
// Start sets PULSE_SERVER, PULSE_RUNTIME_PATH, XDG_RUNTIME_DIR and HOME with
// t.Setenv (so tests using it cannot run in parallel); Env returns the same
// variables for subprocesses.
package pulsetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// SpeakerSink is the default sink: what programs play ends up here.
	SpeakerSink = "speaker"
	// MicSink is the sink whose monitor is the default source (the "microphone").
	MicSink = "mic"
	// Rate and Channels are the sample spec of both sinks and of PlayToMic/Record.
	Rate     = 48000
	Channels = 1
)

// Daemon is a running private PulseAudio server.
type Daemon struct {
	dir    string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
}

// Available reports whether the pulseaudio, pactl, pacat and parec programs exist.
func Available() error {
	for _, p := range []string{"pulseaudio", "pactl", "pacat", "parec"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("pulsetest: %s not installed: %w", p, err)
		}
	}
	return nil
}

// Start launches a daemon in t.TempDir(), waits until it answers, points this
// process at it and stops it when the test ends. It fails the test if the
// daemon cannot start; when PulseAudio is not installed it skips the test.
func Start(t testing.TB) *Daemon {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	d, err := start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	for _, kv := range d.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return d
}

func start(dir string) (*Daemon, error) {
	runtime := filepath.Join(dir, "run")
	pulseRuntime := filepath.Join(runtime, "pulse")
	home := filepath.Join(dir, "home")
	for _, p := range []string{pulseRuntime, home} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("pulsetest: %w", err)
		}
	}
	socket := filepath.Join(pulseRuntime, "native")
	script := fmt.Sprintf(`load-module module-native-protocol-unix auth-anonymous=1 socket=%s
load-module module-null-sink sink_name=%s rate=%d channels=%d
load-module module-null-sink sink_name=%s rate=%d channels=%d
set-default-sink %s
set-default-source %s.monitor
`, socket, SpeakerSink, Rate, Channels, MicSink, Rate, Channels, SpeakerSink, MicSink)
	scriptPath := filepath.Join(dir, "daemon.pa")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		return nil, fmt.Errorf("pulsetest: %w", err)
	}
	env := []string{
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + runtime,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PULSE_RUNTIME_PATH=" + pulseRuntime,
		"PULSE_STATE_PATH=" + filepath.Join(dir, "state"),
		"PULSE_SERVER=unix:" + socket,
	}
	d := &Daemon{dir: dir, env: env, exited: make(chan struct{}), log: new(bytes.Buffer)}
	d.cmd = exec.Command("pulseaudio", "--system=false", "-n", "-F", scriptPath,
		"--exit-idle-time=-1", "--daemonize=no", "--disallow-exit=false", "--use-pid-file=false",
		"--log-target=stderr")
	d.cmd.Env = d.Env()
	d.cmd.Dir = dir
	d.cmd.Stderr = &lockedWriter{w: d.log}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pulsetest: start pulseaudio: %w", err)
	}
	go func() { // owned by d; ends when the daemon exits (stop kills it)
		d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(20 * time.Second); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitReady polls `pactl info` until the daemon answers (its socket exists
// and the modules are loaded) or the daemon exits.
func (d *Daemon) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	delay := 10 * time.Millisecond
	for {
		out, err := d.pactl("list", "short", "sinks")
		if err == nil && strings.Contains(out, MicSink) && strings.Contains(out, SpeakerSink) {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("pulsetest: pulseaudio exited during start-up: %s", d.log.String())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pulsetest: pulseaudio not ready after %v: %v", limit, err)
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func (d *Daemon) pactl(args ...string) (string, error) {
	cmd := exec.Command("pactl", args...)
	cmd.Env = d.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("pactl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Pactl runs pactl against the daemon and returns its output.
func (d *Daemon) Pactl(args ...string) (string, error) { return d.pactl(args...) }

func (d *Daemon) stop() {
	if d.cmd.Process != nil {
		d.cmd.Process.Kill()
	}
	<-d.exited
}

// Stop kills the daemon now (the sound server goes away, as when a
// device is unplugged); it is also stopped at the end of the test.
func (d *Daemon) Stop() { d.stop() }

// Env returns the environment of this process with the daemon's variables
// replaced, for subprocesses (cmd.Env = d.Env()).
func (d *Daemon) Env() []string {
	keys := map[string]bool{}
	for _, kv := range d.env {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, d.env...)
}

// Vars returns only the daemon's variables (KEY=VALUE).
func (d *Daemon) Vars() []string { return append([]string(nil), d.env...) }

// PlayToMic plays samples (mono 48 kHz) into the microphone, repeating them
// until ctx ends, through pacat. It returns when pacat has started; the
// returned function stops playback and waits for pacat to exit.
func (d *Daemon) PlayToMic(ctx context.Context, samples []int16) (stop func(), err error) {
	if len(samples) == 0 {
		return nil, errors.New("pulsetest: no samples to play")
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, "pacat", "--playback", "--raw", "--device="+MicSink,
		"--format=s16le", fmt.Sprintf("--rate=%d", Rate), fmt.Sprintf("--channels=%d", Channels),
		"--latency-msec=200")
	cmd.Env = d.Env()
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pulsetest: pacat: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("pulsetest: start pacat: %w", err)
	}
	raw := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
	}
	done := make(chan struct{})
	go func() { // owned by the returned stop function
		defer close(done)
		defer in.Close()
		for ctx.Err() == nil {
			if _, err := in.Write(raw); err != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		cmd.Wait()
	}, nil
}

// Recorder captures what is played to the speaker sink.
type Recorder struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	mu     sync.Mutex
	buf    bytes.Buffer
	done   chan struct{}
}

// Record starts parec on the speaker's monitor. Stop returns the samples.
func (d *Daemon) Record(ctx context.Context) (*Recorder, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Recorder{cancel: cancel, done: make(chan struct{})}
	r.cmd = exec.CommandContext(ctx, "parec", "--raw", "--device="+SpeakerSink+".monitor",
		"--format=s16le", fmt.Sprintf("--rate=%d", Rate), fmt.Sprintf("--channels=%d", Channels),
		"--latency-msec=100")
	r.cmd.Env = d.Env()
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pulsetest: parec: %w", err)
	}
	if err := r.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("pulsetest: start parec: %w", err)
	}
	go func() { // owned by r; ends when parec exits (Stop cancels it)
		defer close(r.done)
		b := make([]byte, 8192)
		for {
			n, err := out.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r, nil
}

// Len returns the number of samples recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Len() / 2
}

// Stop ends the recording and returns the samples (mono 48 kHz).
func (r *Recorder) Stop() []int16 {
	r.cancel()
	<-r.done
	r.cmd.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	raw := r.buf.Bytes()
	s := make([]int16, len(raw)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return s
}

// NoServerEnv returns variables (KEY=VALUE) under dir that leave a program with no sound
// server and so, on a machine without a sound card, no sound device: PULSE_SERVER names a
// socket nobody listens on (and PulseAudio does not autospawn when it is set), the runtime
// and home directories are empty.
func NoServerEnv(dir string) []string {
	return []string{
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", ".config"),
		"PULSE_RUNTIME_PATH=" + filepath.Join(dir, "run", "pulse"),
		"PULSE_STATE_PATH=" + filepath.Join(dir, "state"),
		"PULSE_SERVER=unix:" + filepath.Join(dir, "no-such-server"),
		"JACK_NO_START_SERVER=1",
	}
}

// NoServer points this process at no sound server (NoServerEnv, with t.Setenv) for the rest
// of the test.
func NoServer(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, kv := range NoServerEnv(dir) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
