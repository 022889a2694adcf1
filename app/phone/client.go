package phone

import (
	"context"
	"sync"
	"time"

	"github.com/chordphone/chordphone/app/peer"
)

// clientDetachedLimit is how long a client may be without a peer before the phone starts
// the peer loop again (a test shortens it).
var clientDetachedLimit = 30 * time.Second

// watchClient restarts the peer loop when a RELOAD client (RFC 6940 §4.2) has had no peer
// to attach to for clientDetachedLimit: the overlay layer keeps trying its bootstrap
// addresses, but those may all be gone (phones of the local network come and go); a new
// start finds the overlay's peers again (mDNS, the configuration document). A call in
// progress is not cut for this. It returns a function that waits for the watch to end
// (with ctx).
func (p *Phone) watchClient(ctx context.Context, pr *peer.Peer) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: runPeer, through wait; ends with ctx
		defer wg.Done()
		for {
			id, changed := pr.ClientPeer()
			var expired <-chan time.Time
			var t *time.Timer
			if id == "" {
				t = time.NewTimer(clientDetachedLimit)
				expired = t.C
			}
			select {
			case <-ctx.Done():
			case <-changed:
			case <-expired:
				p.mu.Lock()
				inCall := p.call != nil
				p.mu.Unlock()
				if inCall {
					continue // a call's media goes straight between the phones: keep it
				}
				p.log.Warn("no peer to attach to as a client; starting again to find the overlay's peers", "after", clientDetachedLimit)
				p.requestRestart()
				return
			}
			if t != nil {
				t.Stop()
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return wg.Wait
}
