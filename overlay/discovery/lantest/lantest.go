// Package lantest builds a small local network for tests: N network
// namespaces joined by a Linux bridge, each with one multicast-capable
// interface, so that programs run inside them see each other by mDNS (as
// phones on one LAN do) and by nothing else. It needs root and the ip
// command; New skips the test otherwise.
package lantest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// LAN is a set of network namespaces on one bridge.
type LAN struct {
	Namespaces []string
	Addrs      []netip.Addr // Addrs[i] is the address of namespace i
	bridge     string
	tag        string
	hostEnds   []string // host-side veth of each namespace, a port of a bridge
	split      []string // the bridges of Split, made on first use
	subnet     byte     // the LAN is 10.213.subnet.0/24
	renumbered int      // addresses handed out by Renumber
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New makes a LAN of n hosts (10.213.x.1.., /24) and removes it when the
// test ends. It skips the test where namespaces cannot be made.
func New(t testing.TB, n int) *LAN {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lantest: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("lantest: no ip command")
	}
	if n < 1 || n > 200 {
		t.Fatalf("lantest: %d hosts", n)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	subnet := int(b[0])%200 + 20
	l := &LAN{bridge: "lbr" + tag, tag: tag, subnet: byte(subnet)}
	if err := ip("link", "add", l.bridge, "type", "bridge"); err != nil {
		t.Skipf("lantest: cannot create a bridge: %v", err)
	}
	t.Cleanup(func() { _ = ip("link", "delete", l.bridge) })
	if err := ip("link", "set", l.bridge, "up"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("lan%s-%d", tag, i)
		host, peer := fmt.Sprintf("lh%s%d", tag, i), fmt.Sprintf("lp%s%d", tag, i)
		addr := netip.AddrFrom4([4]byte{10, 213, byte(subnet), byte(i + 1)})
		if err := ip("netns", "add", ns); err != nil {
			t.Skipf("lantest: cannot create a network namespace: %v", err)
		}
		t.Cleanup(func() { _ = ip("netns", "delete", ns) })
		for _, c := range [][]string{
			{"link", "add", host, "type", "veth", "peer", "name", peer},
			{"link", "set", host, "master", l.bridge},
			{"link", "set", host, "up"},
			{"link", "set", peer, "netns", ns},
			{"-n", ns, "link", "set", peer, "name", "eth0"},
			{"-n", ns, "addr", "add", addr.String() + "/24", "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		} {
			if err := ip(c...); err != nil {
				t.Fatalf("lantest: %v", err)
			}
		}
		l.Namespaces = append(l.Namespaces, ns)
		l.hostEnds = append(l.hostEnds, host)
		l.Addrs = append(l.Addrs, addr)
	}
	return l
}

// Command returns a command that runs name with args inside host i.
func (l *LAN) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Namespaces[i], name}, args...)...)
}

// Split cuts the LAN into separate networks: the hosts of each group after the first
// move to a bridge of their own ("cables unplugged"); the first group and any host in
// no group stay on the LAN's bridge. Addresses stay as they are (one /24), so Join
// connects the networks again without any change inside the hosts.
func (l *LAN) Split(t testing.TB, groups ...[]int) {
	t.Helper()
	for g := 1; g < len(groups); g++ {
		for len(l.split) < g {
			br := fmt.Sprintf("lbr%s%c", l.tag, 'a'+len(l.split))
			if err := ip("link", "add", br, "type", "bridge"); err != nil {
				t.Fatalf("lantest: %v", err)
			}
			t.Cleanup(func() { _ = ip("link", "delete", br) })
			if err := ip("link", "set", br, "up"); err != nil {
				t.Fatalf("lantest: %v", err)
			}
			l.split = append(l.split, br)
		}
		for _, i := range groups[g] {
			l.attach(t, i, l.split[g-1])
		}
	}
}

// Join puts every host back on the LAN's bridge ("cables plugged in").
func (l *LAN) Join(t testing.TB) {
	t.Helper()
	for i := range l.hostEnds {
		l.attach(t, i, l.bridge)
	}
}

func (l *LAN) attach(t testing.TB, i int, bridge string) {
	t.Helper()
	if i < 0 || i >= len(l.hostEnds) {
		t.Fatalf("lantest: no host %d", i)
	}
	if err := ip("link", "set", l.hostEnds[i], "master", bridge); err != nil {
		t.Fatalf("lantest: %v", err)
	}
}

// LinkDown takes host i's interface down: its network is gone, only loopback is left (as
// on a laptop before it finds a network).
func (l *LAN) LinkDown(t testing.TB, i int) {
	t.Helper()
	if err := ip("-n", l.Namespaces[i], "link", "set", "eth0", "down"); err != nil {
		t.Fatalf("lantest: %v", err)
	}
}

// LinkUp brings host i's interface up again (with the address it had).
func (l *LAN) LinkUp(t testing.TB, i int) {
	t.Helper()
	if err := ip("-n", l.Namespaces[i], "link", "set", "eth0", "up"); err != nil {
		t.Fatalf("lantest: %v", err)
	}
}

// Renumber gives host i a new address on the LAN (as a DHCP lease that changed): the
// old one is removed, then the new one added (removing a primary address first would
// take secondaries in its subnet with it). It returns the new address (also in Addrs[i]).
func (l *LAN) Renumber(t testing.TB, i int) netip.Addr {
	t.Helper()
	l.renumbered++
	addr := netip.AddrFrom4([4]byte{10, 213, l.subnet, byte(100 + l.renumbered)})
	ns := l.Namespaces[i]
	if err := ip("-n", ns, "addr", "del", l.Addrs[i].String()+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("lantest: %v", err)
	}
	if err := ip("-n", ns, "addr", "add", addr.String()+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("lantest: %v", err)
	}
	l.Addrs[i] = addr
	return addr
}

// IPv6Only gives every host an IPv6 address (fd00:213:SUBNET::N/64, unique local) instead
// of its IPv4 one: a LAN with no IPv4 at all. Addrs changes accordingly.
func (l *LAN) IPv6Only(t testing.TB) {
	t.Helper()
	for i, ns := range l.Namespaces {
		a := netip.AddrFrom16([16]byte{0xfd, 0, 0x02, 0x13, 0, l.subnet, 14: 0, 15: byte(i + 1)})
		for _, c := range [][]string{
			{"-n", ns, "addr", "del", l.Addrs[i].String() + "/24", "dev", "eth0"},
			{"-n", ns, "addr", "add", a.String() + "/64", "dev", "eth0", "nodad"},
		} {
			if err := ip(c...); err != nil {
				t.Fatalf("lantest: %v", err)
			}
		}
		l.Addrs[i] = a
	}
}
