package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// Overlay is a set of headless peers on loopback joined through the first one.
type Overlay struct {
	Name  string
	Peers []*Proc
	Addrs []string
	IDs   []string
}

// StartOverlay starts n storing peers (no user) on loopback: the first starts the overlay,
// the others join through it. It returns when every peer has reported joined.
func StartOverlay(t testing.TB, name string, n int) *Overlay {
	t.Helper()
	o := &Overlay{Name: name}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		// Port 0: the peer takes a free port itself (ports picked beforehand can be taken by
		// another process's ICE sockets in the meantime); status says which.
		args := []string{"--profile", filepath.Join(dir, "profile"), "--listen", "127.0.0.1:0", "--overlay", name}
		if i > 0 {
			args = append(args, "--bootstrap", o.Addrs[0])
		}
		p := StartHeadless(t, binPath, fmt.Sprintf("peer%02d", i), dir, args...)
		j := p.Wait(t, "joined", 60*time.Second)
		if first, _ := j["first"].(bool); first != (i == 0) {
			t.Fatalf("peer %d: joined with first=%v", i, j["first"])
		}
		p.Send(t, "status")
		st := p.Wait(t, "status", 10*time.Second)
		o.Peers = append(o.Peers, p)
		o.Addrs = append(o.Addrs, st["listen"].(string))
		o.IDs = append(o.IDs, j["node_id"].(string))
	}
	return o
}

// Join starts one more headless process joining o through its first peer.
func (o *Overlay) Join(t testing.TB, name string, args ...string) *Proc {
	dir := t.TempDir()
	args = append([]string{"--profile", filepath.Join(dir, "profile"), "--listen", "127.0.0.1:0",
		"--overlay", o.Name, "--bootstrap", o.Addrs[0]}, args...)
	return StartHeadless(t, binPath, name, dir, args...)
}

func strs(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestTwentyPeersFormOneRing starts 20 real processes with DTLS links on loopback; once the
// ring has stabilised, each peer's first successor and first predecessor are its neighbours
// on the sorted ring of Node-IDs.
func TestTwentyPeersFormOneRing(t *testing.T) {
	if testing.Short() {
		t.Skip("20 processes")
	}
	o := StartOverlay(t, "ring.test", 20)
	sorted := append([]string(nil), o.IDs...)
	sort.Strings(sorted)
	idx := map[string]int{}
	for i, id := range sorted {
		idx[id] = i
	}
	// Stabilisation is event driven (Updates); poll status until each peer agrees with the
	// ring, up to a bound well above what it needs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		bad := ""
		for i, p := range o.Peers {
			p.Send(t, "status")
			st := p.Wait(t, "status", 10*time.Second)
			me := idx[o.IDs[i]]
			succ, pred := strs(st["successors"]), strs(st["predecessors"])
			wantS, wantP := sorted[(me+1)%len(sorted)], sorted[(me+len(sorted)-1)%len(sorted)]
			if len(succ) < 3 || len(pred) < 3 || succ[0] != wantS || pred[0] != wantP {
				bad = fmt.Sprintf("peer %d (%s): successors %v predecessors %v; want first %s / %s", i, o.IDs[i][:8], succ, pred, wantS[:8], wantP[:8])
				break
			}
			if len(strs(st["fingers"])) == 0 {
				bad = fmt.Sprintf("peer %d has no fingers", i)
				break
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
		time.Sleep(500 * time.Millisecond) // polling interval of the status check, not a synchronisation
	}
}
