package discovery

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/chordphone/chordphone/overlay/discovery/lantest"
	"github.com/chordphone/chordphone/overlay/wire"
)

func randomID(t testing.TB) wire.NodeID {
	var id wire.NodeID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHandleRecords feeds the browser the messages an announcer sends.
func TestHandleRecords(t *testing.T) {
	svc := Service{Overlay: "lan.test", NodeID: randomID(t), User: "alice@lan.test", Port: 6084}
	other := Service{Overlay: "other.test", NodeID: randomID(t), Port: 7000}
	b := newBrowser("LAN.test", "")
	now := time.Now()

	msg, err := other.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.9")}, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.handle(msg, 1, now); len(got) != 0 {
		t.Errorf("other overlay reported: %+v", got)
	}
	a1 := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}
	msg, _ = svc.response(0, false, nil, a1, DefaultTTL)
	got := b.handle(msg, 1, now)
	if len(got) != 1 || got[0].NodeID != svc.NodeID || got[0].User != "alice@lan.test" || got[0].Overlay != "lan.test" ||
		len(got[0].Addrs) != 2 || got[0].Addrs[0] != netip.MustParseAddrPort("10.0.0.1:6084") {
		t.Fatalf("peer %+v", got)
	}
	if got := b.handle(msg, 1, now); len(got) != 0 {
		t.Errorf("repeat reported again: %+v", got)
	}
	// New address: cache-flush replaces the old ones.
	msg, _ = svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.2")}, DefaultTTL)
	if got := b.handle(msg, 1, now); len(got) != 1 || len(got[0].Addrs) != 1 || got[0].Addrs[0].Addr().String() != "10.0.0.2" {
		t.Errorf("moved peer %+v", got)
	}
	msg, _ = svc.response(0, false, nil, nil, 0)
	if got := b.handle(msg, 1, now); len(got) != 1 || !got[0].Gone || got[0].NodeID != svc.NodeID {
		t.Errorf("goodbye %+v", got)
	}
	// A peer seen on two interfaces: a flush on one keeps the other's address.
	msg, _ = svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, DefaultTTL)
	if got := b.handle(msg, 1, now); len(got) != 1 {
		t.Fatalf("back: %+v", got)
	}
	msg, _ = svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("192.168.1.5")}, DefaultTTL)
	got = b.handle(msg, 2, now)
	if len(got) != 1 || len(got[0].Addrs) != 2 {
		t.Fatalf("two interfaces: %+v", got)
	}
	if got := b.handle(msg, 2, now); len(got) != 0 {
		t.Errorf("same again on interface 2: %+v", got)
	}
	// Silence past the TTL: the peer is gone (it left without a goodbye).
	if got := b.sweep(now.Add(DefaultTTL / 2)); len(got) != 0 {
		t.Errorf("early sweep: %+v", got)
	}
	if got := b.sweep(now.Add(DefaultTTL + time.Second)); len(got) != 1 || !got[0].Gone {
		t.Errorf("expired: %+v", got)
	}
	// Queries and garbage are ignored.
	if got := b.handle([]byte{1, 2, 3}, 1, now); got != nil {
		t.Error("garbage")
	}
	q := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	_ = q.StartQuestions()
	_ = q.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(serviceType("")), Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET})
	qm, _ := q.Finish()
	if got := b.handle(qm, 1, now); got != nil {
		t.Error("query treated as answer")
	}
}

func TestServiceMatchesAndLegacy(t *testing.T) {
	svc := Service{Overlay: "lan.test", NodeID: randomID(t), Port: 6084}
	for name, want := range map[string]bool{
		"_reload._udp.local.":                  true,
		"_services._dns-sd._udp.local.":        true,
		"_reload._tcp.local.":                  false,
		"_http._tcp.local.":                    false,
		svc.NodeID.String() + ".reload.local.": true,
	} {
		typ := dnsmessage.TypePTR
		if strings.HasSuffix(name, ".reload.local.") {
			typ = dnsmessage.TypeA
		}
		if got := svc.matches(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); got != want {
			t.Errorf("%s: %v", name, got)
		}
	}
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("_reload._udp.local."), Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}
	msg, err := svc.response(4242, true, &q, []netip.Addr{netip.MustParseAddr("10.1.1.1")}, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	h, _ := p.Start(msg)
	qs, _ := p.AllQuestions()
	ans, _ := p.AllAnswers()
	if h.ID != 4242 || len(qs) != 1 || len(ans) != 1 || ans[0].Header.TTL != 10 || ans[0].Header.Class != dnsmessage.ClassINET {
		t.Errorf("legacy answer: id %d q %d ans %+v", h.ID, len(qs), ans)
	}
	if _, err := Announce(context.Background(), Service{Overlay: "bad name", Port: 1}); err == nil {
		t.Error("bad overlay name accepted")
	}
	if _, err := Announce(context.Background(), Service{Overlay: "lan.test", Port: 0}); err == nil {
		t.Error("port 0 accepted")
	}
}

// TestAnnounceBrowse runs an announcer and a browser in this process over
// the host's multicast-capable interfaces.
func TestAnnounceBrowse(t *testing.T) {
	ifaces, err := Interfaces()
	if err != nil || len(ifaces) == 0 {
		t.Skip("no multicast-capable interface here (TestTwoNamespaces covers discovery)")
	}
	overlay := fmt.Sprintf("lan-%d.test", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peers, err := Browse(ctx, overlay)
	if err != nil {
		t.Skipf("cannot browse: %v", err)
	}
	svc := Service{Overlay: overlay, NodeID: randomID(t), User: "bob@" + overlay, Port: 16084}
	stop, err := Announce(ctx, svc)
	if err != nil {
		t.Skipf("cannot announce here (port 5353 held without SO_REUSEPORT?): %v", err)
	}
	decoy, err := Announce(ctx, Service{Overlay: "decoy-" + overlay, NodeID: randomID(t), Port: 16085})
	if err != nil {
		t.Fatal(err)
	}
	defer decoy()
	var found Peer
	for p := range peers {
		if p.Overlay != overlay {
			t.Fatalf("peer of another overlay: %+v", p)
		}
		if p.NodeID == svc.NodeID && !p.Gone {
			found = p
			break
		}
	}
	if found.NodeID != svc.NodeID {
		t.Fatal("peer not found before timeout")
	}
	if found.User != svc.User || len(found.Addrs) == 0 || found.Addrs[0].Port() != 16084 {
		t.Errorf("peer %+v", found)
	}
	stop()
	for p := range peers {
		if p.NodeID == svc.NodeID && p.Gone {
			return
		}
	}
	t.Error("no goodbye before timeout")
}

// --- two network namespaces ---

func TestMain(m *testing.M) {
	switch os.Getenv("DISCOVERY_HELPER") {
	case "announce":
		os.Exit(helperAnnounce())
	case "browse":
		os.Exit(helperBrowse())
	}
	os.Exit(m.Run())
}

// helperAnnounce announces a peer and answers UDP pings on its port until
// standard input closes.
func helperAnnounce() int {
	id, _ := wire.ParseNodeID(os.Getenv("NODE_ID"))
	port, _ := strconv.Atoi(os.Getenv("PORT"))
	uc, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := uc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = uc.WriteToUDP(append([]byte("pong "), buf[:n]...), from)
		}
	}()
	stop, err := Announce(context.Background(), Service{Overlay: os.Getenv("OVERLAY"), NodeID: id, User: "alice@" + os.Getenv("OVERLAY"), Port: port})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	stop()
	_ = uc.Close()
	return 0
}

// helperBrowse finds the first peer of the overlay, pings it at the address
// found, and prints the peer and the answer as JSON.
func helperBrowse() int {
	timeout := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BROWSE_TIMEOUT")); err == nil {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	peers, err := Browse(ctx, os.Getenv("OVERLAY"))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if os.Getenv("SAY_READY") != "" {
		fmt.Println("browsing")
	}
	for p := range peers {
		if p.Gone {
			continue
		}
		answer := ""
		if c, err := net.Dial("udp", p.Addrs[0].String()); err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write([]byte("ping"))
			buf := make([]byte, 100)
			n, _ := c.Read(buf)
			answer = string(buf[:n])
			_ = c.Close()
		}
		out, _ := json.Marshal(map[string]any{"node_id": p.NodeID.String(), "user": p.User, "addrs": p.Addrs, "answer": answer})
		fmt.Println(string(out))
		return 0
	}
	fmt.Println("error timeout")
	return 1
}

// TestTwoNamespaces puts two "phones" on a LAN of their own (two network
// namespaces on a bridge, package lantest): the first announces, the second finds
// it with no configuration and reaches it at the address found.
func TestTwoNamespaces(t *testing.T) {
	lan := lantest.New(t, 2)
	id := randomID(t)
	stop := startAnnouncer(t, lan, 0, id)
	defer stop()
	out, err := browseFrom(lan, 1, "")
	if err != nil {
		t.Fatalf("browser: %v: %s", err, out)
	}
	var got struct {
		NodeID string   `json:"node_id"`
		User   string   `json:"user"`
		Addrs  []string `json:"addrs"`
		Answer string   `json:"answer"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	if got.NodeID != id.String() || got.User != "alice@lan.test" || len(got.Addrs) == 0 || got.Addrs[0] != netip.AddrPortFrom(lan.Addrs[0], 6084).String() {
		t.Errorf("found %+v", got)
	}
	if got.Answer != "pong ping" {
		t.Errorf("peer not reachable at the address found: %q", got.Answer)
	}
}

// TestKnownAnswerSuppression: a browser's query lists the instances it knows (RFC 6762
// §7.1) while more than half their TTL (and enough to outlast the next query) remains;
// a responder listed with at least half its TTL stays silent, others answer.
func TestKnownAnswerSuppression(t *testing.T) {
	now := time.Now()
	svc := Service{Overlay: "lan.test", NodeID: randomID(t), Port: 6084, TTL: DefaultTTL}
	other := Service{Overlay: "lan.test", NodeID: randomID(t), Port: 6085, TTL: DefaultTTL}
	b := newBrowser("lan.test", "")
	ans, err := svc.response(0, false, nil, []netip.Addr{netip.MustParseAddr("10.1.1.1")}, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.handle(ans, 1, now); len(got) != 1 {
		t.Fatalf("answer gave %v", got)
	}
	parse := func(msg []byte) (dnsmessage.Question, []dnsmessage.Resource) {
		t.Helper()
		var p dnsmessage.Parser
		if _, err := p.Start(msg); err != nil {
			t.Fatal(err)
		}
		qs, err := p.AllQuestions()
		if err != nil || len(qs) != 1 {
			t.Fatalf("questions %v %v", qs, err)
		}
		known, err := p.AllAnswers()
		if err != nil {
			t.Fatal(err)
		}
		return qs[0], known
	}
	for _, c := range []struct {
		after, next time.Duration
		silent      bool
	}{
		{0, 30 * time.Second, true},
		{30 * time.Second, 30 * time.Second, true},  // 90 s left
		{61 * time.Second, 30 * time.Second, false}, // less than half left: answered, refreshed
		{31 * time.Second, 60 * time.Second, false}, // would not outlast the next query by a quarter
	} {
		msg, err := b.queryMessage(now.Add(c.after), c.next)
		if err != nil {
			t.Fatal(err)
		}
		q, known := parse(msg)
		if !svc.matches(q) {
			t.Fatalf("query %v does not ask for the service", q)
		}
		if got := svc.knownAnswer(q, known); got != c.silent {
			t.Errorf("after %v (next query in %v): silent=%v, want %v; known %v", c.after, c.next, got, c.silent, known)
		}
		if other.knownAnswer(q, known) {
			t.Errorf("an instance not in the list was silenced")
		}
	}
	// A listed record with less than half the TTL does not silence the responder.
	q, known := parse(must(b.queryMessage(now, time.Second)))
	known[0].Header.TTL = uint32(DefaultTTL/time.Second/2) - 1
	if svc.knownAnswer(q, known) {
		t.Error("silenced by a known answer with less than half its TTL")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// startAnnouncer runs the announce helper in host i of lan; stop ends it.
func startAnnouncer(t *testing.T, lan *lantest.LAN, i int, id wire.NodeID) (stop func()) {
	t.Helper()
	ann := lan.Command(i, os.Args[0], "-test.run=^$")
	ann.Env = append(os.Environ(), "OVERLAY=lan.test", "NODE_ID="+id.String(), "PORT=6084", "DISCOVERY_HELPER=announce")
	stdin, _ := ann.StdinPipe()
	stdout, _ := ann.StdoutPipe()
	ann.Stderr = os.Stderr
	if err := ann.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = stdin.Close()
		_ = ann.Wait()
		t.Fatalf("announcer: %q %v", line, err)
	}
	return func() { _ = stdin.Close(); _ = ann.Wait() }
}

// browseFrom runs the browse helper in host i of lan (timeout "" = its default).
func browseFrom(lan *lantest.LAN, i int, timeout string) ([]byte, error) {
	br := lan.Command(i, os.Args[0], "-test.run=^$")
	br.Env = append(os.Environ(), "OVERLAY=lan.test", "DISCOVERY_HELPER=browse", "BROWSE_TIMEOUT="+timeout)
	br.Stderr = os.Stderr
	return br.Output()
}

// TestSplitAndJoin: hosts moved apart by lantest's Split do not see each other by mDNS;
// after Join (the cables plugged in again) they do, with nothing changed inside them.
func TestSplitAndJoin(t *testing.T) {
	lan := lantest.New(t, 2)
	lan.Split(t, []int{0}, []int{1})
	stop := startAnnouncer(t, lan, 0, randomID(t))
	defer stop()
	if out, err := browseFrom(lan, 1, "3s"); err == nil || !strings.Contains(string(out), "timeout") {
		t.Fatalf("found a peer across split networks: %s %v", out, err)
	}
	lan.Join(t)
	out, err := browseFrom(lan, 1, "")
	if err != nil || !strings.Contains(string(out), "pong ping") {
		t.Fatalf("peer not found after Join: %s %v", out, err)
	}
}

// TestNetworkComesUp: an announcer and a browser both start while their hosts' network is
// down (only loopback, which cannot multicast); once the interfaces come up, the
// announcer announces on them and the browser queries on them, and the peer is found.
func TestNetworkComesUp(t *testing.T) {
	lan := lantest.New(t, 2)
	lan.LinkDown(t, 0)
	lan.LinkDown(t, 1)
	stop := startAnnouncer(t, lan, 0, randomID(t))
	defer stop()
	br := lan.Command(1, os.Args[0], "-test.run=^$")
	br.Env = append(os.Environ(), "OVERLAY=lan.test", "DISCOVERY_HELPER=browse", "BROWSE_TIMEOUT=60s", "SAY_READY=1")
	br.Stderr = os.Stderr
	stdout, _ := br.StdoutPipe()
	if err := br.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = br.Process.Kill(); _ = br.Wait() }()
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "browsing" {
		t.Fatalf("browser: %q %v", line, err)
	}
	lan.LinkUp(t, 0)
	lan.LinkUp(t, 1)
	t0 := time.Now()
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "pong ping") {
		t.Fatalf("peer not found after the networks came up: %q %v", line, err)
	}
	t.Logf("found %.1f s after the interfaces came up", time.Since(t0).Seconds())
}

// TestIPv6OnlyLAN: on a LAN with IPv6 addresses only (no IPv4 anywhere), peers find each
// other over ff02::fb and reach each other at the AAAA address announced.
func TestIPv6OnlyLAN(t *testing.T) {
	lan := lantest.New(t, 2)
	lan.IPv6Only(t)
	stop := startAnnouncer(t, lan, 0, randomID(t))
	defer stop()
	out, err := browseFrom(lan, 1, "")
	if err != nil || !strings.Contains(string(out), "pong ping") {
		t.Fatalf("peer not found or not reachable over IPv6: %s %v", out, err)
	}
	if !strings.Contains(string(out), "["+lan.Addrs[0].String()+"]:6084") {
		t.Errorf("found at %s, want [%v]:6084", out, lan.Addrs[0])
	}
}
