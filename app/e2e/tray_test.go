package e2e

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// The tray tests run the real GUI under Xvfb on a private session bus. On Linux the tray is a
// StatusNotifierItem (fyne.io/systray) with a com.canonical.dbusmenu menu; the test itself
// plays the desktop's part: it owns org.kde.StatusNotifierWatcher, sees the item register,
// reads its properties and menu, and clicks menu items the way a panel does.

const (
	watcherName  = "org.kde.StatusNotifierWatcher"
	watcherPath  = dbus.ObjectPath("/StatusNotifierWatcher")
	itemIface    = "org.kde.StatusNotifierItem"
	dbusmenuIntf = "com.canonical.dbusmenu"
)

// startSessionBus runs a private dbus-daemon (no service activation) and returns its address.
func startSessionBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skipf("dbus-daemon is missing (packaging/install-deps.sh --test installs dbus): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "session.conf")
	err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	cmd.Env = IsolatedEnv(dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	// The daemon prints its address once it listens.
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon did not print its address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// snWatcher is a StatusNotifierWatcher as a desktop panel runs it (KDE's rules: an item
// registered by object path is listed as "SENDER/PATH").
type snWatcher struct {
	conn       *dbus.Conn
	props      *prop.Properties
	mu         sync.Mutex
	items      []string
	registered chan string
}

func (w *snWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	item := service
	if strings.HasPrefix(service, "/") {
		item = string(sender) + service
	}
	w.mu.Lock()
	w.items = append(w.items, item)
	items := append([]string(nil), w.items...)
	w.mu.Unlock()
	w.props.SetMust(watcherName, "RegisteredStatusNotifierItems", items)
	_ = w.conn.Emit(watcherPath, watcherName+".StatusNotifierItemRegistered", item)
	select {
	case w.registered <- item:
	default:
	}
	return nil
}

func (w *snWatcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// startWatcher owns org.kde.StatusNotifierWatcher on the bus at addr; host says whether a
// tray host (a panel showing the icons) is registered with it.
func startWatcher(t *testing.T, addr string, host bool) *snWatcher {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connecting to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &snWatcher{conn: conn, registered: make(chan string, 4)}
	if err := conn.Export(w, watcherPath, watcherName); err != nil {
		t.Fatal(err)
	}
	w.props, err = prop.Export(conn, watcherPath, prop.Map{watcherName: {
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
		"IsStatusNotifierHostRegistered": {Value: host, Emit: prop.EmitTrue},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v (reply %v)", watcherName, err, reply)
	}
	return w
}

// waitItem waits for the GUI's item to register and returns its bus name and object path.
func (w *snWatcher) waitItem(t *testing.T, g *guiProc) (string, dbus.ObjectPath) {
	t.Helper()
	select {
	case item := <-w.registered:
		svc, path, ok := strings.Cut(item, "/")
		if !ok {
			return svc, "/StatusNotifierItem"
		}
		return svc, dbus.ObjectPath("/" + path)
	case err := <-g.exited:
		g.exited <- err
		t.Fatalf("the GUI exited before its tray item registered: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no StatusNotifierItem registered within 60 s")
	}
	return "", ""
}

// guiProc is the real GUI with its stderr lines.
type guiProc struct {
	cmd    *exec.Cmd
	exited chan error
	line   chan struct{} // a new line is in log
	mu     sync.Mutex
	log    strings.Builder
	seen   int // waitLine has looked at log up to here
}

// startTrayGUI starts the GUI (user alice) on display with the session bus at bus, with args
// (default: alone in a loopback overlay).
func startTrayGUI(t *testing.T, display, bus string, args ...string) *guiProc {
	t.Helper()
	dir := t.TempDir()
	if len(args) == 0 {
		args = []string{"--overlay", "tray.test"}
	}
	args = append([]string{"--profile", filepath.Join(dir, "profile"), "--user", "alice", "--listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = IsolatedEnv(dir, "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+bus)
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
		case <-g.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			g.mu.Lock()
			t.Logf("GUI stderr:\n%s", tail(g.log.String(), 4000))
			g.mu.Unlock()
		}
	})
	return g
}

// waitLine waits for a stderr line containing s, after those an earlier waitLine found.
func (g *guiProc) waitLine(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		log := g.log.String()
		i := strings.Index(log[g.seen:], s)
		if i >= 0 {
			g.seen += i + len(s)
		}
		g.mu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case <-g.line:
		case err := <-g.exited:
			g.exited <- err
			t.Fatalf("the GUI exited (%v) while waiting for %q in its log", err, s)
		case <-deadline:
			t.Fatalf("no %q in the GUI's log within %v", s, timeout)
		}
	}
}

// waitExit waits for the GUI to exit and fails unless it exits with status 0.
func (g *guiProc) waitExit(t *testing.T, why string) {
	t.Helper()
	select {
	case err := <-g.exited:
		g.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("GUI exit after %s: %v", why, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the GUI did not exit after %s", why)
	}
}

// visibleWindows lists the visible windows named Chordphone.
func visibleWindows(t *testing.T, display string) []string {
	t.Helper()
	cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Chordphone$")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return nil // none found
	} else if err != nil {
		t.Fatalf("xdotool search: %v", err)
	}
	return strings.Fields(string(out))
}

// menuEntry is one item of the tray's dbusmenu.
type menuEntry struct {
	ID      int32
	Label   string
	Enabled bool
}

type menuLayout struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

// readMenu reads the dbusmenu's visible top-level items (com.canonical.dbusmenu GetLayout).
func readMenu(conn *dbus.Conn, svc string, path dbus.ObjectPath) ([]menuEntry, error) {
	var rev uint32
	var root menuLayout
	err := conn.Object(svc, path).Call(dbusmenuIntf+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		return nil, fmt.Errorf("GetLayout: %w", err)
	}
	var entries []menuEntry
	for _, c := range root.Children {
		var n menuLayout
		if err := c.Store(&n); err != nil {
			return nil, fmt.Errorf("menu item %v: %w", c, err)
		}
		if v, ok := n.Props["visible"]; ok && v.Value() == false {
			continue
		}
		if v, ok := n.Props["type"]; ok && v.Value() == "separator" {
			continue
		}
		e := menuEntry{ID: n.ID, Enabled: true}
		if v, ok := n.Props["label"]; ok {
			e.Label, _ = v.Value().(string)
		}
		if v, ok := n.Props["enabled"]; ok && v.Value() == false {
			e.Enabled = false
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func labels(es []menuEntry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Label)
	}
	return strings.Join(s, "|")
}

// trayClient reads and clicks the GUI's tray item as a panel does.
type trayClient struct {
	t        *testing.T
	conn     *dbus.Conn
	svc      string
	item     dbus.ObjectPath
	menu     dbus.ObjectPath
	layoutCh chan *dbus.Signal
}

func newTrayClient(t *testing.T, addr, svc string, item dbus.ObjectPath) *trayClient {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &trayClient{t: t, conn: conn, svc: svc, item: item, layoutCh: make(chan *dbus.Signal, 64)}
	conn.Signal(c.layoutCh)
	if err := conn.AddMatchSignal(dbus.WithMatchSender(svc), dbus.WithMatchInterface(dbusmenuIntf),
		dbus.WithMatchMember("LayoutUpdated")); err != nil {
		t.Fatal(err)
	}
	v := c.prop("Menu")
	c.menu, _ = v.Value().(dbus.ObjectPath)
	if c.menu == "" {
		t.Fatalf("the item's Menu property is %v", v)
	}
	return c
}

func (c *trayClient) prop(name string) dbus.Variant {
	c.t.Helper()
	v, err := c.conn.Object(c.svc, c.item).GetProperty(itemIface + "." + name)
	if err != nil {
		c.t.Fatalf("reading the tray item's %s: %v", name, err)
	}
	return v
}

// waitMenu reads the menu until it has every label in want (the menu is filled once the
// tray has started; each refresh emits LayoutUpdated).
func (c *trayClient) waitMenu(want ...string) []menuEntry {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		es, err := readMenu(c.conn, c.svc, c.menu)
		if err != nil {
			c.t.Fatal(err)
		}
		got := "|" + labels(es) + "|"
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(got, "|"+w+"|")
		}
		if ok {
			return es
		}
		select {
		case <-c.layoutCh:
		case <-deadline:
			c.t.Fatalf("tray menu %q lacks one of %q", got, want)
		}
	}
}

// menuID is the id of the item labelled label, false when there is none.
func menuID(es []menuEntry, label string) (int32, bool) {
	for _, e := range es {
		if e.Label == label {
			return e.ID, true
		}
	}
	return 0, false
}

// click clicks the menu item labelled label (dbusmenu Event "clicked") and waits for done to
// report the outcome. Each refresh of the menu gives every item a new id; when one comes
// between reading the menu and the click (the click is lost), the item is clicked again.
func (c *trayClient) click(label string, done <-chan error) {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	id, _ := menuID(c.waitMenu(label), label)
	for {
		err := c.conn.Object(c.svc, c.menu).Call(dbusmenuIntf+".Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(0)).Err
		if err != nil {
			select { // Quit may end the program before it answers
			case e := <-done:
				if e == nil {
					return
				}
			case <-time.After(5 * time.Second):
			}
			c.t.Fatalf("clicking %q: %v", label, err)
		}
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					c.t.Fatalf("after clicking %q: %v", label, err)
				}
				return
			case <-c.layoutCh:
				es, err := readMenu(c.conn, c.svc, c.menu)
				if err != nil { // Quit may have ended the program
					select {
					case e := <-done:
						if e == nil {
							return
						}
						c.t.Fatalf("after clicking %q: %v", label, e)
					case <-time.After(5 * time.Second):
					}
					c.t.Fatal(err)
				}
				if nid, ok := menuID(es, label); ok && nid != id {
					id = nid
					break wait // refreshed under the click: click the new item
				}
			case <-deadline:
				c.t.Fatalf("clicking %q had no effect within 30 s", label)
			}
		}
	}
}

// activate clicks the tray icon itself (StatusNotifierItem.Activate).
func (c *trayClient) activate() {
	c.t.Helper()
	if err := c.conn.Object(c.svc, c.item).Call(itemIface+".Activate", 0, int32(0), int32(0)).Err; err != nil {
		c.t.Fatalf("Activate: %v", err)
	}
}

// tooltip is the item's ToolTip title.
func (c *trayClient) tooltip() string {
	c.t.Helper()
	var tip struct {
		Icon  string
		Icons []struct {
			W, H int32
			Pix  []byte
		}
		Title, Text string
	}
	if v := c.prop("ToolTip"); v.Store(&tip) != nil {
		c.t.Fatalf("tray item ToolTip %v", v)
	}
	return tip.Title
}

// eventSoon reports on the returned channel when p emits an event of kind want (an error
// after timeout or when p exits). It reads p's events meanwhile: one waiter at a time.
func eventSoon(p *Proc, want string, timeout time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() { // owner: the caller; ends with the event, p's exit or the timeout
		deadline := time.After(timeout)
		for {
			select {
			case e, ok := <-p.events:
				if !ok {
					ch <- fmt.Errorf("%s exited waiting for %q", p.Name, want)
					return
				}
				if e["event"] == want {
					ch <- nil
					return
				}
			case <-deadline:
				ch <- fmt.Errorf("%s: no %q within %v", p.Name, want, timeout)
				return
			}
		}
	}()
	return ch
}

// windowShown reports when a Chordphone window is visible on display (until ctx ends).
func windowShown(ctx context.Context, display string) <-chan error {
	ch := make(chan error, 1)
	go func() { // owner: the caller; ends when the window shows or ctx ends
		cmd := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Chordphone$")
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		_, err := cmd.Output()
		ch <- err
	}()
	return ch
}

// closeToTray closes the window as a window manager does and checks that it is hidden and the
// program runs on.
func closeToTray(t *testing.T, g *guiProc, display, win string) {
	t.Helper()
	if err := CloseWindow(display, win); err != nil {
		t.Fatal(err)
	}
	g.waitLine(t, "window hidden to the system tray", 30*time.Second)
	if ws := visibleWindows(t, display); len(ws) != 0 {
		t.Fatalf("after closing, windows %v are still visible", ws)
	}
	select {
	case err := <-g.exited:
		g.exited <- err
		t.Fatalf("closing the window ended the program (%v) although a tray shows it", err)
	default:
	}
}

// saveIcon writes the item's IconPixmap (ARGB32, network byte order) as a PNG.
func saveIcon(t *testing.T, v dbus.Variant, path string) (w, h int32) {
	t.Helper()
	var pixmaps []struct {
		W, H int32
		Pix  []byte
	}
	if err := v.Store(&pixmaps); err != nil {
		t.Fatalf("IconPixmap %s: %v", v.Signature(), err)
	}
	if len(pixmaps) == 0 || pixmaps[0].W <= 0 || len(pixmaps[0].Pix) != int(pixmaps[0].W*pixmaps[0].H*4) {
		t.Fatalf("IconPixmap is empty or malformed: %d pixmaps", len(pixmaps))
	}
	p := pixmaps[0]
	img := image.NewNRGBA(image.Rect(0, 0, int(p.W), int(p.H)))
	for i := 0; i < int(p.W*p.H); i++ {
		a, r, g, b := p.Pix[4*i], p.Pix[4*i+1], p.Pix[4*i+2], p.Pix[4*i+3]
		img.SetNRGBA(i%int(p.W), i/int(p.W), color.NRGBA{r, g, b, a})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return p.W, p.H
}

// TestTrayHidesToTrayAndShows: with a tray (a StatusNotifierWatcher with a host), the GUI's
// item registers with a title, a tooltip saying who is joined, an icon and a menu; closing
// the window hides it (the process runs on), the menu's Show or a click on the icon brings it
// back, and so does the tray going away; Quit ends the program with status 0.
func TestTrayHidesToTrayAndShows(t *testing.T) {
	bus := startSessionBus(t)
	watcher := startWatcher(t, bus, true)
	display := StartXvfb(t)
	art := ArtifactsDir(t)
	g := startTrayGUI(t, display, bus)

	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	svc, item := watcher.waitItem(t, g)
	tc := newTrayClient(t, bus, svc, item)
	if title, _ := tc.prop("Title").Value().(string); title != "Chordphone" {
		t.Errorf("tray item Title %q, want Chordphone", title)
	}
	menu := tc.waitMenu("Show Chordphone", "Quit")
	tip := tc.tooltip()
	if !strings.HasPrefix(tip, "Chordphone — ") {
		t.Errorf("tray item ToolTip %q: want a title saying the state", tip)
	}
	iw, ih := saveIcon(t, tc.prop("IconPixmap"), filepath.Join(art, "gui-tray-icon.png"))
	t.Logf("tray: tooltip %q, icon %dx%d, menu %s", tip, iw, ih, labels(menu))
	for _, e := range menu {
		if strings.HasPrefix(e.Label, "State: ") && e.Enabled {
			t.Errorf("the state line %q is a clickable item", e.Label)
		}
	}

	// Close the window as a window manager does: it hides, the program runs on.
	closeToTray(t, g, display, win)

	// Show (from the tray's menu) brings the window back.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tc.click("Show Chordphone", windowShown(ctx, display))
	win = waitWindow(t, display, "Chordphone", 10*time.Second)
	shot := filepath.Join(art, "gui-tray-shown-again.png")
	deadline := time.Now().Add(30 * time.Second)
	for { // mapped before drawn: retry until the picture has content
		if err := Screenshot(display, win, shot); err != nil {
			t.Fatal(err)
		}
		if n, err := ImageColours(shot, 16); err != nil {
			t.Fatal(err)
		} else if n >= 8 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("screenshot %s is blank (%d colours)", shot, n)
		}
		time.Sleep(200 * time.Millisecond) // the next frame
	}

	// So does a click on the icon itself.
	closeToTray(t, g, display, win)
	shown := windowShown(ctx, display)
	tc.activate()
	select {
	case err := <-shown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a click on the tray icon did not show the window")
	}

	// When the tray goes away (the panel quits) while the window is hidden, the window comes back.
	closeToTray(t, g, display, win)
	shown = windowShown(ctx, display)
	if _, err := watcher.conn.ReleaseName(watcherName); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-shown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the window stayed hidden after the tray went away")
	}

	// Quit from the tray ends the program with status 0.
	quit := make(chan error, 1)
	go func() { // owner: this test; ends when the GUI exits
		err := <-g.exited
		g.exited <- err
		quit <- err
	}()
	tc.click("Quit", quit)
	g.waitExit(t, "Quit from the tray")
}

// TestTrayCallActions: while the window is hidden in the tray, an incoming call shows in the
// tray (tooltip, icon, Answer), is answered from it, hung up from it, and the last peer is
// called back from it.
func TestTrayCallActions(t *testing.T) {
	bus := startSessionBus(t)
	watcher := startWatcher(t, bus, true)
	display := StartXvfb(t)
	art := ArtifactsDir(t)
	o := StartOverlay(t, "traycall.test", 2)
	bob := startPhone(t, o, "bob", 2)
	dir := t.TempDir()
	_, in, outWAV := audioFiles(t, dir, "alice", 1)
	g := startTrayGUI(t, display, bus, "--overlay", o.Name, "--bootstrap", o.Addrs[0],
		"--audio-in", in, "--audio-out", outWAV)
	win := waitWindow(t, display, "Chordphone", 60*time.Second)
	svc, item := watcher.waitItem(t, g)
	tc := newTrayClient(t, bus, svc, item)
	idle := tc.prop("IconPixmap")
	deadline := time.Now().Add(30 * time.Second)
	for len(lookupAll(t, bob.Proc, []string{"alice"})) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the GUI's user alice never became reachable")
		}
	}
	closeToTray(t, g, display, win)

	// bob calls: the tray says so and answers.
	bob.Send(t, "call alice")
	tc.waitMenu("Answer bob", "Decline")
	if tip := tc.tooltip(); tip != "Chordphone — bob is calling" {
		t.Errorf("tooltip while ringing %q", tip)
	}
	ringing := tc.prop("IconPixmap")
	if fmt.Sprint(ringing.Value()) == fmt.Sprint(idle.Value()) {
		t.Error("the tray icon is the same while ringing")
	}
	saveIcon(t, ringing, filepath.Join(art, "gui-tray-icon-ringing.png"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shown := windowShown(ctx, display)
	tc.click("Answer bob", eventSoon(bob.Proc, "answered", 30*time.Second))
	select { // answering shows the in-call view
	case err := <-shown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("answering from the tray did not show the window")
	}

	// In the call: the tray hangs up.
	tc.waitMenu("Hang up bob")
	if tip := tc.tooltip(); tip != "Chordphone — in a call with bob" {
		t.Errorf("tooltip in a call %q", tip)
	}
	tc.click("Hang up bob", eventSoon(bob.Proc, "hangup", 30*time.Second))

	// Idle again: Call bob calls the last peer.
	tc.click("Call bob", eventSoon(bob.Proc, "incoming", 30*time.Second))
	bob.Send(t, "decline")
	tc.waitMenu("Show Chordphone", "Call bob")
}

// TestTrayCloseQuitsWithoutTray: with no tray to hide in — no session bus, no watcher on it,
// or a watcher without a host (nothing shows the icon) — closing the window quits.
func TestTrayCloseQuitsWithoutTray(t *testing.T) {
	for _, tc := range []struct {
		name         string
		bus, watcher bool
	}{{"no session bus", false, false}, {"no watcher", true, false}, {"watcher without host", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			bus := "" // none: the GUI finds no session bus (and starts none)
			if tc.bus {
				bus = startSessionBus(t)
			}
			var w *snWatcher
			if tc.watcher {
				w = startWatcher(t, bus, false)
			}
			display := StartXvfb(t)
			g := startTrayGUI(t, display, bus)
			win := waitWindow(t, display, "Chordphone", 60*time.Second)
			if w != nil {
				w.waitItem(t, g) // the item is there; only the host is missing
			}
			if err := CloseWindow(display, win); err != nil {
				t.Fatal(err)
			}
			g.waitExit(t, "closing the window")
		})
	}
}
