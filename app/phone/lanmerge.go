package phone

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/discovery"
	"github.com/chordphone/chordphone/overlay/netwatch"
	"github.com/chordphone/chordphone/overlay/wire"
)

// DefaultLANMergeInterval is how often a phone on the local network's overlay looks at
// the peers it sees by mDNS for one of another ring (with ±10 % jitter). The environment
// variable LANMergeIntervalEnv (a Go duration, e.g. "2s") overrides it; tests use it.
const DefaultLANMergeInterval = 30 * time.Second

// LANMergeIntervalEnv names the environment variable that overrides
// DefaultLANMergeInterval.
const LANMergeIntervalEnv = "CHORDPHONE_LAN_MERGE_INTERVAL"

// lanChecksPerRound bounds the Pings one round sends to peers this phone has no link to.
const lanChecksPerRound = 3

func lanMergeInterval() time.Duration {
	if v := os.Getenv(LANMergeIntervalEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 100*time.Millisecond {
			return d
		}
	}
	return DefaultLANMergeInterval
}

// watchLAN keeps browsing the LAN by mDNS while the phone is on the local network's overlay
// and merges this phone's ring with any other ring of the same overlay it sees: two groups
// of phones that started apart (two networks later connected, a switch that came back)
// become one overlay (issue 9). The browse queries at most every interval and also hears
// the answers to other phones' queries, so a phone learns of the other group as soon as
// any phone asks. Each round, up to lanChecksPerRound peers seen on the LAN that this
// phone has no link to get a Ping routed to their Node-ID through the overlay; one that
// does not answer it belongs to another ring, and MergeWith (the partition check of
// RFC 6940 §10.7.4.4 through its address) joins the rings. The browse follows the host's
// interfaces as they come and go (nw), so a phone started before its network finds the
// LAN's ring once the network is up. It returns a function that waits until the watcher
// has ended (after ctx) and one that makes it look at once (after a network change).
func (p *Phone) watchLAN(ctx context.Context, pr *peer.Peer, overlay string, nw *netwatch.Watcher) (wait, poke func()) {
	interval := lanMergeInterval()
	seen, err := discovery.BrowseWith(ctx, overlay, discovery.BrowseOptions{MaxInterval: interval, Watch: nw})
	if err != nil {
		p.log.Warn("no mDNS browsing; rings of the local overlay formed apart will not merge", "err", err)
		return func() {}, func() {}
	}
	now := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: runPeer, through wait; ends with ctx (the browse channel closes)
		defer wg.Done()
		p.mergeLoop(ctx, pr, seen, now, interval)
	}()
	return wg.Wait, func() {
		select {
		case now <- struct{}{}:
		default:
		}
	}
}

func (p *Phone) mergeLoop(ctx context.Context, pr *peer.Peer, seen <-chan discovery.Peer, now <-chan struct{}, interval time.Duration) {
	known := map[wire.NodeID]discovery.Peer{}
	round := time.NewTimer(jitter(interval))
	defer round.Stop()
	for {
		select {
		case dp, ok := <-seen:
			if !ok {
				return
			}
			if dp.Gone {
				delete(known, dp.NodeID)
				continue
			}
			if _, old := known[dp.NodeID]; !old && dp.NodeID != pr.NodeID() {
				// A peer not seen before (the networks were joined, or it started): look
				// soon, giving one that is starting the time to join.
				round.Reset(min(interval, 2*time.Second))
			}
			known[dp.NodeID] = dp
		case <-now:
			round.Reset(0)
		case <-round.C:
			p.mergeRound(ctx, pr, known)
			round.Reset(jitter(interval))
		}
	}
}

// mergeRound checks a few LAN peers this phone has no link to and merges with the first
// one found in another ring.
func (p *Phone) mergeRound(ctx context.Context, pr *peer.Peer, known map[wire.NodeID]discovery.Peer) {
	var cands []discovery.Peer
	for id, dp := range known {
		if id != pr.NodeID() && len(dp.Addrs) > 0 && !pr.Linked(id) {
			cands = append(cands, dp)
		}
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	cands = cands[:min(len(cands), lanChecksPerRound)]
	// The Pings go out together: one to a peer that cannot be reached (the networks were
	// cut apart again) only times out.
	outside := make([]bool, len(cands))
	var wg sync.WaitGroup
	for i, dp := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			outside[i] = !pr.InOverlay(cctx, dp.NodeID)
		}()
	}
	wg.Wait()
	for i, dp := range cands {
		if !outside[i] || ctx.Err() != nil {
			continue
		}
		addr := dp.Addrs[rand.IntN(len(dp.Addrs))].String()
		if pr.MergeWith(ctx, addr) {
			p.log.Info("merging with another ring of the local network's overlay", "peer", dp.NodeID, "addr", addr)
			return // the Updates that follow carry the rest; the next round looks again
		}
	}
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}
