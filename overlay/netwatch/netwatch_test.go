package netwatch

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::2")
	c := Change{Added: []netip.Addr{a}}.merge(Change{Removed: []netip.Addr{a}, Added: []netip.Addr{b}, Stall: time.Second})
	if len(c.Added) != 1 || c.Added[0] != b || len(c.Removed) != 0 || c.Stall != time.Second {
		t.Fatalf("merged %+v", c)
	}
}

func TestStallClocks(t *testing.T) {
	t0 := time.Now()
	if d := stall(t0, t0.Add(2*time.Second)); d != 2*time.Second {
		t.Fatalf("monotonic gap %v", d)
	}
	// A suspend: the wall clock moved 10 min, the monotonic clock 1 s.
	wall := time.Unix(0, t0.Add(10*time.Minute).UnixNano())
	if d := stall(t0.Round(0), wall); d < 10*time.Minute-time.Second {
		t.Fatalf("wall-clock jump seen as %v", d)
	}
}

// TestAddressComesAndGoes adds a veth interface with an IPv4 and an IPv6 address, then
// removes an address and the interface: each change is reported (netlink: in well under
// the rescan interval).
func TestAddressComesAndGoes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a veth interface")
	}
	name := fmt.Sprintf("nwt%d", os.Getpid()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("ip %v: %v: %s", args, err, out)
		}
	}
	w := Start(context.Background(), Options{Interval: time.Minute})
	defer w.Close()
	ch, stop := w.Subscribe()
	defer stop()
	ip("link", "add", name, "type", "veth", "peer", "name", name+"p")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", name).Run() })
	v4, v6 := netip.MustParseAddr("10.251.77.1"), netip.MustParseAddr("fd77:251::1")
	ip("addr", "add", v4.String()+"/24", "dev", name)
	ip("addr", "add", v6.String()+"/64", "dev", name, "nodad")
	ip("link", "set", name, "up")
	wait := func(what string, ok func(Change) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case c := <-ch:
				if ok(c) {
					return
				}
			case <-deadline:
				t.Fatalf("%s: not reported", what)
			}
		}
	}
	seen := map[netip.Addr]bool{}
	wait("addresses added", func(c Change) bool {
		for _, a := range c.Added {
			seen[a] = true
		}
		return seen[v4] && seen[v6]
	})
	ip("addr", "del", v4.String()+"/24", "dev", name)
	wait("address removed", func(c Change) bool { return slices.Contains(c.Removed, v4) })
	if slices.Contains(w.Addrs(), v4) || !slices.Contains(w.Addrs(), v6) {
		t.Fatalf("Addrs %v", w.Addrs())
	}
	ip("link", "delete", name)
	wait("interface gone", func(c Change) bool { return c.Interfaces && slices.Contains(c.Removed, v6) })
}
