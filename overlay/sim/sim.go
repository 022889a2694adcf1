package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/node"
)

// Params configure a simulation. Zero fields take the defaults in their comments.
type Params struct {
	// N is the number of peers: 100.
	N int
	// Seed makes Node-IDs and choices reproducible: 1.
	Seed uint64
	// TimeScale divides the RFC default intervals (chord-update-interval 600 s,
	// chord-ping-interval 3600 s, hold-down 30 s) and the churn half-life: 100.
	TimeScale float64
	// ReliabilityTimer is overlay-reliability-timer (not scaled): 500 ms.
	ReliabilityTimer time.Duration
	// NoPartitionCheck turns off the periodic partition check (chord.Settings): false.
	NoPartitionCheck bool
	// Neighbors is the number of predecessors and of successors: chord.DefaultNeighbors.
	Neighbors int
	// JoinParallel is how many peers join at the same time: 16.
	JoinParallel int
	// Lookups per measurement: 1000.
	Lookups int
	// LookupParallel is how many lookups run at once: 32.
	LookupParallel int
	// KillFraction of peers killed at once in the mass-failure phase: 0.2. Negative: skip.
	KillFraction float64
	// HalfLife is the peer half-life of continuous churn, in simulated time: 30 min.
	HalfLife time.Duration
	// ChurnDuration is how long continuous churn runs, in simulated time: 30 min.
	// Negative: skip the churn phase.
	ChurnDuration time.Duration
	// SettleTimeout bounds every wait for the ring to become correct: 2 min.
	SettleTimeout time.Duration
	// Security: SecurityECDSA (default: every message signed and verified, ECDSA P-256),
	// SecurityRSA (RSA-2048) or SecurityNone.
	Security string
	// Logger for the peers (default: discard).
	Logger *slog.Logger
	// Progress, if set, gets a line per phase.
	Progress func(format string, a ...any)
}

func (p Params) withDefaults() Params {
	if p.N <= 0 {
		p.N = 100
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.TimeScale <= 0 {
		p.TimeScale = 100
	}
	if p.ReliabilityTimer <= 0 {
		p.ReliabilityTimer = 500 * time.Millisecond
	}
	if p.Neighbors <= 0 {
		p.Neighbors = chord.DefaultNeighbors
	}
	if p.JoinParallel <= 0 {
		p.JoinParallel = 16
	}
	if p.Lookups <= 0 {
		p.Lookups = 1000
	}
	if p.LookupParallel <= 0 {
		p.LookupParallel = 32
	}
	if p.KillFraction == 0 {
		p.KillFraction = 0.2
	}
	if p.HalfLife <= 0 {
		p.HalfLife = 30 * time.Minute
	}
	if p.ChurnDuration == 0 {
		p.ChurnDuration = 30 * time.Minute
	}
	if p.SettleTimeout <= 0 {
		p.SettleTimeout = 2 * time.Minute
	}
	if p.Logger == nil {
		p.Logger = discardLogger()
	}
	if p.Security == "" {
		p.Security = SecurityECDSA
	}
	return p
}

// LookupStats summarise a batch of lookups (a Ping routed to a random Resource-ID).
type LookupStats struct {
	Count       int     `json:"count"`
	Correct     int     `json:"correct"`
	Errors      int     `json:"errors"`
	SuccessRate float64 `json:"success_rate"`
	MeanHops    float64 `json:"mean_hops"`
	P99Hops     int     `json:"p99_hops"`
	MaxHops     int     `json:"max_hops"`
	MeanMS      float64 `json:"mean_latency_ms"`
	// ErrorSamples are up to three distinct errors.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// PhaseReport is one failure phase.
type PhaseReport struct {
	Killed int `json:"killed"`
	Joined int `json:"joined,omitempty"`
	// ChurnS and HalfLifeS are the real duration of the churn and the scaled half-life.
	ChurnS    float64 `json:"churn_s,omitempty"`
	HalfLifeS float64 `json:"half_life_s,omitempty"`
	// HalfLifeEffS is the half-life achieved (real seconds); HeldS the time the churn
	// clock was held because replacement joins lagged (a slow machine).
	HalfLifeEffS float64 `json:"half_life_effective_s,omitempty"`
	HeldS        float64 `json:"held_s,omitempty"`
	// RepairS is the time from the end of the failures until every peer's first
	// successor and predecessor are right.
	RepairS float64 `json:"repair_s"`
	// RepairIntervals is RepairS in units of chord-update-interval (as scaled).
	RepairIntervals float64 `json:"repair_intervals"`
	// During are lookups made while churn was going on (not required to all succeed).
	During *LookupStats `json:"during,omitempty"`
	// After are lookups made right after the repair.
	After LookupStats `json:"after"`
	// WithinOneInterval: repaired and every lookup succeeding within one interval.
	WithinOneInterval bool `json:"within_one_interval"`
}

// Report holds the figures of one simulation; it marshals to JSON.
type Report struct {
	N        int    `json:"n"`
	Security string `json:"security"`
	// CPUJoinS is the CPU time of the process (all peers) during the joins; CPUS during
	// the whole run (Go runtime estimate).
	CPUJoinS               float64      `json:"cpu_join_s"`
	CPUS                   float64      `json:"cpu_s"`
	Seed                   uint64       `json:"seed"`
	TimeScale              float64      `json:"time_scale"`
	UpdateIntervalS        float64      `json:"update_interval_s"`
	PingIntervalS          float64      `json:"ping_interval_s"`
	ReliabilityMS          float64      `json:"reliability_timer_ms"`
	Neighbors              int          `json:"neighbors"`
	JoinS                  float64      `json:"join_s"`
	RingCorrectS           float64      `json:"ring_correct_after_joins_s"`
	Stable                 LookupStats  `json:"stable"`
	HopBound               float64      `json:"hop_bound"`
	MeanHopsOK             bool         `json:"mean_hops_within_bound"`
	MaintMsgsPerPeerMin    float64      `json:"maintenance_msgs_per_peer_per_min"`
	MaintMsgsPerPeerMinRFC float64      `json:"maintenance_msgs_per_peer_per_min_at_rfc_intervals"`
	MaintWindowS           float64      `json:"maintenance_window_s"`
	Kill                   *PhaseReport `json:"kill,omitempty"`
	Churn                  *PhaseReport `json:"churn,omitempty"`
	// Drops are messages dropped by the peers alive at the end, by reason.
	Drops           map[string]uint64 `json:"drops,omitempty"`
	Retransmissions uint64            `json:"retransmissions"`
	TotalS          float64           `json:"total_s"`
}

func (c *Cluster) progress(format string, a ...any) {
	if c.p.Progress != nil {
		c.p.Progress(format, a...)
	}
}

// Run builds an overlay of p.N peers and measures it (see Report).
func Run(ctx context.Context, p Params) (*Report, error) {
	c := NewCluster(p)
	defer c.Close()
	p = c.p
	t0 := time.Now()
	cs := c.ChordSettings()
	cpu0 := cpuSeconds()
	r := &Report{N: p.N, Security: p.Security, Seed: p.Seed, TimeScale: p.TimeScale, UpdateIntervalS: cs.UpdateInterval.Seconds(),
		PingIntervalS: cs.PingInterval.Seconds(), ReliabilityMS: float64(p.ReliabilityTimer.Milliseconds()), Neighbors: p.Neighbors}
	r.HopBound = 0.5*math.Log2(float64(p.N)) + 1

	// Joins.
	if err := c.Grow(ctx, p.N); err != nil {
		return nil, err
	}
	r.JoinS = time.Since(t0).Seconds()
	r.CPUJoinS = cpuSeconds() - cpu0
	c.progress("joined %d peers in %.1fs", p.N, r.JoinS)
	d, err := c.WaitRing(ctx, p.SettleTimeout)
	if err != nil {
		return nil, fmt.Errorf("sim: ring after joins: %w", err)
	}
	r.RingCorrectS = d.Seconds()
	c.progress("ring correct %.2fs after the last join", r.RingCorrectS)
	r.Stable = c.Lookups(ctx, p.Lookups)
	r.MeanHopsOK = r.Stable.MeanHops <= r.HopBound
	c.progress("stable lookups: %+v (drops so far: %v)", r.Stable, c.dropTotals())

	// Maintenance traffic in a quiet window of two update intervals.
	win := 2 * cs.UpdateInterval
	m0, _ := c.Net.Counters()
	select {
	case <-time.After(win):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m1, _ := c.Net.Counters()
	perMin := float64(m1-m0) / float64(len(c.Peers())) / win.Minutes()
	r.MaintWindowS = win.Seconds()
	r.MaintMsgsPerPeerMin = perMin
	r.MaintMsgsPerPeerMinRFC = perMin / p.TimeScale
	c.progress("maintenance: %.1f msgs/peer/min (%.2f at RFC intervals)", perMin, r.MaintMsgsPerPeerMinRFC)

	if p.KillFraction > 0 {
		ph, err := c.KillPhase(ctx, p.KillFraction)
		if err != nil {
			return nil, err
		}
		r.Kill = ph
		c.progress("kill: %+v", *ph)
		// Back to N peers before churn.
		if p.ChurnDuration <= 0 {
			r.Drops = c.dropTotals()
			r.TotalS = time.Since(t0).Seconds()
			r.CPUS = cpuSeconds() - cpu0
			return r, nil
		}
		if err := c.Grow(ctx, p.N); err != nil {
			return nil, err
		}
		if _, err := c.WaitRing(ctx, p.SettleTimeout); err != nil {
			return nil, fmt.Errorf("sim: ring after regrowth: %w", err)
		}
	}
	if p.ChurnDuration > 0 {
		ph, err := c.ChurnPhase(ctx)
		if err != nil {
			return nil, err
		}
		r.Churn = ph
		c.progress("churn: %+v", *ph)
	}
	r.Drops = c.dropTotals()
	for _, p := range c.Peers() {
		r.Retransmissions += p.Node.Stats().Retransmissions
	}
	r.TotalS = time.Since(t0).Seconds()
	r.CPUS = cpuSeconds() - cpu0
	return r, nil
}

// Grow adds peers until n have joined, JoinParallel at a time, each through a random
// joined peer (the first starts the overlay).
func (c *Cluster) Grow(ctx context.Context, n int) error {
	if len(c.Peers()) == 0 {
		if _, err := c.AddPeer(ctx, ""); err != nil {
			return err
		}
	}
	need := n - len(c.Peers())
	if need <= 0 {
		return nil
	}
	sem := make(chan struct{}, c.p.JoinParallel)
	var wg sync.WaitGroup
	var failed, done atomic.Int64
	var firstErr error
	var once sync.Once
	for i := 0; i < need; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b := c.Random()
			jctx, cancel := context.WithTimeout(ctx, c.p.SettleTimeout)
			defer cancel()
			if _, err := c.AddPeer(jctx, b.Addr); err != nil {
				failed.Add(1)
				once.Do(func() { firstErr = err })
			} else if k := done.Add(1); need >= 1000 && k%(int64(need)/10) == 0 {
				c.progress("  %d of %d joins done", k, need)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("sim: %d of %d joins failed: %w (drops: %v; %s)", f, need, firstErr, c.dropTotals(), strings.Join(Diagnose(c.Peers(), c.p.Neighbors, 4), " | "))
	}
	return nil
}

// WaitRing polls the global view until every peer's first successor and predecessor
// are right and returns how long that took.
func (c *Cluster) WaitRing(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	return c.waitRing(ctx, timeout, false)
}

// WaitNeighbors is WaitRing for the whole neighbour tables (all predecessors and
// successors right).
func (c *Cluster) WaitNeighbors(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	return c.waitRing(ctx, timeout, true)
}

func (c *Cluster) waitRing(ctx context.Context, timeout time.Duration, full bool) (time.Duration, error) {
	t0 := time.Now()
	step := min(c.ChordSettings().UpdateInterval/100, 20*time.Millisecond)
	for {
		ps := c.Peers()
		wrong, wrongList := RingCheck(ps, c.p.Neighbors)
		if full {
			wrong = wrongList
		}
		if wrong == 0 {
			return time.Since(t0), nil
		} else if time.Since(t0) > timeout {
			return 0, fmt.Errorf("%d of %d peers still have a wrong successor or predecessor after %v: %s", wrong, len(ps), timeout, strings.Join(Diagnose(ps, c.p.Neighbors, 6), " | "))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(step):
		}
	}
}

// Lookups makes k lookups from random peers to random Resource-IDs.
func (c *Cluster) Lookups(ctx context.Context, k int) LookupStats {
	sorted := c.Peers()
	type res struct {
		ok   bool
		err  error
		hops int
		d    time.Duration
	}
	out := make([]res, k)
	sem := make(chan struct{}, c.p.LookupParallel)
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		p, key := sorted[i%len(sorted)], c.RandomKey()
		if i >= len(sorted) {
			p = c.Random()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t := time.Now()
			ok, hops, err := c.Lookup(ctx, p, key, sorted)
			out[i] = res{ok, err, hops, time.Since(t)}
		}()
	}
	wg.Wait()
	return summarize(func(yield func(bool, error, int, time.Duration)) {
		for _, r := range out {
			yield(r.ok, r.err, r.hops, r.d)
		}
	})
}

func summarize(each func(func(ok bool, err error, hops int, d time.Duration))) LookupStats {
	var s LookupStats
	var hops []int
	var total time.Duration
	each(func(ok bool, err error, h int, d time.Duration) {
		s.Count++
		if err != nil {
			s.Errors++
			if msg := err.Error(); len(s.ErrorSamples) < 3 && !slices.Contains(s.ErrorSamples, msg) {
				s.ErrorSamples = append(s.ErrorSamples, msg)
			}
			return
		}
		if ok {
			s.Correct++
		}
		hops = append(hops, h)
		total += d
	})
	if s.Count > 0 {
		s.SuccessRate = float64(s.Correct) / float64(s.Count)
	}
	if len(hops) > 0 {
		slices.Sort(hops)
		sum := 0
		for _, h := range hops {
			sum += h
		}
		s.MeanHops = float64(sum) / float64(len(hops))
		s.P99Hops = hops[min(len(hops)-1, int(math.Ceil(0.99*float64(len(hops))))-1)]
		s.MaxHops = hops[len(hops)-1]
		s.MeanMS = float64(total.Microseconds()) / 1000 / float64(len(hops))
	}
	return s
}

// KillPhase kills a fraction of the peers at once, waits for the ring to repair and
// measures lookups right after.
func (c *Cluster) KillPhase(ctx context.Context, frac float64) (*PhaseReport, error) {
	ps := c.Peers()
	k := int(math.Round(frac * float64(len(ps))))
	c.mu.Lock()
	c.rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps[:k] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Kill(p)
		}()
	}
	wg.Wait()
	ph := &PhaseReport{Killed: k}
	d, err := c.WaitRing(ctx, c.p.SettleTimeout)
	if err != nil {
		return nil, fmt.Errorf("sim: ring after killing %d: %w", k, err)
	}
	ph.RepairS = d.Seconds()
	ui := c.ChordSettings().UpdateInterval
	ph.RepairIntervals = d.Seconds() / ui.Seconds()
	ph.After = c.Lookups(ctx, c.p.Lookups)
	ph.WithinOneInterval = d <= ui && ph.After.SuccessRate == 1
	return ph, nil
}

// ChurnPhase runs continuous churn: every peer dies with the half-life HalfLife/TimeScale
// and is replaced by a new joining peer; lookups run throughout. Then it waits for the
// repair and measures lookups.
func (c *Cluster) ChurnPhase(ctx context.Context) (*PhaseReport, error) {
	halfLife := time.Duration(float64(c.p.HalfLife) / c.p.TimeScale)
	dur := time.Duration(float64(c.p.ChurnDuration) / c.p.TimeScale)
	lambda := math.Ln2 / halfLife.Seconds() // deaths per peer per second
	tick := 50 * time.Millisecond
	ph := &PhaseReport{ChurnS: dur.Seconds(), HalfLifeS: halfLife.Seconds()}
	var mu sync.Mutex
	var during []struct {
		ok   bool
		err  error
		hops int
		d    time.Duration
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Lookups during churn, at a steady rate.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			p := c.Random()
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sorted := c.Peers()
				t0 := time.Now()
				ok, hops, err := c.Lookup(cctx, p, c.RandomKey(), sorted)
				if errors.Is(err, context.Canceled) || errors.Is(err, node.ErrClosed) {
					return // the churn ended, or the asking peer itself was killed
				}
				mu.Lock()
				during = append(during, struct {
					ok   bool
					err  error
					hops int
					d    time.Duration
				}{ok, err, hops, time.Since(t0)})
				mu.Unlock()
			}()
		}
	}()
	start := time.Now()
	end := start.Add(dur)
	var acc, sumN float64
	var rounds int
	var held time.Duration
	var inflight atomic.Int64
	last := time.Now()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return nil, ctx.Err()
		case <-time.After(tick):
		}
		ps := c.Peers()
		now := time.Now()
		if inflight.Load() >= int64(c.p.JoinParallel) {
			// The machine cannot keep up with the replacement joins: hold the churn
			// clock (the effective half-life is reported).
			held += now.Sub(last)
			last = now
			continue
		}
		acc += lambda * now.Sub(last).Seconds() * float64(len(ps)) // deaths due since the last round
		last = now
		sumN += float64(len(ps))
		rounds++
		kills := int(acc)
		acc -= float64(kills)
		c.mu.Lock()
		c.rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		c.mu.Unlock()
		for _, p := range ps[:min(kills, len(ps)-1)] {
			ph.Killed++
			wg.Add(1)
			inflight.Add(1)
			go func() {
				defer wg.Done()
				defer inflight.Add(-1)
				c.Kill(p)
				// A replacement peer joins through a random live peer (another one if
				// that one dies too before the join completes).
				for try := 0; try < 5 && cctx.Err() == nil; try++ {
					b := c.Random()
					if b == nil {
						return
					}
					jctx, jcancel := context.WithTimeout(cctx, c.p.SettleTimeout)
					_, err := c.AddPeer(jctx, b.Addr)
					jcancel()
					if err == nil {
						mu.Lock()
						ph.Joined++
						mu.Unlock()
						return
					}
				}
			}()
		}
	}
	cancel()
	wg.Wait()
	if ph.Killed > 0 && rounds > 0 {
		// Effective half-life in real seconds: ln2 * mean population * churn time / deaths.
		ph.HalfLifeEffS = math.Ln2 * sumN / float64(rounds) * (time.Since(start) - held).Seconds() / float64(ph.Killed)
	}
	ph.HeldS = held.Seconds()
	mu.Lock()
	st := summarize(func(yield func(bool, error, int, time.Duration)) {
		for _, r := range during {
			yield(r.ok, r.err, r.hops, r.d)
		}
	})
	mu.Unlock()
	ph.During = &st
	d, err := c.WaitRing(ctx, c.p.SettleTimeout)
	if err != nil {
		return nil, fmt.Errorf("sim: ring after churn: %w", err)
	}
	ph.RepairS = d.Seconds()
	ui := c.ChordSettings().UpdateInterval
	ph.RepairIntervals = d.Seconds() / ui.Seconds()
	ph.After = c.Lookups(ctx, c.p.Lookups)
	ph.WithinOneInterval = d <= ui && ph.After.SuccessRate == 1
	return ph, nil
}

func (c *Cluster) dropTotals() map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range c.Peers() {
		for k, v := range p.Node.Stats().DropReasons {
			out[k] += v
		}
	}
	return out
}
