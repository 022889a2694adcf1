package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"image"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// troubleCase is one kind of recoverable trouble at start (issue 16): how to make it, the
// code of the event that says so, and what shows the phone went on.
type troubleCase struct {
	name, code string
	kind       string // "warning" or "error"
	// prepare makes the trouble in the profile (which may not exist yet) and returns the
	// arguments to start with.
	prepare func(t *testing.T, profile string) []string
	// joins: the phone then joins its overlay (else it stays up without one).
	joins bool
	// check looks at the profile afterwards (what was set aside, never deleted).
	check func(t *testing.T, profile string)
	// says is in the event's message (headless).
	says string
}

func troubleCases() []troubleCase {
	named := []string{"--overlay", "trouble.test", "--user", "alice"}
	return []troubleCase{
		{name: "DefaultPortTaken", code: "listen_port_taken", kind: "warning", joins: true,
			prepare: func(t *testing.T, profile string) []string {
				holdPort(t, 6084) // the default port; if another program holds it, taken all the same
				return named
			}},
		{name: "SavedPortTaken", code: "listen_port_taken", kind: "warning", joins: true,
			prepare: func(t *testing.T, profile string) []string {
				port := holdPort(t, 0)
				st, err := store.Open(profile)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if err := st.SetSetting("network.listen_port", fmt.Sprint(port)); err != nil {
					t.Fatal(err)
				}
				return named
			}},
		{name: "ConfigUnreachable", code: "server_unreachable", kind: "error",
			prepare: func(t *testing.T, profile string) []string {
				// A port that refuses connections: nothing listens there.
				return []string{"--user", "alice", "--listen", "127.0.0.1:0",
					"--config", fmt.Sprintf("https://127.0.0.1:%d/.well-known/reload-config", closedPort(t))}
			}},
		{name: "ConfigCached", code: "config_cached", kind: "warning", joins: true,
			prepare: func(t *testing.T, profile string) []string {
				// The copy kept from the last verified fetch of a URL that now refuses.
				url := fmt.Sprintf("https://127.0.0.1:%d/.well-known/reload-config", closedPort(t))
				cacheConfig(t, profile, url, "cached.test")
				return []string{"--user", "alice", "--listen", "127.0.0.1:0", "--config", url}
			}},
		{name: "DamagedDatabase", code: "profile_db_damaged", kind: "warning", joins: true,
			prepare: func(t *testing.T, profile string) []string {
				writeFile(t, filepath.Join(profile, "chordphone.db"), strings.Repeat("not a database ", 2000))
				return append(named, "--listen", "127.0.0.1:0")
			},
			check: func(t *testing.T, profile string) { setAside(t, profile, "chordphone.db.damaged-") }},
		{name: "DamagedDatabaseKeepsRecords", code: "profile_db_damaged", kind: "warning", joins: true,
			says: "2 records (contacts, calls, settings) could be read and were kept, 1 could not",
			prepare: func(t *testing.T, profile string) []string {
				st, err := store.Open(profile)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range []string{"bob", "carol"} {
					if _, err := st.AddContact(store.Contact{User: u, Name: "Contact " + u}); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.SetSetting("network.listen_port", "0"); err != nil {
					t.Fatal(err)
				}
				st.Close()
				path := filepath.Join(profile, "chordphone.db")
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				i := strings.Index(string(b), `"Contact carol"`)
				if i < 0 {
					t.Fatal("no record to garble")
				}
				copy(b[i:], "\x00\x01garbled") // one record (bbolt has no checksums on data pages)
				writeFile(t, path, string(b))
				return append(named, "--listen", "127.0.0.1:0")
			},
			check: func(t *testing.T, profile string) { setAside(t, profile, "chordphone.db.damaged-") }},
		{name: "DamagedPins", code: "pins_damaged", kind: "warning", joins: true,
			prepare: func(t *testing.T, profile string) []string {
				writeFile(t, filepath.Join(profile, "pins.json"), `{"bob": {"key_sha256": `)
				return append(named, "--listen", "127.0.0.1:0")
			},
			check: func(t *testing.T, profile string) { setAside(t, profile, "pins.json.damaged-") }},
	}
}

// cacheConfig keeps in profile, as the last verified copy fetched from url, the signed
// configuration of a self-signed overlay.
func cacheConfig(t *testing.T, profile, url, overlay string) {
	t.Helper()
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := identity.NewSelfSigned(key, "operator", overlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	c := config.SelfSigned(overlay)
	id := signer.NodeID()
	c.ConfigurationSigners = []string{hex.EncodeToString(id[:])}
	data, err := config.Encode(signer, c)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.ParseOverlay(data, overlay)
	if err != nil {
		t.Fatal(err)
	}
	if err := config.SaveCached(profile, url, parsed); err != nil {
		t.Fatal(err)
	}
}

// holdPort binds UDP and TCP port (0: any) on all addresses for the test and returns it.
func holdPort(t *testing.T, port int) int {
	t.Helper()
	uc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Logf("port %d is held by another program already: %v", port, err)
		return port
	}
	port = uc.LocalAddr().(*net.UDPAddr).Port
	t.Cleanup(func() { uc.Close() })
	if tl, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port)); err == nil {
		t.Cleanup(func() { tl.Close() })
	}
	return port
}

// closedPort returns a loopback TCP port nothing listens on (just closed).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// setAside checks that the profile holds a file whose name starts with prefix (the damaged
// file, kept) and returns its path.
func setAside(t *testing.T, profile, prefix string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(profile, prefix+"*"))
	if len(m) != 1 {
		t.Fatalf("no %s* in the profile (nothing may be deleted): %v", prefix, m)
	}
	return m[0]
}

// TestTroubleHeadless: each recoverable trouble at start gives an event with its code, and
// the headless phone keeps running (joins its overlay where it can).
func TestTroubleHeadless(t *testing.T) {
	for _, tc := range troubleCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			profile := filepath.Join(dir, "profile")
			args := append([]string{"--profile", profile}, tc.prepare(t, profile)...)
			p := StartHeadless(t, binPath, "alice", dir, args...)
			e := p.Wait(t, tc.kind, 60*time.Second)
			for e["code"] != tc.code {
				e = p.Wait(t, tc.kind, 60*time.Second)
			}
			t.Logf("%s: %s", e["code"], e["message"])
			if !strings.Contains(fmt.Sprint(e["message"]), tc.says) {
				t.Errorf("the message does not say %q", tc.says)
			}
			if tc.joins {
				p.Wait(t, "joined", 60*time.Second)
			}
			p.Send(t, "status")
			st := p.Wait(t, "status", 30*time.Second)
			if tc.code == "listen_port_taken" && strings.HasSuffix(fmt.Sprint(st["listen"]), ":6084") {
				t.Errorf("listening on the taken port: %v", st["listen"])
			}
			if tc.check != nil {
				tc.check(t, profile)
			}
			p.Send(t, "quit")
			select {
			case <-p.Exited():
				if p.ExitErr != nil {
					t.Errorf("exit after quit: %v", p.ExitErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no exit after quit")
			}
		})
	}
}

// TestTroubleGUI: the same trouble with the real GUI under Xvfb: the window stays up and
// shows a dialog saying what happened and what to do (screenshots in the artifacts).
func TestTroubleGUI(t *testing.T) {
	for _, tc := range troubleCases() {
		t.Run(tc.name, func(t *testing.T) {
			display := StartXvfb(t)
			dir := t.TempDir()
			profile := filepath.Join(dir, "profile")
			g := startGUI(t, display, dir, append([]string{"--profile", profile}, tc.prepare(t, profile)...)...)
			win := waitWindow(t, display, "Chordphone", 60*time.Second)
			g.waitLine(t, "code="+tc.code, 60*time.Second)
			if tc.joins { // before or after the dialog
				g.seen = 0
				g.waitLine(t, "joined the overlay", 60*time.Second)
			} else { // still trying, window and all
				g.waitLine(t, "retrying", 60*time.Second)
			}
			shot := filepath.Join(ArtifactsDir(t), "gui-trouble-"+tc.code+"-"+strings.ToLower(tc.name)+".png")
			waitDialog(t, display, win, shot)
			t.Logf("screenshot: %s", shot)
			if tc.check != nil {
				tc.check(t, profile)
			}
			if len(visibleWindows(t, display)) == 0 {
				t.Fatal("the main window is gone")
			}
			g.quit(t)
		})
	}
}

// waitDialog saves screenshots of the main window at path until a dialog shows: the dark
// theme draws a dialog on a bluish background ((24,29,37)) that nothing else in the window has.
func waitDialog(t *testing.T, display, win, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := Screenshot(display, win, path); err != nil {
			t.Fatal(err)
		}
		n := countPixels(t, path, func(r, g, b uint32) bool { return b >= r+10 && b >= g+5 && b < 60 })
		if n > 40000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dialog over the main window within 30 s (%s)", path)
		}
		time.Sleep(200 * time.Millisecond) // the next frame
	}
}

// waitNoDialog saves screenshots at path until no dialog shows (see waitDialog).
func waitNoDialog(t *testing.T, display, win, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := Screenshot(display, win, path); err != nil {
			t.Fatal(err)
		}
		if countPixels(t, path, func(r, g, b uint32) bool { return b >= r+10 && b >= g+5 && b < 60 }) < 40000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dialog is still shown after 30 s (%s)", path)
		}
		time.Sleep(200 * time.Millisecond) // the next frame
	}
}

// countPixels counts the pixels of a PNG file whose 8-bit colour satisfies f.
func countPixels(t *testing.T, path string, f func(r, g, b uint32) bool) int {
	t.Helper()
	n, _, _ := findPixels(t, path, f)
	return n
}

// findPixels returns how many pixels satisfy f and their centre.
func findPixels(t *testing.T, path string, f func(r, g, b uint32) bool) (n, x, y int) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	img, _, err := image.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	bounds := img.Bounds()
	for py := bounds.Min.Y; py < bounds.Max.Y; py++ {
		for px := bounds.Min.X; px < bounds.Max.X; px++ {
			r, g, b, _ := img.At(px, py).RGBA()
			if f(r>>8, g>>8, b>>8) {
				x, y, n = x+px, y+py, n+1
			}
		}
	}
	if n > 0 {
		x, y = x/n, y/n
	}
	return n, x, y
}

// primaryButton finds the dialog's primary (blue) button in a screenshot: the centre of the
// pixels of the theme's primary colour ((41,111,246)).
func primaryButton(t *testing.T, path string) (x, y int) {
	t.Helper()
	n, x, y := findPixels(t, path, func(r, g, b uint32) bool { return r < 80 && g >= 90 && g <= 140 && b > 220 })
	if n < 100 {
		t.Fatalf("no primary button in %s", path)
	}
	return x, y
}

// startGUI starts the real GUI on display with args, its stderr lines kept for waitLine.
func startGUI(t *testing.T, display, dir string, args ...string) *guiProc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = IsolatedEnv(dir, "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	g := &guiProc{cmd: cmd, exited: make(chan error, 1), line: make(chan struct{}, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owner: the test; ends when the GUI has exited
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.mu.Lock()
			g.log.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
			select {
			case g.line <- struct{}{}:
			default:
			}
		}
		g.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-g.exited:
			g.exited <- err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			g.mu.Lock()
			t.Logf("GUI stderr:\n%s", tail(g.log.String(), 4000))
			g.mu.Unlock()
		}
	})
	return g
}

// quit ends the GUI with SIGTERM; it must exit with status 0 (it did not crash before).
func (g *guiProc) quit(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.exited:
		g.exited <- err
		t.Fatalf("the GUI exited by itself: %v", err)
	default:
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	g.waitExit(t, "SIGTERM")
}

// garbleIdentity overwrites the profile's identity.pem with something that is not one and
// returns what it wrote.
func garbleIdentity(t *testing.T, profile string) string {
	t.Helper()
	garbage := "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
	writeFile(t, filepath.Join(profile, "identity.pem"), garbage)
	return garbage
}

// TestIdentityUnreadableGUI: an unreadable identity.pem is never replaced silently: the GUI
// says so in a dialog and waits; its button "Make a new identity" sets the file aside (kept)
// and the phone joins with a new one.
func TestIdentityUnreadableGUI(t *testing.T) {
	display := StartXvfb(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	garbage := garbleIdentity(t, profile)
	g := startGUI(t, display, dir, "--profile", profile, "--user", "alice", "--overlay", "trouble.test", "--listen", "127.0.0.1:0")
	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	g.waitLine(t, "code=identity_unreadable", 60*time.Second)
	art := ArtifactsDir(t)
	waitDialog(t, display, win, filepath.Join(art, "gui-trouble-identity_unreadable.png"))
	if b, err := os.ReadFile(filepath.Join(profile, "identity.pem")); err != nil || string(b) != garbage {
		t.Fatalf("identity.pem was changed before the person chose: %v", err)
	}
	// "Not now" (the other button, mirrored about the centred dialog's middle), then the state
	// button at the top shows the choice again.
	x, y := primaryButton(t, filepath.Join(art, "gui-trouble-identity_unreadable.png"))
	xdo(t, display, "mousemove", "--window", win, fmt.Sprint(420-x), fmt.Sprint(y), "click", "1")
	waitNoDialog(t, display, win, filepath.Join(art, "gui-trouble-identity-not-now.png"))
	xdo(t, display, "mousemove", "--window", win, "372", "21", "click", "1") // "not joined"
	g.waitLine(t, "code=identity_unreadable", 30*time.Second)
	waitDialog(t, display, win, filepath.Join(art, "gui-trouble-identity_unreadable-again.png"))
	x, y = primaryButton(t, filepath.Join(art, "gui-trouble-identity_unreadable-again.png"))
	xdo(t, display, "mousemove", "--window", win, fmt.Sprint(x), fmt.Sprint(y), "click", "1") // Make a new identity
	g.waitLine(t, "a new identity was chosen", 30*time.Second)
	g.waitLine(t, "joined the overlay", 60*time.Second)
	kept := setAside(t, profile, "identity.pem.unreadable-")
	if b, err := os.ReadFile(kept); err != nil || string(b) != garbage {
		t.Errorf("the unreadable identity was not kept as it was: %v", err)
	}
	shotChanged(t, display, win, filepath.Join(art, "gui-trouble-identity-new.png"), nil)
	g.quit(t)
}
