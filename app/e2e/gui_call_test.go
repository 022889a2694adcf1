package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// xdo runs xdotool on display.
func xdo(t *testing.T, display string, args ...string) string {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xdotool %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// runGUI starts cmd, a desktop phone, on display in dir's isolated environment; the test's
// cleanup ends it (SIGTERM, a kill after 10 s) and logs its stderr when the test failed.
func runGUI(t *testing.T, display, dir string, cmd *exec.Cmd) {
	t.Helper()
	cmd.Env = append(IsolatedEnv(dir), "DISPLAY="+display)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owner: the test's cleanup below
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("GUI stderr:\n%s", tail(stderr.String(), 4000))
		}
	})
}

// shotChanged saves a screenshot of window at path, retrying until the picture differs from
// before (the view has changed) or the bound passes.
func shotChanged(t *testing.T, display, window, path string, before []byte) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := Screenshot(display, window, path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, before) || time.Now().After(deadline) {
			return b
		}
		time.Sleep(100 * time.Millisecond) // the next frame
	}
}

// TestGUICallsByName starts the real GUI under Xvfb in a test overlay with a headless peer:
// a user name typed into the dial field and a click on Call reach the headless callee; an
// incoming call opens its own window whose Accept answers it. Screenshots of the main
// window, the in-call view, the settings dialog and the incoming-call window are saved.
func TestGUICallsByName(t *testing.T) {
	display := StartXvfb(t)
	art := ArtifactsDir(t)
	o := StartOverlay(t, "gui.test", 2)
	bob := startPhone(t, o, "bob", 2, "--auto-answer")

	dir := t.TempDir()
	_, in, outWAV := audioFiles(t, dir, "alice", 1)
	cmd := exec.Command(binPath, "--profile", filepath.Join(dir, "profile"), "--user", "alice",
		"--overlay", o.Name, "--bootstrap", o.Addrs[0], "--listen", "127.0.0.1:0",
		"--audio-in", in, "--audio-out", outWAV)
	runGUI(t, display, dir, cmd)
	win := waitWindow(t, display, "Chordphone", 60*time.Second)

	// The GUI has registered alice once bob finds her.
	deadline := time.Now().Add(30 * time.Second)
	for len(lookupAll(t, bob.Proc, []string{"alice"})) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the GUI's user alice never became reachable")
		}
	}
	main := shotChanged(t, display, win, filepath.Join(art, "gui-main-window.png"), nil)

	// Outgoing: type into the focused dial field, click Call.
	xdo(t, display, "type", "--window", win, "--delay", "20", "bob")
	xdo(t, display, "mousemove", "--window", win, "383", "67", "click", "1")
	bob.Wait(t, "incoming", 20*time.Second)
	bob.Wait(t, "answered", 20*time.Second)
	waitReceived(t, bob.Proc, 50)
	shotChanged(t, display, win, filepath.Join(art, "gui-in-call.png"), main)
	bob.Send(t, "hangup")
	bob.Wait(t, "hangup", 20*time.Second)

	// Settings dialog (the gear at the bottom right) over the main view, then Cancel.
	inCall, _ := os.ReadFile(filepath.Join(art, "gui-in-call.png"))
	before := shotChanged(t, display, win, filepath.Join(art, "gui-after-call.png"), inCall)
	xdo(t, display, "mousemove", "--window", win, "398", "618", "click", "1")
	shotChanged(t, display, win, filepath.Join(art, "gui-settings.png"), before)
	xdo(t, display, "mousemove", "--window", win, "177", "532", "click", "1") // Cancel

	// Incoming: bob calls alice; the incoming-call window's Accept answers.
	bob.Send(t, "call alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	find := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Incoming call")
	find.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := find.Output()
	if err != nil {
		t.Fatalf("no incoming-call window: %v", err)
	}
	iw := strings.Fields(string(out))[0]
	bob.Wait(t, "ringing", 20*time.Second)
	if err := Screenshot(display, "root", filepath.Join(art, "gui-incoming-call.png")); err != nil {
		t.Fatal(err)
	}
	if focus := xdo(t, display, "getwindowfocus", "getwindowname"); focus != "Chordphone" {
		t.Errorf("the incoming-call window took the keyboard focus (focus on %q)", focus)
	}
	geo := xdo(t, display, "getwindowgeometry", iw)
	t.Logf("incoming-call window: %s", strings.ReplaceAll(geo, "\n", "; "))
	xdo(t, display, "mousemove", "--window", iw, "240", "115", "click", "1") // Accept
	bob.Wait(t, "answered", 20*time.Second)
	bob.Send(t, "hangup")
	bob.Wait(t, "hangup", 20*time.Second)
}
