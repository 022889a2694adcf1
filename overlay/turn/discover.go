package turn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"

	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Fetcher reads the overlay (storage.Service does).
type Fetcher interface {
	Fetch(ctx context.Context, rid wire.ResourceID, specs ...wire.StoredDataSpecifier) (*storage.FetchResult, error)
	Find(ctx context.Context, rid wire.ResourceID, kinds ...wire.KindID) (*wire.FindAns, error)
}

// Found is a TURN server found in the overlay.
type Found struct {
	Addr netip.AddrPort
}

// DiscoverConfig says where to look.
type DiscoverConfig struct {
	Overlay Fetcher
	// Known are Node-IDs of peers this node knows (its links, fingers): their records sit at
	// H(Node-ID || d), d = 1..Density.
	Known   []wire.NodeID
	Density int
	// RandomFinds is how many Finds at random Resource-IDs to make (RFC 6940 §9): 2.
	RandomFinds int
	// Max stops the search once this many servers are found: 2.
	Max int
}

// Discover finds TURN servers through the overlay (RFC 6940 §9): first at the records of the
// peers this node knows, then by Finds at random Resource-IDs, each followed by a Fetch at
// the closest Resource-ID the answering peer holds.
func Discover(ctx context.Context, cfg DiscoverConfig) ([]Found, error) {
	if cfg.RandomFinds <= 0 {
		cfg.RandomFinds = 2
	}
	if cfg.Max <= 0 {
		cfg.Max = 2
	}
	var out []Found
	seen := map[netip.AddrPort]bool{}
	var errs []error
	fetch := func(rid wire.ResourceID) {
		res, err := cfg.Overlay.Fetch(ctx, rid, wire.StoredDataSpecifier{Kind: wire.KindTURNService, Model: wire.DataModelSingle})
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, kr := range res.Kinds {
			for _, sd := range kr.Values {
				if !sd.Value.Single.Exists {
					continue
				}
				var r Record
				if err := r.UnmarshalBinary(sd.Value.Single.Value); err != nil {
					errs = append(errs, err)
					continue
				}
				if seen[r.Addr] {
					continue
				}
				seen[r.Addr] = true
				out = append(out, Found{Addr: r.Addr})
			}
		}
	}
	for _, n := range cfg.Known {
		for _, rid := range Resources(n, cfg.Density) {
			if len(out) >= cfg.Max || ctx.Err() != nil {
				return out, nil
			}
			fetch(rid)
		}
	}
	for i := 0; i < cfg.RandomFinds && len(out) < cfg.Max && ctx.Err() == nil; i++ {
		var n wire.NodeID
		_, _ = rand.Read(n[:])
		rid := wire.ResourceID(n[:])
		ans, err := cfg.Overlay.Find(ctx, rid, wire.KindTURNService)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range ans.Results {
			if r.Kind == wire.KindTURNService && len(r.Closest) > 0 {
				fetch(r.Closest)
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("turn: no TURN server found: %w", errors.Join(errs...))
	}
	return out, nil
}
