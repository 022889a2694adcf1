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
