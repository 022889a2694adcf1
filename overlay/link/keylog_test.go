package link

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeyLogDecryptsInTshark captures a DTLS and a TLS link on loopback with dumpcap, then
// decrypts the capture with the key log in tshark and checks it decodes as RELOAD.
func TestKeyLogDecryptsInTshark(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dumpcap, err1 := exec.LookPath("dumpcap")
	tshark, err2 := exec.LookPath("tshark")
	if err1 != nil || err2 != nil {
		t.Skip("dumpcap/tshark not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("capturing on lo needs root")
	}
	dir := t.TempDir()
	if d := os.Getenv("LINK_CAPTURE_DIR"); d != "" {
		dir = d // keep the capture and key log to look at
	}
	keylog := filepath.Join(dir, "keys.log")
	kf, err := os.Create(keylog)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	a := newPeer(t, "alice", func(s *Settings) { s.KeyLog = kf })
	b := newPeer(t, "bob", nil)
	port := b.t.Addr().Port()

	pcap := filepath.Join(dir, "cap.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// dumpcap writes the capture to a pipe (it flushes pipes promptly; files only when its
	// buffer fills), and this test keeps it.
	cmd := exec.CommandContext(ctx, dumpcap, "-q", "-i", "lo", "-f", "port "+strconv.Itoa(int(port)), "-w", "-")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	capt := &syncBuffer{}
	cmd.Stdout = capt
	cmd.Stderr = &lineWatcher{t: t}
	if err := cmd.Start(); err != nil {
		t.Skipf("dumpcap: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Probe datagrams (ignored by the link layer) mark the start and the end of the capture:
	// once a marker is in the captured stream, everything sent before it is too.
	probe, err := net.Dial("udp", addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	mark := func(m string) bool {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			select {
			case <-exited:
				return false
			default:
			}
			_, _ = probe.Write(append([]byte{0xff}, m...))
			if capt.contains([]byte(m)) {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}
	if !mark("chordphone-capture-start") {
		t.Skip("dumpcap could not capture on lo")
	}

	for _, addr := range []string{addrOf(b), "tls://" + addrOf(b)} {
		la, err := a.t.Bootstrap(ctxT(t, 10*time.Second), addr)
		if err != nil {
			t.Fatal(err)
		}
		lb := b.accepted(t)
		t.Logf("%s link %v -> %v", addr, la.(*Link).LocalAddr(), la.(*Link).RemoteAddr())
		exchange(t, a, b, la, lb, 3, 50, 10*time.Second)
		_ = la.Close()
		<-lb.Done()
	}
	if !mark("chordphone-capture-end") {
		t.Fatal("capture lost the end marker")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	<-exited
	if err := os.WriteFile(pcap, capt.bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	keys, _ := os.ReadFile(keylog)
	if n := strings.Count(string(keys), "CLIENT_RANDOM "); n < 2 {
		t.Fatalf("key log has %d CLIENT_RANDOM lines, want one per session:\n%s", n, keys)
	}
	// DTLS: Wireshark's reload-framing heuristic dissector decodes the decrypted records.
	out, err := exec.Command(tshark, "-n", "-r", pcap, "-o", "tls.keylog_file:"+keylog,
		"-Y", "dtls && reload.forwarding.trans_id",
		"-T", "fields", "-e", "reload.forwarding.trans_id").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	dtlsN := countLines(string(out), "0x")
	// TLS: Wireshark 4.0 cannot hand decrypted TLS to reload-framing by port, so check the
	// decrypted application data is framed RELOAD: data frame (0x80), 7 bytes, "RELO" token.
	out2, err := exec.Command(tshark, "-n", "-r", pcap, "-o", "tls.keylog_file:"+keylog,
		"-d", "tcp.port=="+strconv.Itoa(int(port))+",tls",
		"-Y", "tls && data", "-T", "fields", "-e", "data.data").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out2)
	}
	tlsN := 0
	for _, f := range strings.Fields(string(out2)) {
		for _, rec := range strings.Split(f, ",") {
			if len(rec) >= 24 && strings.HasPrefix(rec, "80") && rec[16:24] == "d2454c4f" {
				tlsN++
			}
		}
	}
	t.Logf("tshark decoded %d RELOAD messages over DTLS, %d framed RELOAD messages over TLS", dtlsN, tlsN)
	if dtlsN < 6 || tlsN < 6 {
		t.Fatalf("decoded %d (DTLS) / %d (TLS) RELOAD messages, want 6 each:\n%s\n%s", dtlsN, tlsN, out, out2)
	}
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// lineWatcher logs a subprocess's output lines.
type lineWatcher struct {
	t   testing.TB
	buf []byte
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log("dumpcap:", string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.b = append(s.b, p...)
	s.mu.Unlock()
	return len(p), nil
}

func (s *syncBuffer) contains(m []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Contains(s.b, m)
}

func (s *syncBuffer) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b...)
}
