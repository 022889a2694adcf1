// Package storage is a RELOAD storing peer (RFC 6940 §7): the local data
// store (Engine: Store, Fetch, Stat and Find over the single, array and
// dictionary data models, with generation counters, storage-time
// ordering, lifetimes, signatures and access control), the method
// handlers and replication to the next two successors (§10.4) with data
// migration when responsibility moves (Service), and the client side a
// phone needs (Register and LookupAoR for SIP-REGISTRATION, RFC 7904).
//
// The Engine works without a network. Every value it keeps was verified
// on the way in: the signature (§7.1) against a trusted certificate, and
// the Kind's access control policy (§7.3). A refused Store changes
// nothing (§7.4.1.1: all or nothing).
package storage

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Default quotas (issue 12 point 4: a flood of stores from one user, or of
// all users, cannot exhaust a peer).
const (
	DefaultMaxRecordsPerUser = 256
	DefaultMaxBytesPerUser   = 512 << 10
	DefaultMaxRecords        = 1 << 20
	DefaultMaxBytes          = 256 << 20
	// trustRecheck is how often a retained certificate is checked again by
	// the TrustFunc (its validity period is checked on every use).
	trustRecheck = time.Hour
)

// Options configure an Engine. Zero values take defaults; a negative quota
// means unlimited.
type Options struct {
	Now   func() time.Time
	Trust TrustFunc // nil: ValidityOnly

	MaxRecordsPerUser int // records signed by one user name, over all resources
	MaxBytesPerUser   int
	MaxRecords        int // records on this peer
	MaxBytes          int
}

// Origin describes where a StoreReq came from.
type Origin struct {
	// Certs are the certificates of the request's security block; the
	// values' signer identities are resolved among them and among the
	// certificates already retained.
	Certs []*x509.Certificate
	// Signer is the certificate that signed the StoreReq message. For an
	// original store (replica_number 0) it must satisfy the Kind's policy
	// too (RFC 6940 §7.3). Nil skips that check (the caller vouches).
	Signer *x509.Certificate
	// From is the Node-ID that sent the request. After a replica store that
	// leaves this peer's copy equal to the sender's, the sender is recorded
	// as up to date (see Pushed).
	From wire.NodeID
}

// record is one stored value. It is kept compact: the certificate is shared
// with every other value it signed and the signer identity's hash points
// into it when it can.
type record struct {
	key         string // dictionary key
	index       uint32 // array index
	exists      bool
	storageTime uint64
	expires     int64 // Unix milliseconds
	value       []byte
	sig         wire.Signature
	cert        *certEntry
}

func (r *record) size() int { return len(r.key) + len(r.value) + len(r.sig.Value) + recordOverhead }

// recordOverhead is what a record costs beyond its variable bytes, for
// quotas (the struct and its slice headers).
const recordOverhead = 128

type kindData struct {
	id   wire.KindID
	gen  uint64
	recs []record // single: 0..1; array: by index; dictionary: by key
}

type syncMark struct {
	node    wire.NodeID
	version uint64
}

type resource struct {
	id      wire.ResourceID
	kinds   []*kindData
	version uint64     // bumped on every change, for replication
	marks   []syncMark // peers known to hold version
}

func (r *resource) kind(id wire.KindID) *kindData {
	for _, k := range r.kinds {
		if k.id == id {
			return k
		}
	}
	return nil
}

type usage struct{ records, bytes int }

// Engine is the local data store of a peer. It is safe for concurrent use.
type Engine struct {
	reg  *kinds.Registry
	opts Options

	mu    sync.Mutex
	res   map[string]*resource
	certs map[[32]byte]*certEntry
	users map[string]*usage
	total usage
	tombs map[string]tombstone // expired values (tombstone.go)
}

// NewEngine returns an empty store for the Kinds of reg.
func NewEngine(reg *kinds.Registry, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Trust == nil {
		opts.Trust = ValidityOnly
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.MaxRecordsPerUser, DefaultMaxRecordsPerUser)
	def(&opts.MaxBytesPerUser, DefaultMaxBytesPerUser)
	def(&opts.MaxRecords, DefaultMaxRecords)
	def(&opts.MaxBytes, DefaultMaxBytes)
	return &Engine{
		reg: reg, opts: opts,
		res:   map[string]*resource{},
		certs: map[[32]byte]*certEntry{},
		users: map[string]*usage{},
	}
}

// Kinds returns the engine's Kind registry.
func (e *Engine) Kinds() *kinds.Registry { return e.reg }

func (e *Engine) nowMS() int64 { return e.opts.Now().UnixMilli() }

// prepared is one value of a StoreReq after the checks that need no state.
type prepared struct {
	sd     *wire.StoredData
	cert   *certEntry // resolved, trusted, signature verified
	signer *kinds.Signer
}

// slotOf returns where v goes in a kind's records (dictionary key or array
// index); append (0xffffffff) is resolved at apply time.
func slotOf(v *wire.StoredDataValue) (string, uint32) {
	switch v.Model {
	case wire.DataModelArray:
		return "", v.Array.Index
	case wire.DataModelDictionary:
		return string(v.Dictionary.Key), 0
	}
	return "", 0
}

// find returns the position of slot in recs and whether it is there.
func find(m wire.DataModel, recs []record, key string, index uint32) (int, bool) {
	switch m {
	case wire.DataModelArray:
		i := sort.Search(len(recs), func(i int) bool { return recs[i].index >= index })
		return i, i < len(recs) && recs[i].index == index
	case wire.DataModelDictionary:
		i := sort.Search(len(recs), func(i int) bool { return recs[i].key >= key })
		return i, i < len(recs) && recs[i].key == key
	}
	return 0, len(recs) > 0
}

func identical(r *record, sd *wire.StoredData) bool {
	return r.storageTime == sd.StorageTime && bytes.Equal(r.sig.Value, sd.Signature.Value)
}

const appendIndex = 0xffffffff

// appended returns whether an append (index 0xffffffff) of sd is already
// stored in recs: an entry with the same value, storage_time and signature.
// Array signatures cover index 0 (RFC 6940 §7.4.2.2), so a replayed append
// would verify at any index; applying it again would store a duplicate. A
// store of the same value is idempotent instead (RFC 6940 §7.4.1.1).
func appended(recs []record, sd *wire.StoredData) bool {
	d := sd.Value.Data()
	for i := range recs {
		r := &recs[i]
		if identical(r, sd) && r.exists == d.Exists && bytes.Equal(r.value, d.Value) {
			return true
		}
	}
	return false
}

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
func (e *Engine) Store(req *wire.StoreReq, o Origin) (*wire.StoreAns, error) {
	replica := req.ReplicaNumber != 0
	now := e.opts.Now()
	// RFC 6940 §7.4.1.1: checks that need no state.
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
	var msgSigner *kinds.Signer
	if !replica && o.Signer != nil {
		msgSigner = e.signerFor(o.Signer)
	}
	skip := e.identicalValues(req)
	certs := e.requestCerts(o.Certs)
	preps := make([][]prepared, len(req.KindData))
	for i := range req.KindData {
		kd, k := &req.KindData[i], kds[i]
		preps[i] = make([]prepared, len(kd.Values))
		for j := range kd.Values {
			sd := &kd.Values[j]
			p := &preps[i][j]
			p.sd = sd
			if sd.Value.Model != k.Model {
				return nil, errorf(wire.ErrInvalidMessage, "kind %s: value of data model %v", k, sd.Value.Model)
			}
			if k.MaxSize > 0 && len(sd.Value.Data().Value) > k.MaxSize {
				return nil, errorf(wire.ErrDataTooLarge, "kind %s: value of %d bytes exceeds max-size %d", k, len(sd.Value.Data().Value), k.MaxSize)
			}
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

	e.mu.Lock()
	defer e.mu.Unlock()
	nowMS := now.UnixMilli()
	key := string(req.Resource)
	res := e.res[key]
	if res == nil {
		res = &resource{id: append(wire.ResourceID(nil), req.Resource...)}
	}
	type change struct {
		kd      *kindData
		old     *kindData
		changed bool
		gen     uint64
	}
	changes := make([]change, len(req.KindData))
	var genErr bool
	mismatch := false
	delta := map[string]usage{}
	var totalDelta usage
	account := func(r *record, sign int) {
		u := delta[r.cert.user]
		u.records += sign
		u.bytes += sign * r.size()
		delta[r.cert.user] = u
		totalDelta.records += sign
		totalDelta.bytes += sign * r.size()
	}
	for i := range req.KindData {
		in, k := &req.KindData[i], kds[i]
		cur := res.kind(in.Kind)
		nk := &kindData{id: in.Kind}
		if cur != nil {
			nk.gen = cur.gen
			nk.recs = make([]record, 0, len(cur.recs)+len(in.Values))
			for _, r := range cur.recs {
				if r.expires > nowMS {
					nk.recs = append(nk.recs, r)
				} else {
					account(&r, -1)
					e.buryLocked(key, in.Kind, &r, nowMS)
				}
			}
		}
		changes[i] = change{kd: nk, old: cur}
		if !replica && in.GenerationCounter != 0 && in.GenerationCounter != nk.gen {
			genErr = true
			continue
		}
		for j := range in.Values {
			p := &preps[i][j]
			sd := p.sd
			skey, idx := slotOf(&sd.Value)
			if k.Model == wire.DataModelArray && idx == appendIndex {
				if appended(nk.recs, sd) {
					continue // replayed append: already stored
				}
				// RFC 6940 §7.4.1.1: append at the end of the array.
				idx = 0
				if n := len(nk.recs); n > 0 {
					idx = nk.recs[n-1].index + 1
				}
			}
			if e.buriedLocked(key, in.Kind, skey, idx, sd.StorageTime, nowMS) {
				// Expired here: not revived by a fresh lifetime (tombstone.go).
				if replica {
					mismatch = true
					continue
				}
				return nil, errorf(wire.ErrDataTooOld, "kind %s: a value with storage_time %d expired here", k, sd.StorageTime)
			}
			pos, found := find(k.Model, nk.recs, skey, idx)
			if found {
				old := &nk.recs[pos]
				if identical(old, sd) {
					continue
				}
				// RFC 6940 §7: storage_time must be newer than the value replaced.
				if sd.StorageTime <= old.storageTime {
					if replica {
						mismatch = true
						continue
					}
					return nil, errorf(wire.ErrDataTooOld, "kind %s: storage_time %d is not after the stored %d", k, sd.StorageTime, old.storageTime)
				}
			}
			if p.cert == nil { // skipped as identical earlier, changed since
				if err := e.verifyLocked(p, req.Resource, k, certs, now); err != nil {
					return nil, err
				}
			}
			r := record{
				key: skey, index: idx, exists: sd.Value.Data().Exists,
				storageTime: sd.StorageTime,
				expires:     nowMS + int64(sd.Lifetime)*1000,
				value:       append([]byte(nil), sd.Value.Data().Value...),
				sig:         compactSignature(&sd.Signature, p.cert),
				cert:        p.cert,
			}
			account(&r, 1)
			if found {
				account(&nk.recs[pos], -1)
				nk.recs[pos] = r
			} else {
				nk.recs = slices.Insert(nk.recs, pos, r)
			}
			changes[i].changed = true
		}
		// RFC 6940 §11.1 max-count.
		if changes[i].changed && k.MaxCount > 0 {
			n := len(nk.recs)
			if k.Model == wire.DataModelArray && n > 0 {
				n = int(nk.recs[n-1].index) + 1
			}
			if n > k.MaxCount {
				return nil, errorf(wire.ErrDataTooLarge, "kind %s: %d values exceed max-count %d", k, n, k.MaxCount)
			}
		}
		if replica && len(nk.recs) != len(in.Values) {
			mismatch = true
		}
	}
	if genErr {
		ans := &wire.StoreAns{}
		for i := range req.KindData {
			ans.KindResponses = append(ans.KindResponses, wire.StoreKindResponse{Kind: req.KindData[i].Kind, GenerationCounter: changes[i].kd.gen})
		}
		info, _ := ans.MarshalBinary()
		return nil, &Error{Code: wire.ErrGenerationCounterTooLow, Msg: "generation counter does not match the stored one", Info: info}
	}
	// Quotas (per user, per peer).
	for u, d := range delta {
		if d.records <= 0 && d.bytes <= 0 {
			continue
		}
		cur := e.users[u]
		if cur == nil {
			cur = &usage{}
		}
		if e.opts.MaxRecordsPerUser > 0 && cur.records+d.records > e.opts.MaxRecordsPerUser {
			return nil, errorf(wire.ErrDataTooLarge, "user %s has %d records stored here, the limit is %d", u, cur.records, e.opts.MaxRecordsPerUser)
		}
		if e.opts.MaxBytesPerUser > 0 && cur.bytes+d.bytes > e.opts.MaxBytesPerUser {
			return nil, errorf(wire.ErrDataTooLarge, "user %s has %d bytes stored here, the limit is %d", u, cur.bytes, e.opts.MaxBytesPerUser)
		}
	}
	if totalDelta.records > 0 && e.opts.MaxRecords > 0 && e.total.records+totalDelta.records > e.opts.MaxRecords {
		return nil, errorf(wire.ErrDataTooLarge, "this peer stores %d records, the limit is %d", e.total.records, e.opts.MaxRecords)
	}
	if totalDelta.bytes > 0 && e.opts.MaxBytes > 0 && e.total.bytes+totalDelta.bytes > e.opts.MaxBytes {
		return nil, errorf(wire.ErrDataTooLarge, "this peer stores %d bytes, the limit is %d", e.total.bytes, e.opts.MaxBytes)
	}

	// Commit.
	anyChange := false
	ans := &wire.StoreAns{}
	for i := range req.KindData {
		c := &changes[i]
		in := &req.KindData[i]
		expiredOnly := c.old != nil && len(c.kd.recs) != len(c.old.recs)
		if c.changed || expiredOnly {
			switch {
			case replica:
				// RFC 6940 §7.4.1.1: a replica store sets the generation counter to the
				// message's, without comparing.
				c.kd.gen = in.GenerationCounter
			case c.changed:
				c.kd.gen++ // RFC 6940 §7.4.1.1: increase by at least 1
			}
			e.replaceKind(res, c.old, c.kd)
			anyChange = anyChange || c.changed
		} else if replica && c.old != nil && in.GenerationCounter != c.old.gen {
			c.old.gen = in.GenerationCounter // §7.4.1.1, as above
		}
		gen := c.kd.gen
		if !c.changed && !expiredOnly && c.old != nil {
			gen = c.old.gen
		}
		ans.KindResponses = append(ans.KindResponses, wire.StoreKindResponse{Kind: in.Kind, GenerationCounter: gen})
	}
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
	e.total.records += totalDelta.records
	e.total.bytes += totalDelta.bytes
	if anyChange {
		res.version++
	}
	if len(res.kinds) == 0 {
		delete(e.res, key)
	} else {
		e.res[key] = res
		if replica && !mismatch && len(res.kinds) == len(req.KindData) && !o.From.IsZero() {
			res.mark(o.From, res.version)
		}
	}
	return ans, nil
}

// replaceKind installs nk in place of old, moving certificate references.
func (e *Engine) replaceKind(res *resource, old, nk *kindData) {
	for i := range nk.recs {
		r := &nk.recs[i]
		if ce := e.certs[r.cert.sha256]; ce != nil && ce != r.cert {
			r.cert = ce
			if r.sig.Identity.Type == wire.IdentityCertHash && len(r.sig.Identity.Hash) == 32 && bytes.Equal(r.sig.Identity.Hash, ce.sha256[:]) {
				r.sig.Identity.Hash = ce.sha256[:]
			}
		} else if ce == nil {
			r.cert.parsed = nil                  // retained: keep only what the policies need
			r.cert.raw = bytes.Clone(r.cert.raw) // not the message buffer it came in
			e.certs[r.cert.sha256] = r.cert
		}
		r.cert.refs++
	}
	if old != nil {
		for i := range old.recs {
			e.unref(old.recs[i].cert)
		}
	}
	for i, k := range res.kinds {
		if k == old && old != nil {
			if len(nk.recs) == 0 {
				res.kinds = slices.Delete(res.kinds, i, i+1)
			} else {
				res.kinds[i] = nk
			}
			return
		}
	}
	if len(nk.recs) > 0 {
		res.kinds = append(res.kinds, nk)
	}
}

func (e *Engine) unref(c *certEntry) {
	c.refs--
	if c.refs <= 0 {
		delete(e.certs, c.sha256)
	}
}

// compactSignature keeps sig, sharing the identity hash with the
// certificate entry when it is the SHA-256 cert_hash.
func compactSignature(sig *wire.Signature, c *certEntry) wire.Signature {
	out := wire.Signature{Algorithm: sig.Algorithm, Identity: wire.SignerIdentity{Type: sig.Identity.Type, HashAlg: sig.Identity.HashAlg}}
	if sig.Identity.Type == wire.IdentityCertHash && sig.Identity.HashAlg == wire.HashSHA256 && bytes.Equal(sig.Identity.Hash, c.sha256[:]) {
		out.Identity.Hash = c.sha256[:]
	} else {
		out.Identity.Hash = append([]byte(nil), sig.Identity.Hash...)
	}
	out.Value = append([]byte(nil), sig.Value...)
	return out
}

// identicalValues returns the values of req that are already stored
// byte for byte (same storage time and signature): their verification is
// skipped (replicas and retransmissions re-send them often).
func (e *Engine) identicalValues(req *wire.StoreReq) map[[2]int]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(req.Resource)]
	if res == nil {
		return nil
	}
	out := map[[2]int]bool{}
	for i := range req.KindData {
		kd := &req.KindData[i]
		cur := res.kind(kd.Kind)
		if cur == nil {
			continue
		}
		k, ok := e.reg.Kind(kd.Kind)
		if !ok {
			continue
		}
		for j := range kd.Values {
			skey, idx := slotOf(&kd.Values[j].Value)
			if k.Model == wire.DataModelArray && idx == appendIndex {
				if appended(cur.recs, &kd.Values[j]) {
					out[[2]int{i, j}] = true
				}
				continue
			}
			if pos, found := find(k.Model, cur.recs, skey, idx); found && identical(&cur.recs[pos], &kd.Values[j]) {
				out[[2]int{i, j}] = true
			}
		}
	}
	return out
}

// signerFor returns the Signer of a certificate (cached entry if retained).
func (e *Engine) signerFor(c *x509.Certificate) *kinds.Signer {
	return kinds.SignerFromCert(c)
}

// requestCerts wraps the certificates of a request as entries, reusing the
// retained entry of a certificate already known.
func (e *Engine) requestCerts(certs []*x509.Certificate) []*certEntry {
	if len(certs) == 0 {
		return nil
	}
	out := make([]*certEntry, 0, len(certs))
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range certs {
		if ce := e.certs[sha256.Sum256(c.Raw)]; ce != nil {
			out = append(out, ce)
			continue
		}
		out = append(out, newCertEntry(c))
	}
	return out
}

// verify resolves p's certificate, checks trust, the signature and the
// Kind's policy. Errors are Error_Forbidden (RFC 6940 §7.4.1.1).
func (e *Engine) verify(p *prepared, resource wire.ResourceID, k *kinds.Kind, certs []*certEntry, now time.Time) error {
	e.mu.Lock()
	ce, node, err := e.resolveLocked(&p.sd.Signature.Identity, certs, now)
	e.mu.Unlock()
	return e.check(p, resource, k, ce, node, err)
}

func (e *Engine) verifyLocked(p *prepared, resource wire.ResourceID, k *kinds.Kind, certs []*certEntry, now time.Time) error {
	ce, node, err := e.resolveLocked(&p.sd.Signature.Identity, certs, now)
	return e.check(p, resource, k, ce, node, err)
}

func (e *Engine) check(p *prepared, resource wire.ResourceID, k *kinds.Kind, ce *certEntry, node wire.NodeID, err error) error {
	sd := p.sd
	if sd.Signature.Identity.Type == wire.IdentityNone || sd.Signature.Algorithm.Signature == wire.SignatureAnonymous {
		// RFC 6940 §7.4.1.1: identity none / anonymous are for synthesized data only.
		return errorf(wire.ErrForbidden, "kind %s: value is not signed", k)
	}
	if err != nil {
		return &Error{Code: wire.ErrForbidden, Msg: fmt.Sprintf("kind %s: %v", k, err), Err: err}
	}
	// RFC 6940 §7.1: the signature covers resource, kind, storage time and value.
	if err := checkSignature(sd, resource, k.ID, ce.pub); err != nil {
		return &Error{Code: wire.ErrForbidden, Msg: fmt.Sprintf("kind %s: bad signature", k), Err: err}
	}
	s := &kinds.Signer{Cert: ce.parsed, User: ce.user, NodeIDs: ce.nodeIDs, NodeID: node}
	// RFC 6940 §7.3: the Kind's access control policy.
	if err := k.Authorize(resource, &sd.Value, s); err != nil {
		return &Error{Code: wire.ErrForbidden, Msg: err.Error(), Err: err}
	}
	p.cert, p.signer = ce, s
	return nil
}

// resolveLocked finds the trusted certificate an identity names, among the
// retained ones and the request's.
func (e *Engine) resolveLocked(id *wire.SignerIdentity, certs []*certEntry, now time.Time) (*certEntry, wire.NodeID, error) {
	var ce *certEntry
	var node wire.NodeID
	if id.Type == wire.IdentityCertHash && id.HashAlg == wire.HashSHA256 && len(id.Hash) == 32 {
		ce = e.certs[[32]byte(id.Hash)]
		if ce == nil {
			for _, c := range certs {
				if c.sha256 == [32]byte(id.Hash) {
					ce = c
					break
				}
			}
		}
	} else {
		for _, c := range certs {
			if n, ok := matchIdentity(id, c); ok {
				ce, node = c, n
				break
			}
		}
	}
	if ce == nil {
		return nil, node, fmt.Errorf("no certificate matches the signer identity")
	}
	if !ce.valid(now.UnixMilli()) {
		return nil, node, fmt.Errorf("signer certificate is outside its validity period")
	}
	if ce.trusted.IsZero() || now.Sub(ce.trusted) > trustRecheck {
		leaf, err := ce.certificate()
		if err != nil {
			return nil, node, fmt.Errorf("signer certificate: %w", err)
		}
		chain := []*x509.Certificate{leaf}
		for _, c := range certs {
			if c != ce && c.parsed != nil {
				chain = append(chain, c.parsed)
			}
		}
		if err := e.opts.Trust(chain, now); err != nil {
			return nil, node, fmt.Errorf("signer certificate not trusted: %w", err)
		}
		ce.trusted = now
	}
	return ce, node, nil
}

func (r *resource) mark(n wire.NodeID, v uint64) {
	for i := range r.marks {
		if r.marks[i].node == n {
			r.marks[i].version = v
			return
		}
	}
	if len(r.marks) >= 4 {
		r.marks = slices.Delete(r.marks, 0, 1)
	}
	r.marks = append(r.marks, syncMark{n, v})
}

func (r *resource) pushed(n wire.NodeID) bool {
	for _, m := range r.marks {
		if m.node == n {
			return m.version == r.version
		}
	}
	return false
}
