package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitWindow waits (xdotool search --sync) for a window whose name matches name exactly.
func waitWindow(t *testing.T, display, name string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^"+name+"$")
	cmd.Env = append(IsolatedEnv(t.TempDir()), "DISPLAY="+display)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("window %q did not appear within %v: %v", name, timeout, err)
	}
	return strings.Fields(string(out))[0]
}

// TestGUISmoke starts the real binary under Xvfb, waits for its window by name, and saves a
// screenshot that must not be blank.
func TestGUISmoke(t *testing.T) {
	display := StartXvfb(t)
	dir := t.TempDir()
	// A named overlay on loopback: no mDNS traffic on the machine's network.
	cmd := exec.Command(binPath, "--profile", filepath.Join(dir, "profile"), "--user", "smoke", "--overlay", "smoke.test", "--listen", "127.0.0.1:0")
	cmd.Env = append(IsolatedEnv(dir), "DISPLAY="+display)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("chordphone stderr:\n%s", tail(stderr.String(), 3000))
		}
	})

	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	shot := filepath.Join(ArtifactsDir(t), "gui-smoke-main-window.png")
	// The window is mapped before its first frame is drawn; retry the capture until it has content.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := Screenshot(display, win, shot); err != nil {
			t.Fatal(err)
		}
		n, err := ImageColours(shot, 16)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("screenshot %s is blank (%d colours)", shot, n)
		}
		select {
		case err := <-exited:
			t.Fatalf("chordphone exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("screenshot: %s", shot)

	// SIGTERM ends the GUI with status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GUI did not exit after SIGTERM")
	}
}
