package e2e

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/overlay/discovery/lantest"
)

// freeSIPPort returns a port free on loopback for both UDP and TCP.
func freeSIPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port for UDP and TCP")
	return 0
}

// saveWAV8k writes samples (48 kHz) as an 8 kHz WAV file repeated times: baresip's file
// source at the rate of G.711.
func saveWAV8k(t *testing.T, path string, sig []int16, times int) {
	t.Helper()
	low := audio.Resample(sig, audio.SampleRate, 8000)
	var data []int16
	for range times {
		data = append(data, low...)
	}
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+2*len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 16000)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(2*len(data)))
	buf := make([]byte, 2*len(data))
	for i, s := range data {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
	}
	if err := os.WriteFile(path, append(h, buf...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// baresip is Debian's baresip run with file audio and its ctrl_tcp module: commands in,
// events out (JSON in netstrings).
type baresip struct {
	cmd    *exec.Cmd
	exited chan struct{}
	conn   net.Conn
	events chan map[string]any
	log    string
	out    string // where sndfile writes what it hears (a WAV file per call)
	sent   []int16
}

// startBaresip starts baresip registering as user to the adapter on sipPort (loopback); answer
// is its answermode ("auto" or "manual"); extra is added to its account line
// (";mediaenc=srtp-mand").
func startBaresip(t *testing.T, user, password string, sipPort int, seed uint32, answer string, extra ...string) *baresip {
	t.Helper()
	return startBaresipAt(t, baresipSetup{user: user, password: password, server: fmt.Sprintf("127.0.0.1:%d", sipPort),
		seed: seed, answer: answer, extra: strings.Join(extra, ""), ctrlHost: "127.0.0.1"})
}

// baresipSetup says where and how baresip runs: ns is a network namespace ("" the test's),
// ctrlHost the address its ctrl_tcp listens on (reachable from the test).
type baresipSetup struct {
	user, password, server, answer, extra, ns, ctrlHost string
	transport                                           string // "udp" (default), "tcp" or "tls"
	seed                                                uint32
}

func startBaresipAt(t *testing.T, bs baresipSetup) *baresip {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Skip("baresip is not installed (packaging/install-deps.sh --test)")
	}
	dir := t.TempDir()
	b := &baresip{events: make(chan map[string]any, 100), log: filepath.Join(dir, "baresip.log"), out: filepath.Join(dir, "dumps")}
	if err := os.Mkdir(b.out, 0o700); err != nil {
		t.Fatal(err)
	}
	b.sent = analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, bs.seed)
	in := filepath.Join(dir, "in.wav")
	saveWAV8k(t, in, b.sent, 30) // 60 s: baresip ends a call when its file source ends
	ctrl := freeSIPPort(t)
	// baresip 1.0's aufile is a source only; sndfile writes what each call decodes
	// (dump-*-dec.wav in snd_path).
	cfg := fmt.Sprintf("poll_method epoll\naudio_player aufile,/dev/null\naudio_source aufile,%s\naudio_alert aufile,/dev/null\n"+
		"module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule srtp.so\nmodule sndfile.so\nsnd_path %s\nmodule_app account.so\n"+
		"module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen %s\n", in, b.out, net.JoinHostPort(bs.ctrlHost, strconv.Itoa(ctrl)))
	acc := fmt.Sprintf("<sip:%s@%s;transport=%s>;auth_pass=%s;audio_codecs=PCMU,PCMA;regint=60;answermode=%s%s\n",
		bs.user, bs.server, cmp.Or(bs.transport, "udp"), bs.password, bs.answer, bs.extra)
	for name, text := range map[string]string{"config": cfg, "accounts": acc} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-4", "-s", "-f", dir)
	if bs.ns != "" {
		cmd = exec.Command("ip", "netns", "exec", bs.ns, bin, "-4", "-s", "-f", dir)
	}
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() { // owner: the test; ends when baresip does (killed at cleanup at the latest)
		_ = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.exited
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(b.log)
			t.Logf("baresip log:\n%s", tail(string(data), 6000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := dialIn(bs.ns, net.JoinHostPort(bs.ctrlHost, strconv.Itoa(ctrl)))
		if err == nil {
			b.conn = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's ctrl_tcp does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // baresip starting
	}
	t.Cleanup(func() { b.conn.Close() })
	go b.read() // owner: the test; ends when the connection closes at cleanup
	return b
}

// read parses netstrings ("LEN:JSON,") of events and responses.
func (b *baresip) read() {
	defer close(b.events)
	r := bufio.NewReader(b.conn)
	for {
		n, err := r.ReadString(':')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n[:len(n)-1]))
		if err != nil || size > 1<<20 {
			return
		}
		buf := make([]byte, size+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:size], &m) == nil {
			b.events <- m
		}
	}
}

func (b *baresip) command(t *testing.T, cmd, params string) {
	t.Helper()
	js, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": cmd})
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(js), js); err != nil {
		t.Fatal(err)
	}
}

// quit stops baresip as a person would (SIGTERM): it un-REGISTERs first.
func (b *baresip) quit(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// waitHeard waits until baresip's current call has written d of what it hears (8 kHz,
// 16 bits: sndfile's dump).
func (b *baresip) waitHeard(t *testing.T, d time.Duration) {
	t.Helper()
	want := int64(44 + 2*8000*d/time.Second)
	deadline := time.Now().Add(30*time.Second + d)
	for {
		files, _ := filepath.Glob(filepath.Join(b.out, "*dec.wav"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Size() >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip heard less than %v (%v)", d, files)
		}
		time.Sleep(100 * time.Millisecond) // polling the dump's size
	}
}

// waitExit waits for baresip to end (after quit).
func (b *baresip) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("baresip did not quit")
	}
}

// heard returns the WAV file of what baresip heard in its last call, and removes the
// older ones.
func (b *baresip) heard(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.out, "*dec.wav"))
	if len(files) == 0 {
		t.Fatalf("baresip wrote no *dec.wav in %s", b.out)
	}
	sort.Strings(files)
	last := files[len(files)-1]
	dst := filepath.Join(filepath.Dir(b.out), fmt.Sprintf("heard-%d.wav", time.Now().UnixNano()))
	if err := os.Rename(last, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range files[:len(files)-1] {
		os.Remove(f)
	}
	return dst
}

// wait returns the next event of type typ ("REGISTER_OK", "CALL_ESTABLISHED", ...).
func (b *baresip) wait(t *testing.T, typ string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-b.events:
			if !ok {
				t.Fatalf("baresip's control connection closed while waiting for %s", typ)
			}
			if e["type"] == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("baresip: no %s within %v", typ, timeout)
		}
	}
}

// lookupUntilFound asks p to look user up until the overlay knows a device for it.
func lookupUntilFound(t *testing.T, p *Proc, user string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p.Send(t, "lookup "+user)
		for {
			e := p.Next(t, 20*time.Second)
			if e["event"] == "lookup" && len(strs(e["devices"])) > 0 {
				return
			}
			if e["event"] == "lookup" || e["event"] == "error" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never found registered in the overlay", user)
		}
		time.Sleep(500 * time.Millisecond) // asking the overlay again
	}
}

// startAdapterPeer starts a peer with the SIP adapter and the account user/password (MD5
// digest only: baresip 1.0 fails on a SHA-256 challenge): the overlay's first peer, or one
// joining through boot.
func startAdapterPeer(t *testing.T, overlay, boot, user, password string) (*Proc, string, int) {
	t.Helper()
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	add := exec.Command(binPath, "adapter", "user", "add", user, "--digest", "md5", "--profile", profile)
	add.Stdin = strings.NewReader(password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("chordphone adapter user add: %v\n%s", err, out)
	}
	port := freeSIPPort(t)
	args := []string{"--profile", profile, "--listen", "127.0.0.1:0", "--overlay", overlay, "--sip-adapter", fmt.Sprintf("127.0.0.1:%d", port)}
	if boot != "" {
		args = append(args, "--bootstrap", boot)
	}
	p := StartHeadless(t, binPath, "adapter-"+user, dir, args...)
	p.Wait(t, "joined", 60*time.Second)
	p.Send(t, "status")
	st := p.Wait(t, "status", 10*time.Second)
	return p, st["listen"].(string), port
}

// TestAdapterBaresip: Debian's baresip registers to the SIP adapter as alice; a headless
// Chordphone user (bob) calls alice by name and alice (baresip) calls bob by name; each
// side's test signal arrives in the other's output. A call to an unknown name gets 404, and
// when baresip quits (un-REGISTER) alice is gone from the overlay. The figures of the README
// (set-up time through the adapter beside a direct call, the adapter's CPU per bridged call)
// are logged.
func TestAdapterBaresip(t *testing.T) {
	adapter, addr, port := startAdapterPeer(t, "adapter.test", "", "alice", "s3cret")
	o := &Overlay{Name: "adapter.test", Peers: []*Proc{adapter}, Addrs: []string{addr}}
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	carol := startPhone(t, o, "carol", 3, "--auto-answer")
	alice := startBaresip(t, "alice", "s3cret", port, 5, "auto")
	lookupUntilFound(t, bob.Proc, "alice")

	t.Run("chordphone calls the SIP phone", func(t *testing.T) {
		bob.Send(t, "call alice")
		ans := bob.Wait(t, "answered", 30*time.Second)
		alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
		waitReceived(t, bob.Proc, 50)
		cpu0, t0 := procCPU(t, adapter), time.Now()
		waitReceived(t, bob.Proc, 250)
		cpu := procCPU(t, adapter) - cpu0
		t.Logf("FIGURE adapter CPU while bridging one call: %.1f%% of a core (%v CPU in %v)",
			100*cpu.Seconds()/time.Since(t0).Seconds(), cpu, time.Since(t0).Round(time.Millisecond))
		bob.Send(t, "hangup")
		bob.Wait(t, "hangup", 20*time.Second)
		alice.wait(t, "CALL_CLOSED", 20*time.Second)
		checkAudio(t, "alice (baresip) -> bob", alice.sent, bob.outWAV)
		checkAudio(t, "bob -> alice (baresip)", bob.sent, alice.heard(t))

		bob.Send(t, "call carol") // the same call without the adapter, for the figure
		direct := bob.Wait(t, "answered", 30*time.Second)
		bob.Send(t, "hangup")
		bob.Wait(t, "hangup", 20*time.Second)
		carol.Wait(t, "hangup", 20*time.Second)
		t.Logf("FIGURE set-up (call to answer at bob): through the adapter to baresip %v ms, to a Chordphone %v ms",
			ans["setup_ms"], direct["setup_ms"])
	})
	t.Run("the SIP phone calls chordphone", func(t *testing.T) {
		start := time.Now()
		alice.command(t, "dial", "bob")
		bob.Wait(t, "answered", 30*time.Second)
		alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
		t.Logf("FIGURE baresip dials bob: established after %v", time.Since(start).Round(time.Millisecond))
		waitReceived(t, bob.Proc, 200)
		bob.Send(t, "dtmf 7") // RFC 4733 over the overlay, then RFC 4733 to baresip
		if e := alice.wait(t, "CALL_DTMF_START", 20*time.Second); e["param"] != "7" {
			t.Errorf("baresip got DTMF %v, want 7", e["param"])
		}
		alice.command(t, "sndcode", "5") // RFC 4733 from baresip, then over the overlay
		if e := bob.Wait(t, "dtmf", 20*time.Second); e["digits"] != "5" {
			t.Errorf("bob got DTMF %v, want 5", e["digits"])
		}
		alice.command(t, "hangup", "")
		alice.wait(t, "CALL_CLOSED", 20*time.Second)
		h := bob.Wait(t, "hangup", 20*time.Second)
		if !strings.Contains(fmt.Sprint(h["reason"]), "remote") {
			t.Errorf("bob's hangup reason %q, want the remote hang-up", h["reason"])
		}
		checkAudio(t, "alice (baresip) -> bob", alice.sent, bob.outWAV)
		checkAudio(t, "bob -> alice (baresip)", bob.sent, alice.heard(t))
	})
	t.Run("unknown name", func(t *testing.T) {
		alice.command(t, "dial", "nobody")
		e := alice.wait(t, "CALL_CLOSED", 30*time.Second)
		if !strings.Contains(fmt.Sprint(e["param"]), "404") {
			t.Errorf("call to nobody closed with %q, want 404 Not Found", e["param"])
		}
	})
	t.Run("un-REGISTER removes the name", func(t *testing.T) {
		alice.quit(t) // baresip un-REGISTERs as it quits
		deadline := time.Now().Add(60 * time.Second)
		for {
			bob.Send(t, "lookup alice")
			e := bob.Next(t, 20*time.Second)
			for e["event"] != "lookup" && e["event"] != "error" {
				e = bob.Next(t, 20*time.Second)
			}
			if e["event"] == "error" && e["code"] == "not_registered" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("alice still found after baresip quit: %v", e)
			}
			time.Sleep(500 * time.Millisecond) // asking the overlay again
		}
	})
}

// procCPU is the CPU time p has used (user and system, /proc/PID/stat).
func procCPU(t *testing.T, p *Proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// TestAdapterCallOutcomes: a Chordphone user's decline reaches the SIP phone as 603, a busy
// one as 486, and the SIP phone's CANCEL ends the ringing at the Chordphone.
func TestAdapterCallOutcomes(t *testing.T) {
	adapter, addr, port := startAdapterPeer(t, "outcomes.test", "", "alice", "s3cret")
	o := &Overlay{Name: "outcomes.test", Peers: []*Proc{adapter}, Addrs: []string{addr}}
	dave := startPhone(t, o, "dave", 2) // answers only when told
	carol := startPhone(t, o, "carol", 3, "--auto-answer")
	alice := startBaresip(t, "alice", "s3cret", port, 5, "auto")
	lookupUntilFound(t, dave.Proc, "alice")

	alice.command(t, "dial", "dave")
	dave.Wait(t, "incoming", 30*time.Second)
	dave.Send(t, "decline")
	if e := alice.wait(t, "CALL_CLOSED", 30*time.Second); !strings.Contains(fmt.Sprint(e["param"]), "603") {
		t.Errorf("declined call closed with %q, want 603 Decline", e["param"])
	}
	dave.Wait(t, "hangup", 20*time.Second)

	alice.command(t, "dial", "dave")
	dave.Wait(t, "incoming", 30*time.Second)
	alice.command(t, "hangup", "") // CANCEL while dave's phone rings
	alice.wait(t, "CALL_CLOSED", 30*time.Second)
	if h := dave.Wait(t, "hangup", 20*time.Second); h["reason"] != "cancelled" {
		t.Errorf("dave's hangup reason %q, want cancelled", h["reason"])
	}

	dave.Send(t, "call carol")
	dave.Wait(t, "answered", 30*time.Second)
	alice.command(t, "dial", "dave")
	if e := alice.wait(t, "CALL_CLOSED", 30*time.Second); !strings.Contains(fmt.Sprint(e["param"]), "486") {
		t.Errorf("call to a busy dave closed with %q, want 486 Busy Here", e["param"])
	}
	dave.Send(t, "hangup")
	carol.Wait(t, "hangup", 20*time.Second)
}

// TestAdapterForksToEveryPhone: two SIP phones registered as alice both ring when a
// Chordphone user calls alice; the one that answers takes the call (its audio both ways),
// the other is cancelled.
func TestAdapterForksToEveryPhone(t *testing.T) {
	adapter, addr, port := startAdapterPeer(t, "fork.test", "", "alice", "s3cret")
	o := &Overlay{Name: "fork.test", Peers: []*Proc{adapter}, Addrs: []string{addr}}
	bob := startPhone(t, o, "bob", 2)
	desk := startBaresip(t, "alice", "s3cret", port, 5, "manual")
	mobile := startBaresip(t, "alice", "s3cret", port, 6, "auto")
	lookupUntilFound(t, bob.Proc, "alice")

	bob.Send(t, "call alice")
	desk.wait(t, "CALL_INCOMING", 30*time.Second)
	mobile.wait(t, "CALL_ESTABLISHED", 30*time.Second)
	bob.Wait(t, "answered", 30*time.Second)
	desk.wait(t, "CALL_CLOSED", 30*time.Second) // cancelled: the mobile answered
	waitReceived(t, bob.Proc, 200)
	bob.Send(t, "hangup")
	mobile.wait(t, "CALL_CLOSED", 20*time.Second)
	checkAudio(t, "mobile (baresip) -> bob", mobile.sent, bob.outWAV)
	checkAudio(t, "bob -> mobile (baresip)", bob.sent, mobile.heard(t))
}

// TestTwoAdapters: SIP phones on two adapters on two peers call each other by name through
// the overlay: alice (baresip on the first peer's adapter) calls erin (baresip on the second
// peer's), with audio both ways.
func TestTwoAdapters(t *testing.T) {
	first, addr, portA := startAdapterPeer(t, "two.test", "", "alice", "s3cret")
	second, _, portB := startAdapterPeer(t, "two.test", addr, "erin", "pa55word")
	alice := startBaresip(t, "alice", "s3cret", portA, 5, "auto")
	erin := startBaresip(t, "erin", "pa55word", portB, 6, "auto")
	o := &Overlay{Name: "two.test", Peers: []*Proc{first, second}, Addrs: []string{addr}}
	watcher := o.Join(t, "watcher", "--user", "watcher")
	watcher.Wait(t, "registered", 60*time.Second)
	lookupUntilFound(t, watcher, "erin")
	lookupUntilFound(t, watcher, "alice")

	alice.command(t, "dial", "erin")
	alice.wait(t, "CALL_ESTABLISHED", 30*time.Second)
	erin.wait(t, "CALL_ESTABLISHED", 30*time.Second)
	alice.waitHeard(t, 4*time.Second)
	erin.waitHeard(t, 4*time.Second)
	alice.command(t, "hangup", "")
	alice.wait(t, "CALL_CLOSED", 20*time.Second)
	erin.wait(t, "CALL_CLOSED", 20*time.Second)
	checkAudio(t, "alice -> erin (two adapters)", alice.sent, erin.heard(t))
	checkAudio(t, "erin -> alice (two adapters)", erin.sent, alice.heard(t))
}

// TestAdapterSDES: a SIP phone that insists on SRTP (baresip, mediaenc=srtp-mand: RTP/SAVP
// with SDES keys, RFC 4568) calls a Chordphone through the adapter; audio both ways.
func TestAdapterSDES(t *testing.T) {
	adapter, addr, port := startAdapterPeer(t, "sdes.test", "", "alice", "s3cret")
	o := &Overlay{Name: "sdes.test", Peers: []*Proc{adapter}, Addrs: []string{addr}}
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	alice := startBaresip(t, "alice", "s3cret", port, 5, "auto", ";mediaenc=srtp-mand")
	lookupUntilFound(t, bob.Proc, "alice")

	alice.command(t, "dial", "bob")
	bob.Wait(t, "answered", 30*time.Second)
	alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
	waitReceived(t, bob.Proc, 200)
	alice.waitHeard(t, 4*time.Second)
	alice.command(t, "hangup", "")
	alice.wait(t, "CALL_CLOSED", 20*time.Second)
	bob.Wait(t, "hangup", 20*time.Second)
	trace, _ := os.ReadFile(alice.log) // baresip -s: the SIP messages
	if n := strings.Count(string(trace), "a=crypto:"); n < 2 || !strings.Contains(string(trace), "RTP/SAVP") {
		t.Errorf("SIP trace has %d a=crypto lines; want the offer's and the adapter's answer's, RTP/SAVP", n)
	}
	checkAudio(t, "alice (baresip, SRTP) -> bob", alice.sent, bob.outWAV)
	checkAudio(t, "bob -> alice (baresip, SRTP)", bob.sent, alice.heard(t))
}

// TestAdapterEnrolledOverlay: in an operator's overlay (certificates only from its
// enrollment server, RFC 6940 §11.3), `chordphone adapter user add alice --invite LINK`
// enrolls alice's line with the operator's server; baresip registers as alice and a
// Chordphone user enrolled there too calls alice by name, audio both ways.
func TestAdapterEnrolledOverlay(t *testing.T) {
	lan := lantest.New(t, 2)
	srvAddr, host := lan.Addrs[0].String(), lan.Addrs[1].String()
	nsHosts(t, lan.Namespaces[1], "127.0.0.1 localhost\n"+srvAddr+" lab.test\n")
	dir := t.TempDir()
	op := filepath.Join(dir, "op")
	command(t, "", dir, "", false, "overlay-server", "init", "--dir", op, "--name", "lab.test")
	links := map[string]string{}
	for _, u := range []string{"gateway", "alice", "bob"} {
		command(t, "", dir, u+"-password\n", false, "overlay-server", "user", "add", u, "--dir", op)
		link, _ := command(t, "", dir, "", false, "overlay-server", "invite", "--dir", op, "--user", u)
		links[u] = strings.TrimSpace(link)
	}
	startOverlayServer(t, lan.Namespaces[0], dir, "--dir", op, "--listen", srvAddr+":443", "--peer-listen", srvAddr+":6084")

	ns := lan.Namespaces[1]
	gdir := t.TempDir()
	gprofile := filepath.Join(gdir, "profile")
	command(t, ns, gdir, "gateway-password\n", false, "enroll", "--profile", gprofile, "--invite", links["gateway"])
	command(t, ns, gdir, "alice-password\n", false, "adapter", "user", "add", "alice", "--digest", "md5",
		"--invite", links["alice"], "--profile", gprofile)
	sipPort := freeSIPPort(t)
	adapter := StartHeadlessIn(t, ns, binPath, "adapter", gdir, "--profile", gprofile,
		"--sip-adapter", net.JoinHostPort(host, strconv.Itoa(sipPort)))
	adapter.Wait(t, "registered", 90*time.Second)

	bdir := t.TempDir()
	bprofile := filepath.Join(bdir, "profile")
	command(t, ns, bdir, "bob-password\n", false, "enroll", "--profile", bprofile, "--invite", links["bob"])
	sig, in, out := audioFiles(t, bdir, "bob", 2)
	bob := &phoneProc{Proc: StartHeadlessIn(t, ns, binPath, "bob", bdir, "--profile", bprofile,
		"--audio-in", in, "--audio-out", out), sent: sig, outWAV: out}
	bob.Wait(t, "registered", 90*time.Second)

	alice := startBaresipAt(t, baresipSetup{user: "alice", password: "alice-password", seed: 5, answer: "auto",
		server: net.JoinHostPort(host, strconv.Itoa(sipPort)), ns: ns, ctrlHost: host})
	lookupUntilFound(t, bob.Proc, "alice")
	bob.Send(t, "call alice")
	bob.Wait(t, "answered", 30*time.Second)
	alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
	waitReceived(t, bob.Proc, 200)
	alice.waitHeard(t, 4*time.Second)
	bob.Send(t, "hangup")
	alice.wait(t, "CALL_CLOSED", 20*time.Second)
	checkAudio(t, "alice (baresip, enrolled line) -> bob", alice.sent, bob.outWAV)
	checkAudio(t, "bob -> alice (baresip, enrolled line)", bob.sent, alice.heard(t))

	// An account added without enrolling its line: the SIP phone registers, and the
	// adapter's user is told what to do.
	command(t, ns, gdir, "carol-password\n", false, "adapter", "user", "add", "carol", "--digest", "md5", "--profile", gprofile)
	startBaresipAt(t, baresipSetup{user: "carol", password: "carol-password", seed: 7, answer: "auto",
		server: net.JoinHostPort(host, strconv.Itoa(sipPort)), ns: ns, ctrlHost: host})
	deadline := time.Now().Add(60 * time.Second)
	for {
		e := adapter.Next(t, time.Until(deadline))
		// Its profile has neither the overlay's CA nor a certificate: either is said.
		if c := e["code"]; e["event"] == "warning" && (c == "adapter_needs_enrollment" || c == "adapter_ca_not_trusted") {
			if msg := fmt.Sprint(e["message"]); !strings.Contains(msg, "carol") || !strings.Contains(msg, "--invite") {
				t.Errorf("warning does not say what to do for carol: %q", msg)
			}
			break
		}
	}
}

// dialIn opens a TCP connection from inside network namespace ns ("" the test's own): on a
// locked thread moved into ns (setns), which is then thrown away with its goroutine.
func dialIn(ns, addr string) (net.Conn, error) {
	if ns == "" {
		return net.Dial("tcp", addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() { // owner: dialIn; ends after the dial (its thread ends with it: never unlocked)
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		c, err := net.Dial("tcp", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TestAdapterTCPAndTLS: baresip registered over TCP, and another over TLS (the adapter's
// self-signed certificate), each call a Chordphone and are called by it, audio both ways.
func TestAdapterTCPAndTLS(t *testing.T) {
	adapter, addr, port := startAdapterPeer(t, "transports.test", "", "alice", "s3cret")
	o := &Overlay{Name: "transports.test", Peers: []*Proc{adapter}, Addrs: []string{addr}}
	bob := startPhone(t, o, "bob", 2, "--auto-answer")
	for _, tc := range []struct {
		transport string
		port      int
	}{{"tcp", port}, {"tls", port + 1}} {
		t.Run(tc.transport, func(t *testing.T) {
			alice := startBaresipAt(t, baresipSetup{user: "alice", password: "s3cret", seed: 5, answer: "auto",
				server: fmt.Sprintf("127.0.0.1:%d", tc.port), transport: tc.transport, ctrlHost: "127.0.0.1"})
			lookupUntilFound(t, bob.Proc, "alice")
			alice.command(t, "dial", "bob")
			bob.Wait(t, "answered", 30*time.Second)
			alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
			waitReceived(t, bob.Proc, 150)
			alice.command(t, "hangup", "")
			alice.wait(t, "CALL_CLOSED", 20*time.Second)
			bob.Wait(t, "hangup", 20*time.Second)
			checkAudio(t, "alice ("+tc.transport+") -> bob", alice.sent, bob.outWAV)

			bob.Send(t, "call alice")
			bob.Wait(t, "answered", 30*time.Second)
			alice.wait(t, "CALL_ESTABLISHED", 20*time.Second)
			waitReceived(t, bob.Proc, 150)
			bob.Send(t, "hangup")
			bob.Wait(t, "hangup", 20*time.Second)
			alice.wait(t, "CALL_CLOSED", 20*time.Second)
			checkAudio(t, "bob -> alice ("+tc.transport+")", bob.sent, alice.heard(t))
			alice.quit(t)
			alice.waitExit(t)
		})
	}
}
