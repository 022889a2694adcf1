package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hostsNetns makes a network namespace whose /etc/hosts (bind-mounted by `ip netns exec` from
// /etc/netns/NAME/hosts) resolves each name to 127.0.0.1: the overlay's name resolves for every
// process run in it, through the resolver the phone already uses. Removed when the test ends.
func hostsNetns(t *testing.T, names ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace with its own /etc/hosts")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := "cpjoin" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	etc := filepath.Join("/etc/netns", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		_ = os.RemoveAll(etc)
	})
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := "127.0.0.1 localhost\n"
	for _, n := range names {
		hosts += "127.0.0.1 " + n + "\n"
	}
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return ns
}

// command runs chordphone ARGS (in ns when not "") with stdin and returns stdout; it fails the
// test on a non-zero exit unless allowFail.
func command(t *testing.T, ns, dir, stdin string, allowFail bool, args ...string) (string, int) {
	t.Helper()
	argv := append([]string{binPath}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = IsolatedEnv(dir)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := cmd.ProcessState.ExitCode()
	if err != nil && !allowFail {
		t.Fatalf("chordphone %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	t.Logf("$ chordphone %s\n%s%s", strings.Join(args, " "), out, stderr.String())
	return string(out), code
}

// logWatch collects a process's output lines and tells when one containing a string appears.
type logWatch struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func watchLines(r *os.File) *logWatch {
	w := &logWatch{added: make(chan struct{}, 1)}
	go func() { // owner: the process; ends when its output closes
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.added <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *logWatch) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (w *logWatch) wait(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !w.has(s) {
		select {
		case <-w.added:
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no %q within %v; output:\n%s", s, timeout, tail(strings.Join(w.lines, "\n"), 3000))
		}
	}
}

// startOverlayServer runs `chordphone overlay-server serve` in ns, as the README's operator
// does, and waits until it serves HTTPS and runs its bootstrap peer.
func startOverlayServer(t *testing.T, ns, dir string, args ...string) *logWatch {
	t.Helper()
	argv := append([]string{"netns", "exec", ns, binPath, "overlay-server", "serve"}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Env = IsolatedEnv(dir)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lw := watchLines(r)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		r.Close()
		if t.Failed() {
			lw.mu.Lock()
			t.Logf("overlay-server output:\n%s", tail(strings.Join(lw.lines, "\n"), 4000))
			lw.mu.Unlock()
		}
	})
	lw.wait(t, "listening on", 60*time.Second)
	lw.wait(t, "bootstrap peer running", 60*time.Second)
	return lw
}

// redPixels counts the pixels of a screenshot in the danger colour (an error label).
func redPixels(t *testing.T, path string) int {
	return countMatching(t, path, func(r, g, b uint32) bool { return r > 180 && g < 110 && b < 110 })
}

// bluePixels counts the pixels in the primary colour (the Save and Join buttons' blue).
func bluePixels(t *testing.T, path string) int {
	return countMatching(t, path, func(r, g, b uint32) bool { return b > 200 && r < 100 && g > 80 && g < 160 })
}

func countMatching(t *testing.T, path string, match func(r, g, b uint32) bool) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if match(r>>8, g>>8, bl>>8) {
				n++
			}
		}
	}
	return n
}

// registeredDot reports whether the main window's state dot (top left) is green: registered.
func registeredDot(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := img.At(14, 21).RGBA()
	return g>>8 > 150 && r>>8 < 120 && b>>8 < 120
}

// shotUntil saves screenshots of window at path until cond holds for one, failing after timeout.
func shotUntil(t *testing.T, display, window, path, what string, timeout time.Duration, cond func(path string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := Screenshot(display, window, path); err != nil {
			t.Fatal(err)
		}
		if cond(path) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %v (last screenshot %s)", what, timeout, path)
		}
		time.Sleep(200 * time.Millisecond) // the next frame
	}
}

// waitFile waits until path exists and has stopped growing (a WAV written at a call's end).
func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		fi, err := os.Stat(path)
		if err == nil && fi.Size() > 44 && fi.Size() == last {
			return
		}
		if err == nil {
			last = fi.Size()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written within %v", path, timeout)
		}
		time.Sleep(250 * time.Millisecond) // polling the file system
	}
}

// TestJoinByInvitationAndCall is issue 23 as a person lives it. The operator sets up overlay
// lab.test with `overlay-server init`, adds alice and bob, makes an invitation for each
// (`overlay-server invite`) and runs `overlay-server serve` on port 443 with its bootstrap peer
// (the HTTPS certificate is issued by the overlay's own CA). Everything runs in a network
// namespace whose /etc/hosts resolves lab.test. Bob's always-on headless phone is enrolled with
// `chordphone enroll --invite LINK` (password on stdin). Alice starts the GUI, types her name,
// opens Settings and first types the overlay's name and her password: the phone shows the
// fingerprint of the CA the server presents, to compare with the operator's, and she cancels.
// Then she types her invitation link into the Overlay tab, a wrong password first (the dialog
// says so) and then the right one, and joins. Then they call each other by name.
// Screenshots of each step are saved.
func TestJoinByInvitationAndCall(t *testing.T) {
	ns := hostsNetns(t, "lab.test")
	display := StartXvfb(t)
	art := ArtifactsDir(t)
	dir := t.TempDir()
	op := filepath.Join(dir, "op")

	// The operator.
	command(t, "", dir, "", false, "overlay-server", "init", "--dir", op, "--name", "lab.test")
	command(t, "", dir, "alice-password\n", false, "overlay-server", "user", "add", "alice", "--dir", op)
	command(t, "", dir, "bob-password\n", false, "overlay-server", "user", "add", "bob", "--dir", op)
	aliceLink, _ := command(t, "", dir, "", false, "overlay-server", "invite", "--dir", op, "--user", "alice")
	bobLink, _ := command(t, "", dir, "", false, "overlay-server", "invite", "--dir", op, "--user", "bob")
	aliceLink, bobLink = strings.TrimSpace(aliceLink), strings.TrimSpace(bobLink)
	if _, err := os.Stat(filepath.Join(op, "invite-alice.png")); err != nil {
		t.Fatalf("no QR code: %v", err)
	}
	srv := startOverlayServer(t, ns, dir, "--dir", op, "--listen", "127.0.0.1:443", "--peer-listen", "127.0.0.1:6084")

	// An always-on storing peer given the configuration document as a file: it needs
	// enrollment and says how, without pointing to a GUI; `chordphone enroll --config FILE`
	// (the file's root-cert is the CA trusted) makes its profile join with no overlay flags.
	command(t, "", dir, "storer-password\n", false, "overlay-server", "user", "add", "storer", "--dir", op)
	doc, _ := command(t, "", dir, "", false, "overlay-server", "config", "--dir", op)
	cfgFile := filepath.Join(dir, "lab.test.xml")
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	sdir := t.TempDir()
	sprofile := filepath.Join(sdir, "profile")
	storer := StartHeadlessIn(t, ns, binPath, "storer-unenrolled", sdir, "--profile", sprofile, "--config", cfgFile, "--listen", "127.0.0.1:0")
	e := storer.Wait(t, "error", 60*time.Second)
	if msg, _ := e["message"].(string); e["code"] != "needs_enrollment" || !strings.Contains(msg, "chordphone enroll") || strings.Contains(msg, "Settings") {
		t.Errorf("an unenrolled peer says %v", e)
	}
	storer.Send(t, "quit")
	<-storer.Exited()
	command(t, ns, sdir, "storer-password\n", false, "enroll", "--profile", sprofile, "--config", cfgFile, "--user", "storer")
	storer = StartHeadlessIn(t, ns, binPath, "storer", sdir, "--profile", sprofile, "--listen", "127.0.0.1:0")
	if e := storer.Wait(t, "registered", 90*time.Second); e["aor"] != "sip:storer@lab.test" {
		t.Fatalf("the storing peer registered as %v", e["aor"])
	}

	// Bob's headless phone, enrolled from the command line.
	bdir := t.TempDir()
	bprofile := filepath.Join(bdir, "profile")
	out, _ := command(t, ns, bdir, "bob-password\n", false, "enroll", "--profile", bprofile, "--invite", bobLink)
	var enrolled map[string]any
	if err := json.Unmarshal([]byte(out), &enrolled); err != nil || enrolled["event"] != "enrolled" || enrolled["user"] != "bob@lab.test" {
		t.Fatalf("enroll: %q %v", out, err)
	}
	bsig, bin, bout := audioFiles(t, bdir, "bob", 2)
	bob := StartHeadlessIn(t, ns, binPath, "bob", bdir, "--profile", bprofile, "--listen", "127.0.0.1:0",
		"--audio-in", bin, "--audio-out", bout, "--auto-answer")
	if e := bob.Wait(t, "registered", 90*time.Second); e["aor"] != "sip:bob@lab.test" {
		t.Fatalf("bob registered as %v", e["aor"])
	}

	// Alice's desktop phone.
	adir := t.TempDir()
	asig, ain, aout := audioFiles(t, adir, "alice", 1)
	cmd := exec.Command("ip", "netns", "exec", ns, binPath, "--profile", filepath.Join(adir, "profile"),
		"--listen", "127.0.0.1:0", "--audio-in", ain, "--audio-out", aout)
	runGUI(t, display, adir, cmd)
	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	shot := func(name string) string { return filepath.Join(art, "join-"+name+".png") }
	drawn := func(p string) bool { n, err := ImageColours(p, 16); return err == nil && n >= 8 }
	shotUntil(t, display, win, shot("1-first-start"), "the first frame", 30*time.Second, drawn)

	// First start: her name, then Settings (the gear at the bottom right).
	xdo(t, display, "type", "--window", win, "--delay", "20", "alice")
	xdo(t, display, "mousemove", "--window", win, "209", "401", "click", "1") // Continue
	before, _ := os.ReadFile(shot("1-first-start"))
	after := shotChanged(t, display, win, shot("2-named"), before)
	xdo(t, display, "mousemove", "--window", win, "398", "612", "click", "1")
	shotChanged(t, display, win, shot("3-settings"), after)

	// First without the invitation: the overlay's name, user and password. The server's CA is
	// unknown, so the phone shows its fingerprint to compare; she cancels.
	settings, _ := os.ReadFile(shot("3-settings"))
	xdo(t, display, "mousemove", "--window", win, "45", "217", "click", "1")  // Named overlay
	xdo(t, display, "mousemove", "--window", win, "257", "318", "click", "1") // Overlay
	xdo(t, display, "type", "--window", win, "--delay", "20", "lab.test")
	xdo(t, display, "key", "--window", win, "Tab", "Tab") // to User name (alice), Password
	xdo(t, display, "type", "--window", win, "--delay", "20", "alice-password")
	xdo(t, display, "key", "--window", win, "Return")
	srv.wait(t, "TLS handshake error", 60*time.Second) // the phone refused the unknown CA
	var prev []byte
	shotUntil(t, display, win, shot("4-confirm-fingerprint"), "the fingerprint to confirm", 30*time.Second, func(p string) bool {
		b, _ := os.ReadFile(p)
		same := bytes.Equal(b, prev) && !bytes.Equal(b, settings)
		prev = b
		return same
	})
	xdo(t, display, "mousemove", "--window", win, "117", "411", "click", "1") // Cancel
	shotUntil(t, display, win, shot("5-not-confirmed"), "the refusal under the fields", 30*time.Second,
		func(p string) bool { return redPixels(t, p) > 100 })

	// The invitation, typed into the Overlay tab, fills the overlay and the user and shows the CA.
	xdo(t, display, "mousemove", "--window", win, "257", "257", "click", "1")
	xdo(t, display, "type", "--window", win, "--delay", "10", aliceLink)
	settings, _ = os.ReadFile(shot("5-not-confirmed"))
	prev = nil
	shotUntil(t, display, win, shot("6-invitation"), "the dialog filled from the invitation", 30*time.Second, func(p string) bool {
		b, _ := os.ReadFile(p)
		same := bytes.Equal(b, prev) && !bytes.Equal(b, settings) // drawn, and no longer changing
		prev = b
		return same
	})

	// A wrong password: the dialog says so in a sentence.
	xdo(t, display, "key", "--window", win, "Tab", "Tab", "Tab", "ctrl+a") // to Overlay, User name, Password
	xdo(t, display, "type", "--window", win, "--delay", "20", "wrong-password")
	xdo(t, display, "key", "--window", win, "Return")
	srv.wait(t, "enrollment refused", 60*time.Second)
	shotUntil(t, display, win, shot("7-wrong-password"), "the wrong-password message", 30*time.Second,
		func(p string) bool { return redPixels(t, p) > 100 })

	// The right password: joined and registered in lab.test.
	xdo(t, display, "key", "--window", win, "ctrl+a")
	xdo(t, display, "type", "--window", win, "--delay", "20", "alice-password")
	xdo(t, display, "key", "--window", win, "Return")
	srv.wait(t, "certificate issued", 60*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for len(lookupAll(t, bob, []string{"alice"})) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("alice never became reachable in lab.test")
		}
	}
	prev = nil
	shotUntil(t, display, win, shot("8-joined"), "the dialog saying joined", 30*time.Second, func(p string) bool {
		b, _ := os.ReadFile(p)
		same := bytes.Equal(b, prev) // the progress bar has stopped
		prev = b
		return same && redPixels(t, p) < 20
	})
	joined, _ := os.ReadFile(shot("8-joined"))
	xdo(t, display, "mousemove", "--window", win, "177", "571", "click", "1") // Cancel: already joined
	main := shotChanged(t, display, win, shot("9-main-window"), joined)

	// Alice calls bob by name; bob answers.
	xdo(t, display, "mousemove", "--window", win, "170", "67", "click", "1")
	xdo(t, display, "type", "--window", win, "--delay", "20", "bob")
	xdo(t, display, "mousemove", "--window", win, "383", "67", "click", "1")
	bob.Wait(t, "incoming", 30*time.Second)
	bob.Wait(t, "answered", 30*time.Second)
	waitReceived(t, bob, 200) // 4 s of audio
	shotChanged(t, display, win, shot("10-in-call"), main)
	bob.Send(t, "hangup")
	bob.Wait(t, "hangup", 20*time.Second)
	checkAudio(t, "alice -> bob", asig, bout)

	// Bob calls alice by name; she accepts in the incoming-call window.
	bob.Send(t, "call alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	find := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Incoming call")
	find.Env = append(os.Environ(), "DISPLAY="+display)
	o, err := find.Output()
	if err != nil {
		t.Fatalf("no incoming-call window: %v", err)
	}
	iw := strings.Fields(string(o))[0]
	bob.Wait(t, "ringing", 20*time.Second)
	xdo(t, display, "mousemove", "--window", iw, "240", "115", "click", "1") // Accept
	bob.Wait(t, "answered", 30*time.Second)
	waitReceived(t, bob, 200)
	bob.Send(t, "hangup")
	h := bob.Wait(t, "hangup", 20*time.Second)
	if r := rtpOf(t, h); r["received"].(float64) < 150 || r["sent"].(float64) < 150 {
		t.Errorf("bob's RTP statistics too small: %v", r)
	}
	waitFile(t, aout, 20*time.Second)
	checkAudio(t, "bob -> alice", bsig, aout)
}

// TestInvitationLinkHandedToRunningPhone: opening a join link while the phone runs (the desktop
// starts `chordphone LINK` again, on the same profile) shows the running phone's Settings →
// Overlay filled; the second start ends at once with status 0.
func TestInvitationLinkHandedToRunningPhone(t *testing.T) {
	display := StartXvfb(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	cmd := exec.Command(binPath, "--profile", profile, "--user", "carol", "--overlay", "handoff.test", "--listen", "127.0.0.1:0")
	runGUI(t, display, dir, cmd)
	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	main := filepath.Join(ArtifactsDir(t), "join-link-before.png")
	var before []byte
	shotUntil(t, display, win, main, "the main window, registered and still", 60*time.Second, func(p string) bool {
		b, _ := os.ReadFile(p)
		n, err := ImageColours(p, 16)
		same := bytes.Equal(b, before) && err == nil && n >= 8
		before = b
		return same && registeredDot(t, p)
	})

	link := "chordphone:join?overlay=lab.test&ca=sha256:" + strings.Repeat("5a", 32) + "&user=carol"
	second := exec.Command(binPath, "--profile", profile, link)
	second.Env = append(IsolatedEnv(dir), "DISPLAY="+display)
	out, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "the running phone shows the invitation") {
		t.Fatalf("second start: %v: %s", err, out)
	}
	blue := bluePixels(t, main)
	shotUntil(t, display, win, filepath.Join(ArtifactsDir(t), "join-link-handed-over.png"), "Settings filled from the link",
		30*time.Second, func(p string) bool { return bluePixels(t, p) > blue+1500 }) // the dialog's Save button
}
