package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/version"
)

// repoRoot is the module's root directory (this package is app/e2e).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at the repository root %s: %v", root, err)
	}
	return root
}

// gitStatus is `git status --porcelain` of root for the paths `fyne package` and the script
// could touch: files at the root (FyneApp.toml, the injected metadata file, main.go),
// assets/ and packaging/. The rest of the tree is left out so that a developer editing
// other packages during the build does not fail the test. ok is false when root is not a git
// work tree (a source tarball).
func gitStatus(t *testing.T, root string) (status string, ok bool) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		return "", false
	}
	cmd := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=all", "--ignored=no")
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) < 4 {
			continue
		}
		path := line[3:]
		if !strings.Contains(path, "/") || strings.HasPrefix(path, "assets/") || strings.HasPrefix(path, "packaging/") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n"), true
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage builds the tar.xz (fyne package) and the .deb with
// packaging/build-package.sh, installs the .deb with dpkg, checks what it installed (binary
// and version, desktop entry, icons, systemd unit, system user and state directory), runs the
// installed binary as the storing-peer unit does (headless, stdin /dev/null, as the chordphone
// user) and purges the package again.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary and installs a package: not in -short")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: the package test needs a Debian system (%v)", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a .deb needs root: run the suite as root (CI does) to test the package")
	}
	if err := exec.Command("dpkg-query", "-W", "-f=${Status}", "chordphone").Run(); err == nil {
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "chordphone").Output()
		if strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
			t.Skipf("a chordphone package is already installed here (%s); not replacing it (dpkg --purge chordphone to test)", out)
		}
	}
	_, userErr := user.Lookup("chordphone")
	userExisted := userErr == nil

	root := repoRoot(t)
	before, haveGit := gitStatus(t, root)
	out := t.TempDir()

	// --- build --------------------------------------------------------------------------------
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "packaging", "build-package.sh"),
		"--out", filepath.Join(out, "package"), "--tools", filepath.Join(out, "tools"))
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("build-package.sh: %v\n%s", err, tail(stderr.String(), 6000))
	}
	t.Logf("build-package.sh took %v", time.Since(start).Round(time.Second))
	made := strings.Fields(string(stdout))
	if len(made) != 2 {
		t.Fatalf("build-package.sh printed %q, want the tarball and the .deb paths", stdout)
	}
	tarball, deb := made[0], made[1]
	if !strings.HasSuffix(tarball, ".tar.xz") || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("build-package.sh made %q and %q", tarball, deb)
	}
	if haveGit {
		if after, _ := gitStatus(t, root); after != before {
			t.Errorf("build-package.sh changed the git tree:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}

	// --- the fyne tarball ----------------------------------------------------------------------
	list := run(t, "tar", "-tJf", tarball)
	for _, want := range []string{"/bin/chordphone", "/share/applications/org.chordphone.chordphone.desktop", "/share/pixmaps/org.chordphone.chordphone.png", "Makefile"} {
		if !strings.Contains(list, want) {
			t.Errorf("tarball lacks %s:\n%s", want, list)
		}
	}

	// --- the .deb's metadata -----------------------------------------------------------------
	wantDebVersion := strings.ReplaceAll(version.Version, "-", "~")
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version")); got != wantDebVersion {
		t.Errorf("deb Version %q, want %q (app/version)", got, wantDebVersion)
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Package")); got != "chordphone" {
		t.Errorf("deb Package %q", got)
	}
	depends := run(t, "dpkg-deb", "-f", deb, "Depends")
	deps := map[string]bool{}
	for _, d := range strings.Split(depends, ",") {
		deps[strings.Fields(strings.TrimSpace(d))[0]] = true
	}
	for _, lib := range []string{"libc6", "libportaudio2", "libopus0", "libopusfile0", "libgl1", "libx11-6",
		"libxcursor1", "libxrandr2", "libxinerama1", "libxi6", "libxxf86vm1"} {
		if !deps[lib] {
			t.Errorf("deb Depends lacks %s: %s", lib, depends)
		}
	}
	contents := run(t, "dpkg-deb", "-c", deb)
	for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] != "root/root" {
			t.Errorf("deb file not owned by root: %s", line)
		}
	}

	// --- install ---------------------------------------------------------------------------------
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "chordphone").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge chordphone: %v\n%s", err, out)
		}
		if !userExisted { // the package made it; leave the machine as it was
			if out, err := exec.Command("userdel", "chordphone").CombinedOutput(); err != nil {
				t.Errorf("userdel chordphone: %v\n%s", err, out)
			}
			_ = exec.Command("groupdel", "chordphone").Run() // gone with the user on most systems
		}
	})
	run(t, "dpkg", "-i", deb)

	// stdout only: Fyne complains about a C locale on stderr.
	versionOut, err := exec.Command("/usr/bin/chordphone", "--version").Output()
	if err != nil {
		t.Fatalf("installed chordphone --version: %v", err)
	}
	if got := strings.TrimSpace(string(versionOut)); got != "chordphone "+version.Version {
		t.Errorf("installed chordphone --version = %q, want %q", got, "chordphone "+version.Version)
	}
	desktop, err := os.ReadFile("/usr/share/applications/org.chordphone.chordphone.desktop")
	if err != nil {
		t.Fatalf("desktop entry not installed: %v", err)
	}
	for _, want := range []string{"[Desktop Entry]", "Type=Application", "Name=Chordphone", "Exec=chordphone %u",
		"Icon=org.chordphone.chordphone", "Categories=Network;Telephony;", "MimeType=x-scheme-handler/chordphone;"} {
		if !strings.Contains(string(desktop), want+"\n") {
			t.Errorf("desktop entry lacks %q:\n%s", want, desktop)
		}
	}
	for _, icon := range []string{"16x16", "48x48", "256x256", "512x512"} {
		if _, err := os.Stat("/usr/share/icons/hicolor/" + icon + "/apps/org.chordphone.chordphone.png"); err != nil {
			t.Errorf("icon %s not installed: %v", icon, err)
		}
	}
	if _, err := os.Stat("/usr/share/icons/hicolor/scalable/apps/org.chordphone.chordphone.svg"); err != nil {
		t.Errorf("scalable icon not installed: %v", err)
	}
	const unitPath = "/lib/systemd/system/chordphone-peer.service"
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatalf("systemd unit not installed: %v", err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/chordphone --headless --profile /var/lib/chordphone --listen 0.0.0.0:6084",
		"User=chordphone", "StateDirectory=chordphone", "Restart=on-failure", "EnvironmentFile=-/etc/default/chordphone-peer"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// Not enabled by install: the peer needs an overlay chosen in /etc/default first.
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/chordphone-peer.service"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the install enabled chordphone-peer.service (%v)", err)
	}
	if _, err := os.Stat("/etc/default/chordphone-peer"); err != nil {
		t.Errorf("/etc/default/chordphone-peer not installed: %v", err)
	}
	peerUser, err := user.Lookup("chordphone")
	if err != nil {
		t.Fatalf("postinst made no chordphone user: %v", err)
	}
	st, err := os.Stat("/var/lib/chordphone")
	if err != nil {
		t.Fatalf("postinst made no /var/lib/chordphone: %v", err)
	}
	if st.Mode().Perm() != 0o750 || !st.IsDir() {
		t.Errorf("/var/lib/chordphone mode %v, want a directory with 0750", st.Mode())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := strconv.FormatUint(uint64(sys.Uid), 10); uid != peerUser.Uid {
			t.Errorf("/var/lib/chordphone owned by uid %s, want chordphone (%s)", uid, peerUser.Uid)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify reads the unit as systemd would (syntax, the ExecStart binary, the user).
		// An unknown key or a bad value is only a warning (exit status 0): any line about the
		// unit fails the test too.
		out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput()
		if err != nil || strings.Contains(string(out), "chordphone-peer.service") {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
		} else if len(strings.TrimSpace(string(out))) > 0 {
			t.Logf("systemd-analyze verify says:\n%s", out)
		}
		// The hardening, as systemd rates it (offline: no running systemd needed; systemd ≥ 250).
		out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitPath).CombinedOutput()
		if _, level, ok := strings.Cut(string(out), "Overall exposure level for chordphone-peer.service: "); err == nil && ok {
			var exposure float64
			if _, err := fmt.Sscanf(level, "%g", &exposure); err != nil || exposure > 2.5 {
				t.Errorf("chordphone-peer.service exposure %q, want at most 2.5 (systemd-analyze security)", strings.SplitN(level, "\n", 2)[0])
			} else {
				t.Logf("chordphone-peer.service exposure level %.1f (systemd-analyze security)", exposure)
			}
		} else {
			t.Logf("systemd-analyze security --offline unavailable: %v %s", err, tail(string(out), 200))
		}
	} else {
		t.Log("systemd-analyze is missing: unit not verified")
	}

	launchDesktopEntry(t, string(desktop))
	servePeer(t, peerUser)

	// --- purge (the cleanup purges too; this checks that it works) -----------------------------
	run(t, "dpkg", "--purge", "chordphone")
	for _, gone := range []string{"/usr/bin/chordphone", unitPath, "/usr/share/applications/org.chordphone.chordphone.desktop", "/var/lib/chordphone", "/etc/default/chordphone-peer"} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after purge (%v)", gone, err)
		}
	}
}

// launchDesktopEntry starts the installed app as a desktop does from its entry's Exec line,
// under Xvfb, and waits for its window (by name), which must carry the app's icon and draw.
func launchDesktopEntry(t *testing.T, desktop string) {
	var execLine string
	for _, l := range strings.Split(desktop, "\n") {
		if v, ok := strings.CutPrefix(l, "Exec="); ok {
			execLine = v
		}
	}
	// Field codes (%u: a join link) are dropped when there is nothing to pass (Desktop Entry
	// Specification, "The Exec key").
	var argv []string
	for _, f := range strings.Fields(execLine) {
		if !strings.HasPrefix(f, "%") {
			argv = append(argv, f)
		}
	}
	if len(argv) == 0 {
		t.Fatalf("desktop entry has no Exec line:\n%s", desktop)
	}
	display := StartXvfb(t)
	dir := t.TempDir()
	// A desktop's PATH finds the binary; a named overlay on loopback keeps off the network.
	argv = append(argv, "--profile", filepath.Join(dir, "profile"), "--user", "pkg", "--overlay", "package-gui.test", "--listen", "127.0.0.1:0")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Path = "/usr/bin/" + argv[0]
	cmd.Env = append(IsolatedEnv(dir), "DISPLAY="+display, "PATH=/usr/local/bin:/usr/bin:/bin")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q from the desktop entry: %v", execLine, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owner: launchDesktopEntry; ends with the process
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("installed chordphone (GUI) stderr:\n%s", tail(stderr.String(), 3000))
		}
	}()
	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	if out, err := exec.Command("xprop", "-display", display, "-id", win, "_NET_WM_ICON").CombinedOutput(); err != nil {
		t.Logf("xprop: %v (window icon not checked)", err)
	} else if !strings.Contains(string(out), "_NET_WM_ICON(CARDINAL) =") {
		t.Errorf("the installed app's window has no icon: %s", tail(string(out), 200))
	}
	shot := filepath.Join(ArtifactsDir(t), "package-installed-window.png")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := Screenshot(display, win, shot); err != nil {
			t.Fatal(err)
		}
		if n, err := ImageColours(shot, 16); err != nil {
			t.Fatal(err)
		} else if n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed app's window stays blank: %s", shot)
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the installed app exited: %v", err)
		case <-time.After(200 * time.Millisecond): // polling the picture: no event says "drawn"
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("installed app after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("installed app did not exit within 30s of SIGTERM")
	}
}

// servePeer runs the installed binary as chordphone-peer.service does: the chordphone user,
// its profile in /var/lib/chordphone, stdin /dev/null. It must start, join (as the first peer
// of a new overlay), take the end of /dev/null as "no commands" rather than quit, and exit 0
// on SIGTERM.
func servePeer(t *testing.T, peerUser *user.User) {
	uid, err1 := strconv.ParseUint(peerUser.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(peerUser.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("chordphone user ids %q %q", peerUser.Uid, peerUser.Gid)
	}
	dir := t.TempDir()
	// The unit's command line, on loopback with any port (not 0.0.0.0:6084) and a named overlay.
	cmd := exec.Command("/usr/bin/chordphone", "--headless",
		"--profile", "/var/lib/chordphone", "--listen", "127.0.0.1:0", "--overlay", "package.test")
	// User=chordphone, as systemd would: no supplementary groups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	cmd.Env = IsolatedEnv(dir)
	cmd.Dir = "/"
	cmd.Stdin = nil // /dev/null, as systemd's StandardInput=null
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the installed peer: %v", err)
	}
	// Readers never block (a full channel drops), so they end when the process closes its
	// output, and Wait comes after them as os/exec requires.
	var readers sync.WaitGroup
	readers.Add(2)
	events := make(chan map[string]any, 256)
	go func() { // owner: servePeer; ends when the process's stdout closes
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				select {
				case events <- e:
				default:
				}
			}
		}
	}()
	logs := make(chan string, 1024)
	go func() { // owner: servePeer; ends when the process's stderr closes
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
	}()
	var logTail []string
	done := make(chan error, 1)
	go func() { // owner: servePeer; ends when the process has exited
		readers.Wait()
		done <- cmd.Wait()
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf(format+"\nstderr:\n%s", append(args, strings.Join(logTail, "\n"))...)
	}

	timeout := time.After(60 * time.Second)
	var started, joined, nullStdin bool
	for !(started && joined && nullStdin) {
		select {
		case e := <-events:
			switch e["event"] {
			case "started":
				started = true
				if v := e["version"]; v != version.Version {
					t.Errorf("installed peer's started event has version %v, want %s", v, version.Version)
				}
			case "joined":
				joined = true
			}
		case l := <-logs:
			logTail = append(logTail, l)
			if strings.Contains(l, "stdin is the null device") {
				nullStdin = true
			}
		case err := <-done:
			t.Fatalf("the installed peer exited (%v) before started+joined+null-stdin (%v %v %v)\nstderr:\n%s",
				err, started, joined, nullStdin, strings.Join(logTail, "\n"))
		case <-timeout:
			fail("the installed peer: started %v, joined %v, null stdin seen %v after 60s", started, joined, nullStdin)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		fail("SIGTERM: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("installed peer after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		fail("the installed peer did not exit within 30s of SIGTERM")
	}
}
