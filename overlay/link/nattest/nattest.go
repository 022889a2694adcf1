// Package nattest builds, for tests, two hosts each behind its own NAT and a public host
// between them, out of network namespaces:
//
//	H1 -- NAT 1 -- Pub -- NAT 2 -- H2
//
// The public side uses 198.18.0.0/15 (benchmarking addresses: not private, so a peer there
// counts as publicly reachable, RFC 6940 §9); the hosts sit in 192.168.0.0/16. Like home
// routers, the NATs drop unsolicited packets from outside. It needs root, ip and iptables;
// New skips the test otherwise. Everything is removed when the test ends.
package nattest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Net is the namespaces and addresses a test uses.
type Net struct {
	Pub, H1, H2            string // namespaces of the public host and the two hosts behind NATs
	PubAddr1, PubAddr2     string // the public host's addresses facing NAT 1 and NAT 2
	NAT1Public, NAT2Public string // the NATs' outside addresses
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New builds the network. symmetric makes the NATs map every destination to a new random
// port (masquerade --random, a symmetric NAT); otherwise they keep the source port
// (endpoint-independent mapping).
func New(t testing.TB, symmetric bool) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("nattest: needs root for network namespaces")
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("nattest: no %s command", c)
		}
	}
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	s := int(b[0])%100 + 100
	n := &Net{Pub: "npub" + tag, H1: "nh1" + tag, H2: "nh2" + tag,
		PubAddr1: fmt.Sprintf("198.18.%d.1", s), PubAddr2: fmt.Sprintf("198.19.%d.1", s),
		NAT1Public: fmt.Sprintf("198.18.%d.2", s), NAT2Public: fmt.Sprintf("198.19.%d.2", s)}
	nat1, nat2 := "nn1"+tag, "nn2"+tag
	for _, ns := range []string{n.Pub, nat1, nat2, n.H1, n.H2} {
		if err := run("ip", "netns", "add", ns); err != nil {
			t.Skipf("nattest: cannot create network namespaces: %v", err)
		}
		t.Cleanup(func() { _ = run("ip", "netns", "delete", ns) })
		if err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	// veth connects namespace a (interface an, address aa) with b (bn, ba).
	veth := func(a, an, aa, b, bn, ba string) {
		tmpA, tmpB := "va"+tag+an, "vb"+tag+bn
		for _, c := range [][]string{
			{"ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB},
			{"ip", "link", "set", tmpA, "netns", a},
			{"ip", "link", "set", tmpB, "netns", b},
			{"ip", "-n", a, "link", "set", tmpA, "name", an},
			{"ip", "-n", b, "link", "set", tmpB, "name", bn},
			{"ip", "-n", a, "addr", "add", aa, "dev", an},
			{"ip", "-n", b, "addr", "add", ba, "dev", bn},
			{"ip", "-n", a, "link", "set", an, "up"},
			{"ip", "-n", b, "link", "set", bn, "up"},
		} {
			if err := run(c...); err != nil {
				t.Fatal(err)
			}
		}
	}
	veth(n.Pub, "p1", n.PubAddr1+"/24", nat1, "wan", n.NAT1Public+"/24")
	veth(n.Pub, "p2", n.PubAddr2+"/24", nat2, "wan", n.NAT2Public+"/24")
	veth(nat1, "lan", fmt.Sprintf("192.168.%d.1/24", s), n.H1, "eth0", fmt.Sprintf("192.168.%d.2/24", s))
	veth(nat2, "lan", fmt.Sprintf("192.168.%d.1/24", s+1), n.H2, "eth0", fmt.Sprintf("192.168.%d.2/24", s+1))
	for _, c := range [][]string{
		{"ip", "netns", "exec", n.Pub, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", nat1, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", nat2, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "-n", nat1, "route", "add", "default", "via", n.PubAddr1},
		{"ip", "-n", nat2, "route", "add", "default", "via", n.PubAddr2},
		{"ip", "-n", n.H1, "route", "add", "default", "via", fmt.Sprintf("192.168.%d.1", s)},
		{"ip", "-n", n.H2, "route", "add", "default", "via", fmt.Sprintf("192.168.%d.1", s+1)},
	} {
		if err := run(c...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{nat1, nat2} {
		masq := []string{"ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
		if symmetric {
			masq = append(masq, "--random")
		}
		if err := run(masq...); err != nil {
			t.Skipf("nattest: cannot set up NAT: %v", err)
		}
		// Like a home router, drop unsolicited packets from outside. (Otherwise a check that
		// arrives before the peer's own first check leaves a conntrack entry for the NAT
		// itself, and the masquerade then picks another port for the peer.)
		if err := run("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"); err != nil {
			t.Skipf("nattest: cannot set up the NAT's firewall: %v", err)
		}
	}
	return n
}
