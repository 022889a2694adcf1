package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/phone"
	"github.com/chordphone/chordphone/overlay/discovery/lantest"
)

// TestLANRingsMerge: two groups of phones on two networks, started with no flags, each
// form a ring of the local network's overlay (the first of each starts it); the networks
// are then connected, the phones see each other by mDNS, the rings merge into one
// (every phone's neighbours are those of the union), and a user of one group calls a user
// of the other by name. Then the networks are cut apart and joined again: two rings, then
// one again, and a call across.
func TestLANRingsMerge(t *testing.T) {
	lan := lantest.New(t, 4) // skips without root or ip
	lan.Split(t, []int{0, 1}, []int{2, 3})
	// The phones look for other rings every 2 s instead of every 30 s (unless the variable
	// is set: CHORDPHONE_LAN_MERGE_INTERVAL=30s measures the default).
	interval := 2 * time.Second
	if d, err := time.ParseDuration(os.Getenv(phone.LANMergeIntervalEnv)); err == nil {
		interval = d
	}
	t.Setenv(phone.LANMergeIntervalEnv, interval.String())
	start := func(i int, user string, extra ...string) *Proc {
		dir := t.TempDir()
		_, in, out := audioFiles(t, dir, user, uint32(i+1))
		args := append([]string{"--profile", filepath.Join(dir, "profile"), "--user", user,
			"--audio-in", in, "--audio-out", out}, extra...)
		return StartHeadlessIn(t, lan.Namespaces[i], binPath, user, dir, args...)
	}
	joined := func(p *Proc, first bool) string {
		j := p.Wait(t, "joined", 60*time.Second)
		if j["first"] != first {
			t.Fatalf("%s joined with first=%v, want %v: %v", p.Name, j["first"], first, j)
		}
		p.Wait(t, "registered", 30*time.Second)
		return j["node_id"].(string)
	}
	// One network: alice starts its ring, bob joins it; the other: carol and dave.
	alice, carol := start(0, "alice"), start(2, "carol")
	ids := map[*Proc]string{alice: joined(alice, true), carol: joined(carol, true)}
	bob, dave := start(1, "bob", "--auto-answer"), start(3, "dave", "--auto-answer")
	ids[bob], ids[dave] = joined(bob, false), joined(dave, false)
	phones := []*Proc{alice, bob, carol, dave}

	var sorted []string
	for _, id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	// waitRing polls status until every phone's neighbour table is the one the four make
	// together (or, with apart set, the one of its own network) and returns how long that
	// took.
	waitRing := func(what string, apart bool, timeout time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		for {
			bad := ""
			for _, p := range phones {
				ring := sorted
				if apart {
					ring = []string{ids[alice], ids[bob]}
					if p == carol || p == dave {
						ring = []string{ids[carol], ids[dave]}
					}
					ring = slices.Sorted(slices.Values(ring))
				}
				p.Send(t, "status")
				st := p.Wait(t, "status", 10*time.Second)
				me := slices.Index(ring, ids[p])
				var wantS, wantP []string
				for k := 1; k < len(ring); k++ {
					wantS = append(wantS, ring[(me+k)%len(ring)])
					wantP = append(wantP, ring[(me+len(ring)-k)%len(ring)])
				}
				if s, pr := strs(st["successors"]), strs(st["predecessors"]); !slices.Equal(s, wantS) || !slices.Equal(pr, wantP) {
					bad = fmt.Sprintf("%s: successors %v predecessors %v; want %v / %v", p.Name, s, pr, wantS, wantP)
					break
				}
			}
			if bad == "" {
				return time.Since(t0)
			}
			if time.Since(t0) > timeout {
				t.Fatalf("%s: not within %v: %s", what, timeout, bad)
			}
			time.Sleep(200 * time.Millisecond) // polling interval of the status check, not a synchronisation
		}
	}

	// Apart, each ring holds its own network's two phones.
	waitRing("each network has a ring of its own", true, 30*time.Second)
	lan.Join(t)
	d := waitRing("the rings merge after the networks are joined", false, 30*time.Second+2*interval)
	t.Logf("rings merged: every phone's neighbour table is the union's %.1f s after the networks were joined (merge interval %v)", d.Seconds(), interval)

	// Each side reaches the other by name: alice (alice's network) calls dave (the other's).
	alice.Send(t, "call dave")
	dave.Wait(t, "incoming", 20*time.Second)
	alice.Wait(t, "answered", 20*time.Second)
	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	dave.Wait(t, "hangup", 20*time.Second)

	// The switch between the networks goes away and comes back: the ring falls apart into
	// the two networks' rings, which merge again once the cables are back (the peers of
	// the other side were held back as failed, RFC 6940 §10.7.1, when they return).
	lan.Split(t, []int{0, 1}, []int{2, 3})
	d = waitRing("the ring splits with the networks", true, 30*time.Second)
	t.Logf("split into the two networks' rings %.1f s after the cables were pulled", d.Seconds())
	lan.Join(t)
	d = waitRing("the rings merge again", false, 40*time.Second+2*interval)
	t.Logf("merged again %.1f s after the cables were plugged in again", d.Seconds())
	carol.Send(t, "call bob")
	bob.Wait(t, "incoming", 20*time.Second)
	carol.Wait(t, "answered", 20*time.Second)
	carol.Send(t, "hangup")
	carol.Wait(t, "hangup", 20*time.Second)
}
