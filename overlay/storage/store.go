package storage

import (
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Store applies a StoreReq (RFC 6940 §7.4.1). It returns the StoreAns
// (replicas empty: the caller knows them) or a *Error: Error_Unknown_Kind,
// Error_Forbidden (bad signature, untrusted certificate, access control),
// Error_Generation_Counter_Too_Low, Error_Data_Too_Old,
// Error_Data_Too_Large (Kind limits, quotas) or Error_Invalid_Message.
// A failed Store changes nothing.
//
// A replica store (replica_number > 0) takes the sender's generation
// counter and merges: values older than the stored ones are skipped rather
// than refused, so that copies converge after churn (RFC 6940 §7.4.1.1,
// partition merging rule).
//
// It runs in three steps: checks that need no state, signature and policy
// verification without the lock (the expensive part), and the merge and
// commit under the lock.
func (e *Engine) Store(req *wire.StoreReq, o Origin) (*wire.StoreAns, error) {
	kds, err := e.checkStore(req)
	if err != nil {
		return nil, err
	}
	now := e.opts.Now()
	certs := e.requestCerts(o.Certs)
	preps, err := e.verifyStore(req, kds, o, certs, now)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &storeTxn{e: e, req: req, kds: kds, preps: preps, certs: certs, now: now,
		nowMS: now.UnixMilli(), replica: req.ReplicaNumber != 0, key: string(req.Resource),
		delta: map[string]usage{}}
	if t.res = e.res[t.key]; t.res == nil {
		t.res = &resource{id: append(wire.ResourceID(nil), req.Resource...)}
	}
	if err := t.merge(); err != nil {
		return nil, err
	}
	return t.commit(o), nil
}

// checkStore makes the checks of RFC 6940 §7.4.1.1 that need no state: each kind once and
// known, replica generation counters, each value's data model and size. It returns the
// kinds of req.KindData.
func (e *Engine) checkStore(req *wire.StoreReq) ([]*kinds.Kind, error) {
	replica := req.ReplicaNumber != 0
	var unknown []wire.KindID
	seen := map[wire.KindID]bool{}
	kds := make([]*kinds.Kind, len(req.KindData))
	for i := range req.KindData {
		kd := &req.KindData[i]
		if seen[kd.Kind] {
			return nil, errorf(wire.ErrInvalidMessage, "kind %d appears twice in one StoreReq", kd.Kind)
		}
		seen[kd.Kind] = true
		k, ok := e.reg.Kind(kd.Kind)
		if !ok {
			unknown = append(unknown, kd.Kind)
			continue
		}
		kds[i] = k
		if replica && kd.GenerationCounter == 0 {
			return nil, errorf(wire.ErrInvalidMessage, "replica store of kind %d with generation counter 0", kd.Kind)
		}
	}
	if len(unknown) > 0 {
		return nil, unknownKinds(unknown)
	}
	for i := range req.KindData {
		k := kds[i]
		for j := range req.KindData[i].Values {
			v := &req.KindData[i].Values[j].Value
			if v.Model != k.Model {
				return nil, errorf(wire.ErrInvalidMessage, "kind %s: value of data model %v", k, v.Model)
			}
			if k.MaxSize > 0 && len(v.Data().Value) > k.MaxSize {
				return nil, errorf(wire.ErrDataTooLarge, "kind %s: value of %d bytes exceeds max-size %d", k, len(v.Data().Value), k.MaxSize)
			}
		}
	}
	return kds, nil
}

// verifyStore verifies each value's signature and its Kind's access control policy (RFC
// 6940 §7.1, §7.3), and the request signer's right to store it (a non-replica store);
// values already stored byte for byte are left for merge to verify if they changed since.
func (e *Engine) verifyStore(req *wire.StoreReq, kds []*kinds.Kind, o Origin, certs []*certEntry, now time.Time) ([][]prepared, error) {
	var msgSigner *kinds.Signer
	if req.ReplicaNumber == 0 && o.Signer != nil {
		msgSigner = e.signerFor(o.Signer)
	}
	skip := e.identicalValues(req)
	preps := make([][]prepared, len(req.KindData))
	for i := range req.KindData {
		kd, k := &req.KindData[i], kds[i]
		preps[i] = make([]prepared, len(kd.Values))
		for j := range kd.Values {
			sd := &kd.Values[j]
			p := &preps[i][j]
			p.sd = sd
			if skip[[2]int{i, j}] {
				continue
			}
			if err := e.verify(p, req.Resource, k, certs, now); err != nil {
				return nil, err
			}
			if msgSigner != nil {
				if err := k.Authorize(req.Resource, &sd.Value, msgSigner); err != nil {
					return nil, &Error{Code: wire.ErrForbidden, Msg: "StoreReq signer: " + err.Error(), Err: err}
				}
			}
		}
	}
	return preps, nil
}

// storeTxn is one StoreReq being merged into its resource under e.mu: nothing changes in
// the Engine until commit.
type storeTxn struct {
	e       *Engine
	req     *wire.StoreReq
	kds     []*kinds.Kind
	preps   [][]prepared
	certs   []*certEntry
	now     time.Time
	nowMS   int64
	replica bool
	key     string
	res     *resource

	changes  []kindChange // one per req.KindData
	genErr   bool         // a generation counter did not match (§7.4.1.1)
	mismatch bool         // a replica store that does not leave the same values as the sender's
	delta    map[string]usage
	total    usage
}

// kindChange is the new state of one kind of the resource.
type kindChange struct {
	kd      *kindData
	old     *kindData
	changed bool
}

// account counts r in (sign 1) or out (sign -1) of the quotas.
func (t *storeTxn) account(r *record, sign int) {
	u := t.delta[r.cert.user]
	u.records += sign
	u.bytes += sign * r.size()
	t.delta[r.cert.user] = u
	t.total.records += sign
	t.total.bytes += sign * r.size()
}

// merge builds the new state of every kind and checks it against the generation
// counters, the Kinds' limits and the quotas.
func (t *storeTxn) merge() error {
	t.changes = make([]kindChange, len(t.req.KindData))
	for i := range t.req.KindData {
		if err := t.mergeKind(i); err != nil {
			return err
		}
	}
	if t.genErr {
		ans := &wire.StoreAns{}
		for i := range t.req.KindData {
			ans.KindResponses = append(ans.KindResponses, wire.StoreKindResponse{Kind: t.req.KindData[i].Kind, GenerationCounter: t.changes[i].kd.gen})
		}
		info, _ := ans.MarshalBinary()
		return &Error{Code: wire.ErrGenerationCounterTooLow, Msg: "generation counter does not match the stored one", Info: info}
	}
	return t.e.checkQuotasLocked(t.delta, t.total)
}

// mergeKind merges the values of req.KindData[i] into a copy of the stored kind without
// its expired records.
func (t *storeTxn) mergeKind(i int) error {
	in, k := &t.req.KindData[i], t.kds[i]
	cur := t.res.kind(in.Kind)
	nk := &kindData{id: in.Kind}
	if cur != nil {
		nk.gen = cur.gen
		nk.recs = make([]record, 0, len(cur.recs)+len(in.Values))
		for _, r := range cur.recs {
			if r.expires > t.nowMS {
				nk.recs = append(nk.recs, r)
			} else {
				t.account(&r, -1)
				t.e.buryLocked(t.key, in.Kind, &r, t.nowMS)
			}
		}
	}
	t.changes[i] = kindChange{kd: nk, old: cur}
	if !t.replica && in.GenerationCounter != 0 && in.GenerationCounter != nk.gen {
		t.genErr = true
		return nil
	}
	for j := range in.Values {
		changed, err := t.mergeValue(k, nk, &t.preps[i][j])
		if err != nil {
			return err
		}
		t.changes[i].changed = t.changes[i].changed || changed
	}
	// RFC 6940 §11.1 max-count.
	if t.changes[i].changed && k.MaxCount > 0 {
		n := len(nk.recs)
		if k.Model == wire.DataModelArray && n > 0 {
			n = int(nk.recs[n-1].index) + 1
		}
		if n > k.MaxCount {
			return errorf(wire.ErrDataTooLarge, "kind %s: %d values exceed max-count %d", k, n, k.MaxCount)
		}
	}
	if t.replica && len(nk.recs) != len(in.Values) {
		t.mismatch = true
	}
	return nil
}

// mergeValue puts one value into nk; it reports whether nk changed.
func (t *storeTxn) mergeValue(k *kinds.Kind, nk *kindData, p *prepared) (bool, error) {
	sd := p.sd
	skey, idx := slotOf(&sd.Value)
	if k.Model == wire.DataModelArray && idx == appendIndex {
		if appended(nk.recs, sd) {
			return false, nil // replayed append: already stored
		}
		// RFC 6940 §7.4.1.1: append at the end of the array.
		idx = 0
		if n := len(nk.recs); n > 0 {
			idx = nk.recs[n-1].index + 1
		}
	}
	if t.e.buriedLocked(t.key, nk.id, skey, idx, sd.StorageTime, t.nowMS) {
		// Expired here: not revived by a fresh lifetime (tombstone.go).
		if t.replica {
			t.mismatch = true
			return false, nil
		}
		return false, errorf(wire.ErrDataTooOld, "kind %s: a value with storage_time %d expired here", k, sd.StorageTime)
	}
	pos, found := find(k.Model, nk.recs, skey, idx)
	if found {
		old := &nk.recs[pos]
		if identical(old, sd) {
			return false, nil
		}
		// RFC 6940 §7: storage_time must be newer than the value replaced.
		if sd.StorageTime <= old.storageTime {
			if t.replica {
				t.mismatch = true
				return false, nil
			}
			return false, errorf(wire.ErrDataTooOld, "kind %s: storage_time %d is not after the stored %d", k, sd.StorageTime, old.storageTime)
		}
	}
	if p.cert == nil { // skipped as identical earlier, changed since
		if err := t.e.verifyLocked(p, t.req.Resource, k, t.certs, t.now); err != nil {
			return false, err
		}
	}
	r := record{
		key: skey, index: idx, exists: sd.Value.Data().Exists,
		storageTime: sd.StorageTime,
		expires:     t.nowMS + int64(sd.Lifetime)*1000,
		value:       append([]byte(nil), sd.Value.Data().Value...),
		sig:         compactSignature(&sd.Signature, p.cert),
		cert:        p.cert,
	}
	t.account(&r, 1)
	if found {
		t.account(&nk.recs[pos], -1)
		nk.recs[pos] = r
	} else {
		nk.recs = slices.Insert(nk.recs, pos, r)
	}
	return true, nil
}

// checkQuotasLocked refuses a change that takes a user or the peer over its quota (per
// user, per peer); a change that only frees space is always allowed.
func (e *Engine) checkQuotasLocked(delta map[string]usage, total usage) error {
	for u, d := range delta {
		if d.records <= 0 && d.bytes <= 0 {
			continue
		}
		cur := e.users[u]
		if cur == nil {
			cur = &usage{}
		}
		if e.opts.MaxRecordsPerUser > 0 && cur.records+d.records > e.opts.MaxRecordsPerUser {
			return errorf(wire.ErrDataTooLarge, "user %s has %d records stored here, the limit is %d", u, cur.records, e.opts.MaxRecordsPerUser)
		}
		if e.opts.MaxBytesPerUser > 0 && cur.bytes+d.bytes > e.opts.MaxBytesPerUser {
			return errorf(wire.ErrDataTooLarge, "user %s has %d bytes stored here, the limit is %d", u, cur.bytes, e.opts.MaxBytesPerUser)
		}
	}
	if total.records > 0 && e.opts.MaxRecords > 0 && e.total.records+total.records > e.opts.MaxRecords {
		return errorf(wire.ErrDataTooLarge, "this peer stores %d records, the limit is %d", e.total.records, e.opts.MaxRecords)
	}
	if total.bytes > 0 && e.opts.MaxBytes > 0 && e.total.bytes+total.bytes > e.opts.MaxBytes {
		return errorf(wire.ErrDataTooLarge, "this peer stores %d bytes, the limit is %d", e.total.bytes, e.opts.MaxBytes)
	}
	return nil
}

// commit puts the merged kinds in place, sets the generation counters, counts the quotas
// and returns the StoreAns.
func (t *storeTxn) commit(o Origin) *wire.StoreAns {
	e, res := t.e, t.res
	anyChange := false
	ans := &wire.StoreAns{}
	for i := range t.req.KindData {
		c := &t.changes[i]
		in := &t.req.KindData[i]
		expiredOnly := c.old != nil && len(c.kd.recs) != len(c.old.recs)
		if c.changed || expiredOnly {
			switch {
			case t.replica:
				// RFC 6940 §7.4.1.1: a replica store sets the generation counter to the
				// message's, without comparing.
				c.kd.gen = in.GenerationCounter
			case c.changed:
				c.kd.gen++ // RFC 6940 §7.4.1.1: increase by at least 1
			}
			e.replaceKind(res, c.old, c.kd)
			anyChange = anyChange || c.changed
		} else if t.replica && c.old != nil && in.GenerationCounter != c.old.gen {
			c.old.gen = in.GenerationCounter // §7.4.1.1, as above
		}
		gen := c.kd.gen
		if !c.changed && !expiredOnly && c.old != nil {
			gen = c.old.gen
		}
		ans.KindResponses = append(ans.KindResponses, wire.StoreKindResponse{Kind: in.Kind, GenerationCounter: gen})
	}
	e.addUsageLocked(t.delta, t.total)
	if anyChange {
		res.version++
	}
	if len(res.kinds) == 0 {
		delete(e.res, t.key)
	} else {
		e.res[t.key] = res
		if t.replica && !t.mismatch && len(res.kinds) == len(t.req.KindData) && !o.From.IsZero() {
			res.mark(o.From, res.version)
		}
	}
	return ans
}

// addUsageLocked counts a committed change in the quotas.
func (e *Engine) addUsageLocked(delta map[string]usage, total usage) {
	for u, d := range delta {
		cur := e.users[u]
		if cur == nil {
			cur = &usage{}
			e.users[u] = cur
		}
		cur.records += d.records
		cur.bytes += d.bytes
		if cur.records <= 0 {
			delete(e.users, u)
		}
	}
	e.total.records += total.records
	e.total.bytes += total.bytes
}
