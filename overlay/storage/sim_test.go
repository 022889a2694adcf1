package storage

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// simN is the size of TestSimKill20: 40 peers in the normal run,
// CHORDPHONE_STORAGE_SIM_N (e.g. 1000) for the long run:
//
//	CHORDPHONE_STORAGE_SIM_N=1000 go test ./overlay/storage -run TestSimKill20 -v -timeout 30m
func simN(t *testing.T) int {
	if v := os.Getenv("CHORDPHONE_STORAGE_SIM_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("CHORDPHONE_STORAGE_SIM_N=%q: want a number >= 10", v)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 40
}

type latencies []time.Duration

func (l latencies) String() string {
	if len(l) == 0 {
		return "none"
	}
	s := slices.Clone(l)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)] }
	return fmt.Sprintf("n=%d mean=%v p50=%v p99=%v max=%v", len(s), (sum / time.Duration(len(s))).Round(time.Microsecond),
		p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

// parallel runs f(i) for i < n, k at a time.
func parallel(n, k int, f func(i int)) {
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// TestSimKill20: N peers, each a phone with its own registered user; 20%
// of the peers are killed at once. After repair every registration is
// fetchable (except those whose three holders all died with their phone:
// nobody can store those again), none duplicated or stale, and each is
// held by its responsible peer and the next two successors again.
func TestSimKill20(t *testing.T) {
	n := simN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	if n >= 500 {
		c.rt = time.Second // a loaded 2-core machine: fewer spurious retransmissions
	}
	t0 := time.Now()
	c.grow(ctx, n)
	c.waitRing(3 * time.Minute)
	t.Logf("%d peers joined, ring correct in %v", n, time.Since(t0).Round(time.Millisecond))

	// Every phone registers its user (store latency).
	ps := c.live()
	regs := make([]*regState, len(ps))
	storeLat := make(latencies, len(ps))
	var failed atomic.Int64
	parallel(len(ps), 32, func(i int) {
		p := ps[i]
		t1 := time.Now()
		var err error
		// As the phone would on a timeout (a loaded machine), try again, for
		// up to three minutes.
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
			if err = p.svc.Register(ctx, "sip:"+p.u.name, ""); err == nil {
				break
			}
		}
		if err != nil {
			failed.Add(1)
			t.Errorf("register %s: %v", p.u.name, err)
			return
		}
		storeLat[i] = time.Since(t1)
		regs[i] = p.registered()
	})
	if failed.Load() > 0 {
		t.FailNow()
	}
	d := waitFor(t, 2*time.Minute, "replicated", func() (bool, string) { return replicated(c.live(), regs) })
	t.Logf("store (Register, routed StoreReq with signature checks): %v", storeLat)
	t.Logf("all %d registrations on their responsible peer and two successors %v after the last store", len(regs), d.Round(time.Millisecond))

	// Fetch latency: LookupAoR (routed FetchReq, verification) from random peers.
	rng := rand.New(rand.NewPCG(3, 5))
	fetchLat := make(latencies, len(regs))
	froms := make([]*tpeer, len(regs))
	for i := range froms {
		froms[i] = ps[rng.IntN(len(ps))]
	}
	parallel(len(regs), 32, func(i int) {
		t1 := time.Now()
		got, err := froms[i].svc.LookupAoR(ctx, regs[i].aor)
		fetchLat[i] = time.Since(t1)
		if err != nil || len(got) != 1 || got[0].Node != regs[i].node {
			failed.Add(1)
			t.Errorf("lookup %s: %v %+v", regs[i].aor, err, got)
		}
	})
	if failed.Load() > 0 {
		t.FailNow()
	}
	t.Logf("fetch (LookupAoR): %v", fetchLat)

	// Kill 20% at once.
	sorted := c.live()
	victims := slices.Clone(sorted)
	rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	victims = victims[:len(victims)/5]
	dead := map[wire.NodeID]bool{}
	for _, v := range victims {
		dead[v.id] = true
	}
	// Registrations whose three holders all die cannot survive; their phone
	// stores them again if it lives (audit), else they are gone.
	var lostDead, lostLive int
	survivable := []*regState{}
	restored := map[wire.NodeID]bool{} // live phones that must store again
	for _, r := range regs {
		all := true
		for _, h := range holders(sorted, r.rid) {
			all = all && dead[h.id]
		}
		switch {
		case all && dead[r.node]:
			lostDead++
			continue
		case all:
			lostLive++
			restored[r.node] = true
		}
		survivable = append(survivable, r)
	}
	// Kill: every victim's links die at once (its endpoint closes, as when a
	// process is killed); the node objects are cleaned up meanwhile, off the clock.
	for _, v := range victims {
		c.mu.Lock()
		delete(c.peers, v.id)
		c.mu.Unlock()
		v.ep.Close()
	}
	tk := time.Now()
	var cleanup sync.WaitGroup
	cleanup.Add(1)
	go func() {
		defer cleanup.Done()
		parallel(len(victims), 16, func(i int) { victims[i].n.Close() })
	}()
	defer cleanup.Wait()
	ringD := c.waitRing(3 * time.Minute)
	// Live phones may have stored again (audit): use their latest value.
	current := func() []*regState {
		out := make([]*regState, 0, len(survivable))
		byNode := map[wire.NodeID]*tpeer{}
		for _, p := range c.live() {
			byNode[p.id] = p
		}
		for _, r := range survivable {
			if p := byNode[r.node]; p != nil {
				out = append(out, p.registered())
			} else {
				out = append(out, r)
			}
		}
		return out
	}
	var fetchable, fetchableKept time.Duration
	waitFor(t, 3*time.Minute, "replicated after the kill", func() (bool, string) {
		live, regs := c.live(), current()
		if fetchableKept == 0 {
			kept := slices.DeleteFunc(slices.Clone(regs), func(r *regState) bool { return restored[r.node] })
			if ok, why := heldBy(live, kept, 1); ok {
				fetchableKept = time.Since(tk)
			} else if os.Getenv("CHORDPHONE_STORAGE_SIM_DEBUG") != "" {
				t.Logf("%v: %s", time.Since(tk).Round(time.Millisecond), why)
			}
		}
		if fetchable == 0 {
			if ok, _ := heldBy(live, regs, 1); ok {
				fetchable = time.Since(tk)
			}
		}
		return replicated(live, regs)
	})
	repair := time.Since(tk)
	listsD := c.waitLists(time.Minute)
	t.Logf("killed %d of %d peers at once: first successors and predecessors right after %v; registrations with a surviving copy fetchable after %v; every registration fetchable (lost ones stored again by their phones) after %v; all on their three holders after %v (successor lists all right %v after that)",
		len(victims), len(sorted), ringD.Round(time.Millisecond), fetchableKept.Round(time.Millisecond), fetchable.Round(time.Millisecond), repair.Round(time.Millisecond), listsD.Round(time.Millisecond))
	t.Logf("registrations whose three holders all died: %d of phones that died too (gone), %d of live phones (stored again by their phone)", lostDead, lostLive)

	// Every survivable registration is fetchable from a random live peer:
	// exactly one entry per AoR, with the latest storage time.
	live := c.live()
	final := current()
	askers := make([]*tpeer, len(final))
	for i := range askers {
		askers[i] = live[rng.IntN(len(live))]
	}
	parallel(len(final), 32, func(i int) {
		r := final[i]
		got, err := askers[i].svc.LookupAoR(ctx, r.aor)
		if err != nil || len(got) != 1 || got[0].Node != r.node || got[0].StorageTime.UnixMilli() != int64(r.time) {
			failed.Add(1)
			t.Errorf("after repair, %s: %v %+v (want storage time %d)", r.aor, err, got, r.time)
		}
	})
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d registrations not fetchable (or stale) after repair", n)
	}
	var m Metrics
	for _, p := range live {
		x := p.svc.Metrics()
		m.Pushes += x.Pushes
		m.PushFailures += x.PushFailures
		m.Migrations += x.Migrations
		m.Dropped += x.Dropped
	}
	t.Logf("replication over the run: %d replica stores (%d failed), %d migrations at admission, %d stale resources dropped", m.Pushes, m.PushFailures, m.Migrations, m.Dropped)
}

// TestSimChurn: continuous churn (peer half-life of 30 minutes, time scale
// 100) while every phone keeps its registration; lookups of live phones'
// registrations during churn are counted, and after churn every live
// phone's registration is back on its three holders.
func TestSimChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn: skipped with -short")
	}
	n := 30
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.grow(ctx, n)
	c.waitRing(time.Minute)
	register := func(p *tpeer) {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			if err := p.svc.Register(ctx, "sip:"+p.u.name, ""); err == nil {
				return
			}
		}
		t.Errorf("register %s failed", p.u.name)
	}
	parallel(n, 8, func(i int) { register(c.live()[i]) })
	rng := rand.New(rand.NewPCG(9, 9))
	halfLife := 18 * time.Second // 30 min / 100
	lambda := math.Ln2 / halfLife.Seconds()
	dur := 12 * time.Second
	tick := 100 * time.Millisecond
	var killed, joined, ok, bad int
	var acc float64
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		time.Sleep(tick)
		live := c.live()
		acc += lambda * tick.Seconds() * float64(len(live))
		for ; acc >= 1 && len(live) > 4; acc-- {
			v := live[rng.IntN(len(live))]
			c.kill(v)
			killed++
			b := c.live()[0]
			if p, err := c.add(ctx, c.addr(b)); err == nil {
				joined++
				register(p)
			}
			live = c.live()
		}
		// One lookup of a random live phone per tick.
		live = c.live()
		from, to := live[rng.IntN(len(live))], live[rng.IntN(len(live))]
		if to.registered() == nil {
			continue
		}
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := from.svc.LookupAoR(lctx, to.u.name)
		lcancel()
		if err == nil && len(got) == 1 && got[0].Node == to.id {
			ok++
		} else {
			bad++
		}
	}
	t.Logf("churn for %v: %d peers killed, %d joined; lookups of live phones during churn: %d ok, %d failed", dur, killed, joined, ok, bad)
	c.waitRing(time.Minute)
	current := func() []*regState {
		var out []*regState
		for _, p := range c.live() {
			if r := p.registered(); r != nil {
				out = append(out, r)
			}
		}
		return out
	}
	d := waitFor(t, 2*time.Minute, "replicated after churn", func() (bool, string) { return replicated(c.live(), current()) })
	t.Logf("every live phone's registration on its three holders %v after the ring was right", d.Round(time.Millisecond))
	if killed == 0 {
		t.Fatal("no churn happened")
	}
}
