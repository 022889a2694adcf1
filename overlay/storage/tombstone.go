package storage

import (
	"encoding/binary"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Tombstones of expired values. RFC 6940 §7.1 signs a value's storage_time but not its
// lifetime, and §7.4.1.1 measures lifetime from the Store: a value that expired could be
// stored again with a fresh lifetime by anyone holding a copy (a replica store, or the
// original StoreReq replayed once it has left the transaction cache) and live again. So an
// expired value's slot remembers its storage_time for tombstoneHold, and only a newer value
// (storage_time after it) fills the slot again.
const (
	tombstoneHold = 24 * time.Hour
	maxTombstones = 1 << 16 // beyond it the oldest half is forgotten
)

type tombstone struct {
	storageTime uint64
	until       int64 // Unix milliseconds
}

func tombKey(rid string, kind wire.KindID, key string, index uint32) string {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(kind))
	binary.BigEndian.PutUint32(b[4:], index)
	return rid + "\x00" + string(b[:]) + key
}

// buryLocked records that r, of kind at resource rid, expired.
func (e *Engine) buryLocked(rid string, kind wire.KindID, r *record, nowMS int64) {
	if e.tombs == nil {
		e.tombs = map[string]tombstone{}
	}
	if len(e.tombs) >= maxTombstones {
		e.pruneTombsLocked(nowMS, true)
	}
	k := tombKey(rid, kind, r.key, r.index)
	if t, ok := e.tombs[k]; ok && t.storageTime > r.storageTime {
		return
	}
	e.tombs[k] = tombstone{storageTime: r.storageTime, until: nowMS + tombstoneHold.Milliseconds()}
}

// buriedLocked reports whether a value with storage time st for this slot expired here
// already (or an even newer one did).
func (e *Engine) buriedLocked(rid string, kind wire.KindID, key string, index uint32, st uint64, nowMS int64) bool {
	t, ok := e.tombs[tombKey(rid, kind, key, index)]
	return ok && nowMS < t.until && st <= t.storageTime
}

// pruneTombsLocked forgets tombstones past their hold; with half, also the half that
// ends soonest.
func (e *Engine) pruneTombsLocked(nowMS int64, half bool) {
	var cut int64
	if half {
		var sum int64
		for _, t := range e.tombs {
			sum += (t.until - nowMS) / int64(len(e.tombs))
		}
		cut = nowMS + sum // about the median for a steady stream
	}
	for k, t := range e.tombs {
		if t.until <= nowMS || half && t.until <= cut {
			delete(e.tombs, k)
		}
	}
}
