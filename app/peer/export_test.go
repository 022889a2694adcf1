package peer

import (
	"context"
	"time"

	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Hooks for the external tests: what a ConfigUpdate of type kind does on this peer, and
// a store of any Kind from it.

func ApplyKinds(p *Peer, blocks [][]byte) error { return p.applyKinds(blocks) }

func KnowsKind(p *Peer, id wire.KindID) bool { _, ok := p.reg.Kind(id); return ok }

func Store(ctx context.Context, p *Peer, rid wire.ResourceID, kind wire.KindID, v wire.StoredDataValue) error {
	sd, err := storage.NewValue(rid, kind, v, time.Now(), time.Hour, &storage.Credentials{Key: p.id.Key, Chain: p.id.Chain})
	if err != nil {
		return err
	}
	_, err = p.storage.Store(ctx, rid, kind, sd)
	return err
}
