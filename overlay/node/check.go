package node

import (
	"context"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// CheckLinks pings every directly connected node (RFC 6940 §6.5.3) and closes the links
// to those that do not answer within timeout; it returns their Node-IDs. A peer calls it
// when the host's networks changed or the process resumed from a stall: a link whose other
// end gave up on it (its keepalive timeout ran while this process was stopped, or it
// sends to an address this host no longer has) would otherwise be trusted here until its
// own keepalive timeout, and messages routed over it would be lost meanwhile. Links that
// come up during the check are not touched.
func (n *Node) CheckLinks(ctx context.Context, timeout time.Duration) []wire.NodeID {
	n.mu.Lock()
	before := make(map[wire.NodeID][]Link, len(n.links))
	for id, ls := range n.links {
		before[id] = append([]Link(nil), ls...)
	}
	n.mu.Unlock()
	var (
		mu   sync.Mutex
		dead []wire.NodeID
		wg   sync.WaitGroup
	)
	for id, ls := range before {
		wg.Add(1)
		go func() { // owner: CheckLinks, which waits for it
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if _, err := n.Ping(pctx, []wire.Destination{wire.NodeDestination(id)}); err == nil || ctx.Err() != nil {
				return
			}
			n.log.Info("link did not answer after a network change or stall: closing it", "peer", id)
			for _, l := range ls {
				_ = l.Close()
			}
			mu.Lock()
			dead = append(dead, id)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return dead
}
