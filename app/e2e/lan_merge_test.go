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
	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/overlay/discovery/lantest"
)

// TestLANRingsMerge: two groups of phones on two networks, started with no flags, each
// form a ring of the local network's overlay (the first of each starts it); the networks
// are then connected, the phones see each other by mDNS, the rings merge into one
// (every phone's neighbours are those of the union), and a user of one group calls a user
// of the other by name.
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
		in := filepath.Join(dir, "in.wav")
		if err := audio.SaveWAV(in, analysis.TestSignal(audio.SampleRate, audio.SampleRate, uint32(i+1))); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--profile", filepath.Join(dir, "profile"), "--user", user,
			"--audio-in", in, "--audio-out", filepath.Join(dir, "out.wav")}, extra...)
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

	// Apart, each ring holds its own two phones only.
	ringOf := func(p *Proc) []string {
		p.Send(t, "status")
		st := p.Wait(t, "status", 10*time.Second)
		return append(strs(st["predecessors"]), strs(st["successors"])...)
	}
	for _, pair := range [][2]*Proc{{alice, bob}, {bob, alice}, {carol, dave}, {dave, carol}} {
		for _, id := range ringOf(pair[0]) {
			if id != ids[pair[1]] {
				t.Fatalf("%s has neighbour %s outside its network before the networks are joined", pair[0].Name, id)
			}
		}
	}

	lan.Join(t)
	t0 := time.Now()
	var sorted []string
	for _, id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	deadline := t0.Add(30*time.Second + 2*interval)
	for {
		bad := ""
		for _, p := range phones {
			p.Send(t, "status")
			st := p.Wait(t, "status", 10*time.Second)
			me := slices.Index(sorted, ids[p])
			var wantS, wantP []string
			for k := 1; k < len(sorted); k++ {
				wantS = append(wantS, sorted[(me+k)%len(sorted)])
				wantP = append(wantP, sorted[(me+len(sorted)-k)%len(sorted)])
			}
			if s, pr := strs(st["successors"]), strs(st["predecessors"]); !slices.Equal(s, wantS) || !slices.Equal(pr, wantP) {
				bad = fmt.Sprintf("%s: successors %v predecessors %v; want %v / %v", p.Name, s, pr, wantS, wantP)
				break
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rings did not merge within %v after the networks were joined: %s", deadline.Sub(t0), bad)
		}
		time.Sleep(200 * time.Millisecond) // polling interval of the status check, not a synchronisation
	}
	t.Logf("rings merged: every phone's neighbour table is the union's %.1f s after the networks were joined (merge interval %v)", time.Since(t0).Seconds(), interval)

	// Each side reaches the other by name: alice (alice's network) calls dave (the other's).
	alice.Send(t, "call dave")
	dave.Wait(t, "incoming", 20*time.Second)
	alice.Wait(t, "answered", 20*time.Second)
	alice.Send(t, "hangup")
	alice.Wait(t, "hangup", 20*time.Second)
	dave.Wait(t, "hangup", 20*time.Second)
	carol.Send(t, "call bob")
	bob.Wait(t, "incoming", 20*time.Second)
	carol.Wait(t, "answered", 20*time.Second)
	carol.Send(t, "hangup")
	carol.Wait(t, "hangup", 20*time.Second)
	t.Logf("calls across the joined networks answered %.1f s after they were joined", time.Since(t0).Seconds())
}
