package node

import (
	"context"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Bounds of certificate fetches for requests that arrive without their signer's
// certificate: how many run at once (more are refused at once, so that a flood of such
// requests cannot make this node flood the overlay with Fetches) and how long one may take.
const (
	maxCertFetches   = 8
	certFetchTimeout = 10 * time.Second
)

// fetchCertificateThen fetches origin's certificate from the Certificate Store usage (RFC
// 6940 §8, §11.3.1) in a node goroutine and then runs again; it returns false when the
// node's Security cannot fetch, or too many fetches run already. Concurrent requests from
// one origin share one fetch.
func (n *Node) fetchCertificateThen(origin wire.NodeID, again func()) bool {
	f, ok := n.s.Security.(CertificateFetcher)
	if !ok || origin.IsZero() || origin == n.id {
		return false
	}
	n.mu.Lock()
	if n.certFetch == nil {
		n.certFetch = map[wire.NodeID][]func(){}
	}
	if waiting, busy := n.certFetch[origin]; busy {
		n.certFetch[origin] = append(waiting, again)
		n.mu.Unlock()
		return true
	}
	if len(n.certFetch) >= maxCertFetches || n.closed {
		n.mu.Unlock()
		return false
	}
	n.certFetch[origin] = []func(){again}
	n.mu.Unlock()
	started := n.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, certFetchTimeout)
		err := f.FetchCertificate(ctx, origin)
		cancel()
		if err != nil {
			n.log.Debug("fetching a signer certificate", "signer", origin, "err", err)
		}
		n.mu.Lock()
		waiting := n.certFetch[origin]
		delete(n.certFetch, origin)
		n.mu.Unlock()
		if n.ctx.Err() != nil {
			return
		}
		for _, w := range waiting {
			w()
		}
	})
	if !started {
		n.mu.Lock()
		delete(n.certFetch, origin)
		n.mu.Unlock()
	}
	return started
}
