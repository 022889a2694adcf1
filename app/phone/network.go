package phone

import (
	"context"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/netwatch"
)

// reregisterWait bounds how long after a network change or a stall the phone waits to be
// back among other peers before it stores its registration again (the refresh at half
// its lifetime and the storing peer's audit cover longer outages).
const reregisterWait = 30 * time.Second

// followNetwork keeps the running peer in step with the host's networks (issue 16): after
// every change reported by nw (an interface or address that came or went, or a stall such
// as a suspend) it refreshes the peer's links (peer.Refresh), asks the LAN watcher, if
// any, to look for peers at once (poke), and stores the registration again once the peer
// is back among others. It returns a function that waits until it has ended (after ctx).
func (p *Phone) followNetwork(ctx context.Context, pr *peer.Peer, nw *netwatch.Watcher, poke func()) (wait func()) {
	changes, unsubscribe := nw.Subscribe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: runPeer, through wait; ends with ctx
		defer wg.Done()
		defer unsubscribe()
		// After a change the registration is stored again once the peer is back among
		// others (a lone peer stores it at itself, where nobody else looks): the routing
		// table is polled until then, for at most reregisterWait.
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		var since time.Time // of the change whose re-registration is pending
		for {
			select {
			case <-ctx.Done():
				return
			case ch, ok := <-changes:
				if !ok {
					return
				}
				p.log.Info("network changed: refreshing the overlay links", "added", ch.Added, "removed", ch.Removed,
					"interfaces", ch.Interfaces, "stall", ch.Stall.Round(time.Millisecond))
				p.addressesRemoved(ch.Removed) // a call reconnects at once, beside the links
				pr.Refresh(ctx, ch)
				if poke != nil {
					poke()
				}
				since = time.Now()
				tick.Reset(200 * time.Millisecond)
			case <-tick.C:
			}
			if since.IsZero() || pr.Alone() && time.Since(since) < reregisterWait {
				continue
			}
			tick.Reset(time.Hour)
			if pr.Alone() {
				since = time.Time{}
				continue
			}
			if err := pr.Reregister(ctx); err != nil {
				p.log.Warn("storing the registration again after a network change", "err", err)
			} else {
				p.log.Info("registration stored again after a network change", "after", time.Since(since).Round(time.Millisecond))
			}
			since = time.Time{}
		}
	}()
	return wg.Wait
}
