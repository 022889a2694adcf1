package link

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"

	"github.com/chordphone/chordphone/overlay/link/nattest"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestICEThroughNATs puts two peers behind two NATs (network namespaces with iptables
// masquerade) and one public peer. Each NATed peer bootstraps to the public peer, learns its
// server-reflexive address from the public peer's STUN answer, and the two connect directly
// with ICE (the Attach parameters are carried by the test, as the overlay would route them
// through the public peer). Every peer is its own process (this test binary) in its namespace.
func TestICEThroughNATs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	net := nattest.New(t, false)
	pub := startHelper(t, net.Pub, "public", "0.0.0.0:0", "")
	ap, err := netip.ParseAddrPort(pub.addr)
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ap.Port())
	pub1, pub2 := net.PubAddr1+":"+port, net.PubAddr2+":"+port
	h1 := startHelper(t, net.H1, "h1", "0.0.0.0:0", pub1)
	h2 := startHelper(t, net.H2, "h2", "0.0.0.0:0", pub2)

	for _, h := range []struct {
		p    *helper
		addr string
	}{{h1, pub1}, {h2, pub2}} {
		r := h.p.do(t, helperCmd{Cmd: "bootstrap", Addr: h.addr})
		if r.Err != "" || r.Node != pub.node {
			t.Fatalf("%s bootstrap to the public peer: %+v", h.p.name, r)
		}
	}
	a1 := h1.do(t, helperCmd{Cmd: "attach", Remote: h2.node, Controlling: true})
	a2 := h2.do(t, helperCmd{Cmd: "attach", Remote: h1.node})
	if a1.Err != "" || a2.Err != "" {
		t.Fatalf("attach: %s / %s", a1.Err, a2.Err)
	}
	for _, a := range []struct {
		r   helperResp
		nat string
	}{{a1, net.NAT1Public}, {a2, net.NAT2Public}} {
		found := false
		for _, c := range a.r.Ice.Candidates {
			t.Logf("candidate %v type %d", c.AddrPort, c.Type)
			if c.Type == wire.CandSrflx && c.AddrPort.Addr().String() == a.nat {
				found = true
			}
		}
		if !found {
			t.Fatalf("no server-reflexive candidate on the NAT's public address %s", a.nat)
		}
	}
	done := make(chan helperResp, 1)
	go func() { done <- h2.do(t, helperCmd{Cmd: "connect", Ice: a1.Ice}) }()
	c1 := h1.do(t, helperCmd{Cmd: "connect", Ice: a2.Ice, Server: true})
	c2 := <-done
	if c1.Err != "" || c2.Err != "" {
		t.Fatalf("connect: %s / %s", c1.Err, c2.Err)
	}
	t.Logf("h1 %s -> %s; h2 %s -> %s", c1.Local, c1.Remote, c2.Local, c2.Remote)
	if !strings.HasPrefix(c1.Remote, net.NAT2Public+":") || !strings.HasPrefix(c2.Remote, net.NAT1Public+":") {
		t.Fatalf("link does not run between the two NATs' public addresses: %s / %s", c1.Remote, c2.Remote)
	}
	if c1.Received != helperMessages || c2.Received != helperMessages {
		t.Fatalf("received %d / %d messages, want %d", c1.Received, c2.Received, helperMessages)
	}
}

const helperMessages = 20

// ---- helper processes

type helperCmd struct {
	Cmd         string
	Addr        string         `json:",omitempty"`
	Remote      string         `json:",omitempty"`
	Controlling bool           `json:",omitempty"`
	Server      bool           `json:",omitempty"`
	Ice         node.IceParams `json:",omitempty"`
}

type helperResp struct {
	Err      string         `json:",omitempty"`
	Addr     string         `json:",omitempty"`
	Node     string         `json:",omitempty"`
	Ice      node.IceParams `json:",omitempty"`
	Local    string         `json:",omitempty"`
	Remote   string         `json:",omitempty"`
	Received int            `json:",omitempty"`
}

type helper struct {
	name  string
	addr  string
	node  string
	in    io.Writer
	lines chan string
}

func startHelper(t *testing.T, ns, name, listen, stun string) *helper {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestNATHelperProcess$")
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "LINK_NAT_HELPER=1", "LINK_NAT_NAME="+name, "LINK_NAT_LISTEN="+listen,
		"LINK_NAT_STUN="+stun, "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = &prefixLogger{t: t, name: name}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	h := &helper{name: name, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "HELPER "); ok {
				h.lines <- l
			}
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		_ = in.Close() // the helper exits at end of input
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	r := h.read(t)
	if r.Err != "" {
		t.Fatalf("%s: %s", name, r.Err)
	}
	h.addr, h.node = r.Addr, r.Node
	return h
}

func (h *helper) read(t *testing.T) helperResp {
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("%s exited", h.name)
		}
		var r helperResp
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no answer", h.name)
		return helperResp{}
	}
}

func (h *helper) do(t *testing.T, c helperCmd) helperResp {
	b, _ := json.Marshal(c)
	if _, err := h.in.Write(append(b, '\n')); err != nil {
		t.Errorf("%s: %v", h.name, err)
		return helperResp{Err: err.Error()}
	}
	return h.read(t)
}

type prefixLogger struct {
	t    *testing.T
	name string
}

func (p *prefixLogger) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		p.t.Logf("[%s] %s", p.name, l)
	}
	return len(b), nil
}

// TestNATHelperProcess is a peer run by TestICEThroughNATs in a namespace; it does nothing
// in a normal test run. It reads commands as JSON lines and answers "HELPER {json}" lines.
func TestNATHelperProcess(t *testing.T) {
	if os.Getenv("LINK_NAT_HELPER") != "1" {
		t.Skip("helper process for TestICEThroughNATs")
	}
	out := func(r helperResp) {
		b, _ := json.Marshal(r)
		fmt.Printf("HELPER %s\n", b)
	}
	name := os.Getenv("LINK_NAT_NAME")
	key := testIdentity(t, name)
	rx := newRecorder()
	s := Settings{Certificate: key.TLSCertificate(), ListenAddr: os.Getenv("LINK_NAT_LISTEN"), Logger: testLogger(t)}
	if os.Getenv("LINK_DEBUG") != "" {
		f := logging.NewDefaultLoggerFactory()
		f.DefaultLogLevel = logging.LogLevelTrace
		f.Writer = os.Stderr
		s.ICELogger = f
	}
	if st := os.Getenv("LINK_NAT_STUN"); st != "" {
		s.STUNServers = []string{st}
	}
	tr, err := New(s, rx)
	if err != nil {
		out(helperResp{Err: err.Error()})
		return
	}
	defer tr.Close()
	out(helperResp{Addr: tr.Addr().String(), Node: tr.NodeID().String()})
	var att node.Attachment
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c helperCmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			out(helperResp{Err: err.Error()})
			continue
		}
		switch c.Cmd {
		case "bootstrap":
			l, err := tr.Bootstrap(ctx, c.Addr)
			if err != nil {
				out(helperResp{Err: err.Error()})
				continue
			}
			out(helperResp{Node: l.RemoteNodeID().String()})
		case "attach":
			remote, err := wire.ParseNodeID(c.Remote)
			if err == nil {
				att, err = tr.NewAttachment(ctx, remote, 0, c.Controlling)
			}
			if err != nil {
				out(helperResp{Err: err.Error()})
				continue
			}
			out(helperResp{Ice: att.Local()})
		case "connect":
			l, err := att.ConnectLink(ctx, c.Ice, c.Server)
			if err != nil {
				out(helperResp{Err: err.Error()})
				continue
			}
			for i := 0; i < helperMessages; i++ {
				if err := l.Send(ctx, testMessage(t, uint64(i), 100)); err != nil {
					out(helperResp{Err: err.Error()})
					continue
				}
			}
			n := 0
			for n < helperMessages {
				select {
				case m := <-rx.ch:
					if m.from == l {
						n++
					}
				case <-time.After(20 * time.Second):
					out(helperResp{Err: fmt.Sprintf("received %d messages", n)})
					return
				}
			}
			ll := l.(*Link)
			out(helperResp{Local: ll.LocalAddr().String(), Remote: ll.RemoteAddr().String(), Received: n})
		}
	}
}
