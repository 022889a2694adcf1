package storage

import (
	"crypto/x509"
	"slices"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Stats describe what an Engine holds.
type Stats struct {
	Resources    int
	Records      int // including nonexistent (deleted, not yet expired) values
	Bytes        int // as counted for quotas
	Certificates int // retained signer certificates
	Users        int // distinct signer user names
}

// Stats returns the engine's counts.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Resources: len(e.res), Records: e.total.records, Bytes: e.total.bytes, Certificates: len(e.certs), Users: len(e.users)}
}

// UserUsage returns the records and bytes stored for one signer user name.
func (e *Engine) UserUsage(user string) (records, bytes int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.users[user]; u != nil {
		return u.records, u.bytes
	}
	return 0, 0
}

// Sweep removes values whose lifetime has ended (RFC 6940 §7.4.1.3) or whose
// signing certificate has expired (§7.1), and returns how many it removed.
// Removal by expiry changes no generation counter and no replication
// version: every copy expires by itself.
func (e *Engine) Sweep() int {
	nowMS := e.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	e.pruneTombsLocked(nowMS, false)
	for key, res := range e.res {
		for i := 0; i < len(res.kinds); i++ {
			kd := res.kinds[i]
			keep := kd.recs[:0:0]
			for j := range kd.recs {
				r := &kd.recs[j]
				if e.live(r, nowMS) {
					keep = append(keep, *r)
					continue
				}
				n++
				e.buryLocked(key, kd.id, r, nowMS)
				e.release(r)
			}
			if len(keep) == len(kd.recs) {
				continue
			}
			if len(keep) == 0 {
				res.kinds = slices.Delete(res.kinds, i, i+1)
				i--
				continue
			}
			kd.recs = keep
		}
		if len(res.kinds) == 0 {
			delete(e.res, key)
		}
	}
	return n
}

// release drops a record's quota and certificate reference.
func (e *Engine) release(r *record) {
	user := r.cert.user
	if u := e.users[user]; u != nil {
		u.records--
		u.bytes -= r.size()
		if u.records <= 0 {
			delete(e.users, user)
		}
	}
	e.total.records--
	e.total.bytes -= r.size()
	e.unref(r.cert)
}

// Drop removes everything stored at a Resource-ID (a peer that has left
// the replica set, RFC 6940 §10.7.3).
func (e *Engine) Drop(id wire.ResourceID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(id)]
	if res == nil {
		return
	}
	for _, kd := range res.kinds {
		for j := range kd.recs {
			e.release(&kd.recs[j])
		}
	}
	delete(e.res, string(id))
}

// ResourceInfo names one stored resource.
type ResourceInfo struct {
	ID      wire.ResourceID
	Version uint64 // changes whenever the resource's data changes
}

// Resources lists what is stored, in Resource-ID order.
func (e *Engine) Resources() []ResourceInfo {
	e.mu.Lock()
	out := make([]ResourceInfo, 0, len(e.res))
	for _, r := range e.res {
		out = append(out, ResourceInfo{ID: r.id, Version: r.version})
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b ResourceInfo) int { return compareIDs(a.ID, b.ID) })
	return out
}

func compareIDs(a, b wire.ResourceID) int {
	pa, pb := a.NodeID(), b.NodeID()
	return pa.Compare(pb)
}

// Holds reports whether this peer holds anything at the resource.
func (e *Engine) Holds(id wire.ResourceID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.res[string(id)] != nil
}

// Pushed reports whether node is known to hold the current version of the
// resource (it sent it to us, or we sent it and it accepted).
func (e *Engine) Pushed(id wire.ResourceID, node wire.NodeID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(id)]
	return res == nil || res.pushed(node)
}

// ForgetPushed forgets which peers hold the resource, except keep: a peer
// that left the replica set may drop its copy, and must get it again if it
// comes back.
func (e *Engine) ForgetPushed(id wire.ResourceID, keep []wire.NodeID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if res := e.res[string(id)]; res != nil {
		res.marks = slices.DeleteFunc(res.marks, func(m syncMark) bool { return !slices.Contains(keep, m.node) })
	}
}

// MarkPushed records that node accepted version of the resource.
func (e *Engine) MarkPushed(id wire.ResourceID, node wire.NodeID, version uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if res := e.res[string(id)]; res != nil {
		res.mark(node, version)
	}
}

// Snapshot returns a replica StoreReq carrying everything stored at id, with
// lifetimes reduced by the time already spent here (RFC 6940 §7.4.1.1),
// the certificates that signed it, and the version it reflects. ok is
// false when nothing live is stored there.
func (e *Engine) Snapshot(id wire.ResourceID, replicaNumber uint8) (req *wire.StoreReq, certs []*x509.Certificate, version uint64, ok bool) {
	req, ces, version, ok := e.snapshot(id, replicaNumber)
	if !ok {
		return nil, nil, 0, false
	}
	return req, parseEntries(ces), version, true
}

func (e *Engine) snapshot(id wire.ResourceID, replicaNumber uint8) (req *wire.StoreReq, certs []*certEntry, version uint64, ok bool) {
	nowMS := e.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(id)]
	if res == nil {
		return nil, nil, 0, false
	}
	req = &wire.StoreReq{Resource: append(wire.ResourceID(nil), id...), ReplicaNumber: replicaNumber}
	seen := map[*certEntry]bool{}
	for _, kd := range res.kinds {
		k, known := e.reg.Kind(kd.id)
		if !known {
			continue
		}
		skd := wire.StoreKindData{Kind: kd.id, GenerationCounter: max(kd.gen, 1)}
		for i := range kd.recs {
			r := &kd.recs[i]
			if !e.live(r, nowMS) {
				continue
			}
			skd.Values = append(skd.Values, r.stored(k.Model, nowMS))
			if !seen[r.cert] {
				seen[r.cert] = true
				certs = append(certs, r.cert)
			}
		}
		if len(skd.Values) > 0 {
			req.KindData = append(req.KindData, skd)
		}
	}
	if len(req.KindData) == 0 {
		return nil, nil, 0, false
	}
	return req, certs, res.version, true
}

// KindCounts returns how many existing values of each kind are stored (RFC 7851 §5.3
// INSTANCES_STORED).
func (e *Engine) KindCounts() map[wire.KindID]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[wire.KindID]int{}
	for _, r := range e.res {
		for _, k := range r.kinds {
			for _, rec := range k.recs {
				if rec.exists {
					out[k.id]++
				}
			}
		}
	}
	return out
}
