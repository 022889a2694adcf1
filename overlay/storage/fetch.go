package storage

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sort"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// stored turns a record into StoredData with its remaining lifetime.
func (r *record) stored(m wire.DataModel, nowMS int64) wire.StoredData {
	left := r.expires - nowMS
	life := uint32(0)
	if left > 0 {
		life = uint32((left + 999) / 1000)
	}
	dv := wire.DataValue{Exists: r.exists, Value: r.value}
	v := wire.StoredDataValue{Model: m}
	switch m {
	case wire.DataModelSingle:
		v.Single = dv
	case wire.DataModelArray:
		v.Array = wire.ArrayEntry{Index: r.index, Value: dv}
	case wire.DataModelDictionary:
		v.Dictionary = wire.DictionaryEntry{Key: []byte(r.key), Value: dv}
	}
	return wire.StoredData{StorageTime: r.storageTime, Lifetime: life, Value: v, Signature: r.sig}
}

// synthetic is the unsigned "nonexistent" value of RFC 6940 §7.4.2.2.
func synthetic(m wire.DataModel, key []byte, index uint32) wire.StoredData {
	v := wire.StoredDataValue{Model: m}
	switch m {
	case wire.DataModelArray:
		v.Array.Index = index
	case wire.DataModelDictionary:
		v.Dictionary.Key = key
	}
	return wire.StoredData{Value: v, Signature: wire.Signature{Algorithm: wire.AlgNone, Identity: wire.NoneIdentity}}
}

// live reports whether r may be served: not expired, and its certificate
// still inside its validity period (RFC 6940 §7.1: signatures of expired
// certificates are not valid).
func (e *Engine) live(r *record, nowMS int64) bool {
	if r.expires <= nowMS {
		return false
	}
	return nowMS <= r.cert.notAfter
}

// selected is one item of a Fetch or Stat answer: a record, or a synthetic
// nonexistent value when rec is nil.
type selected struct {
	rec   *record
	key   []byte
	index uint32
}

// selectValues applies a StoredDataSpecifier (RFC 6940 §7.4.2.1).
func (e *Engine) selectValues(k *kinds.Kind, kd *kindData, sp *wire.StoredDataSpecifier, nowMS int64) ([]selected, error) {
	var recs []record
	if kd != nil {
		recs = kd.recs
	}
	var out []selected
	switch k.Model {
	case wire.DataModelSingle:
		if len(recs) > 0 && e.live(&recs[0], nowMS) {
			out = append(out, selected{rec: &recs[0]})
		} else {
			out = append(out, selected{})
		}
	case wire.DataModelArray:
		var length uint32
		for i := len(recs) - 1; i >= 0; i-- {
			if e.live(&recs[i], nowMS) {
				length = recs[i].index + 1
				break
			}
		}
		for _, rg := range sp.Indices {
			first, last := rg.First, rg.Last
			if first > last {
				return nil, errorf(wire.ErrInvalidMessage, "array range %d..%d: first after last", first, last)
			}
			if length == 0 || first >= length {
				continue
			}
			last = min(last, length-1) // 0xffffffff: the final element
			i := sort.Search(len(recs), func(i int) bool { return recs[i].index >= first })
			for idx := first; ; idx++ {
				if i < len(recs) && recs[i].index == idx && e.live(&recs[i], nowMS) {
					out = append(out, selected{rec: &recs[i]})
				} else {
					out = append(out, selected{index: idx}) // gap: exists = false
				}
				if i < len(recs) && recs[i].index == idx {
					i++
				}
				if idx == last {
					break
				}
			}
		}
	case wire.DataModelDictionary:
		if len(sp.Keys) == 0 { // wildcard
			for i := range recs {
				if e.live(&recs[i], nowMS) {
					out = append(out, selected{rec: &recs[i]})
				}
			}
			break
		}
		for _, key := range sp.Keys {
			pos, found := find(k.Model, recs, string(key), 0)
			if found && e.live(&recs[pos], nowMS) {
				out = append(out, selected{rec: &recs[pos]})
			} else {
				out = append(out, selected{key: key})
			}
		}
	}
	return out, nil
}

func (e *Engine) kindsOf(specs []wire.StoredDataSpecifier) ([]*kinds.Kind, error) {
	ks := make([]*kinds.Kind, len(specs))
	var unknown []wire.KindID
	for i := range specs {
		k, ok := e.reg.Kind(specs[i].Kind)
		if !ok {
			unknown = append(unknown, specs[i].Kind)
			continue
		}
		ks[i] = k
	}
	if len(unknown) > 0 {
		return nil, unknownKinds(unknown)
	}
	return ks, nil
}

// Fetch answers a FetchReq (RFC 6940 §7.4.2) from the local store. It
// returns the certificates that signed the values, for the answer's
// security block. Unknown Kinds give Error_Unknown_Kind.
func (e *Engine) Fetch(req *wire.FetchReq) (*wire.FetchAns, []*x509.Certificate, error) {
	ans, ces, err := e.fetch(req)
	if err != nil {
		return nil, nil, err
	}
	return ans, parseEntries(ces), nil
}

// parseEntries returns the parsed certificates of entries (those that do
// not parse are left out).
func parseEntries(ces []*certEntry) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(ces))
	for _, ce := range ces {
		if c, err := ce.certificate(); err == nil {
			out = append(out, c)
		}
	}
	return out
}

func (e *Engine) fetch(req *wire.FetchReq) (*wire.FetchAns, []*certEntry, error) {
	ks, err := e.kindsOf(req.Specifiers)
	if err != nil {
		return nil, nil, err
	}
	nowMS := e.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(req.Resource)]
	ans := &wire.FetchAns{}
	var certs []*certEntry
	seen := map[*certEntry]bool{}
	for i := range req.Specifiers {
		k := ks[i]
		gen, sel, err := e.selectKindLocked(res, k, &req.Specifiers[i], nowMS)
		if err != nil {
			return nil, nil, err
		}
		kr := wire.FetchKindResponse{Kind: k.ID, Generation: gen}
		for _, s := range sel {
			if s.rec == nil {
				kr.Values = append(kr.Values, synthetic(k.Model, s.key, s.index))
				continue
			}
			kr.Values = append(kr.Values, s.rec.stored(k.Model, nowMS))
			if !seen[s.rec.cert] {
				seen[s.rec.cert] = true
				certs = append(certs, s.rec.cert)
			}
		}
		ans.KindResponses = append(ans.KindResponses, kr)
	}
	return ans, certs, nil
}

// Stat answers a StatReq (RFC 6940 §7.4.3): metadata with a SHA-256 over
// each value including its 4 length bytes.
func (e *Engine) Stat(req *wire.StatReq) (*wire.StatAns, error) {
	ks, err := e.kindsOf(req.Specifiers)
	if err != nil {
		return nil, err
	}
	nowMS := e.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.res[string(req.Resource)]
	ans := &wire.StatAns{}
	for i := range req.Specifiers {
		k := ks[i]
		gen, sel, err := e.selectKindLocked(res, k, &req.Specifiers[i], nowMS)
		if err != nil {
			return nil, err
		}
		kr := wire.StatKindResponse{Kind: k.ID, Generation: gen}
		for _, s := range sel {
			md := wire.StoredMetaData{MetaData: wire.StoredMetaDataValue{Model: k.Model, Index: s.index, Key: s.key}}
			if r := s.rec; r != nil {
				sd := r.stored(k.Model, nowMS)
				md.StorageTime, md.Lifetime = sd.StorageTime, sd.Lifetime
				md.MetaData.Index, md.MetaData.Key = r.index, []byte(r.key)
				md.MetaData.MetaData = MetaDataOf(r.exists, r.value)
			}
			kr.Values = append(kr.Values, md)
		}
		ans.KindResponses = append(ans.KindResponses, kr)
	}
	return ans, nil
}

// selectKindLocked returns the generation counter of kind k of res and the values sp
// selects; none when sp names the current generation (RFC 6940 §7.4.2.1: a matching
// generation means nothing new). e.mu is held.
func (e *Engine) selectKindLocked(res *resource, k *kinds.Kind, sp *wire.StoredDataSpecifier, nowMS int64) (uint64, []selected, error) {
	var kd *kindData
	if res != nil {
		kd = res.kind(k.ID)
	}
	var gen uint64
	if kd != nil {
		gen = kd.gen
	}
	if sp.Generation != 0 && sp.Generation == gen {
		return gen, nil, nil
	}
	sel, err := e.selectValues(k, kd, sp, nowMS)
	return gen, sel, err
}

// MetaDataOf is the Stat metadata of a value: SHA-256 over the value with
// its 4 leading length bytes (RFC 6940 §7.4.3.2).
func MetaDataOf(exists bool, value []byte) wire.MetaData {
	h := sha256.New()
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(value)))
	h.Write(l[:])
	h.Write(value)
	return wire.MetaData{Exists: exists, ValueLength: uint32(len(value)), HashAlgorithm: wire.HashSHA256, HashValue: h.Sum(nil)}
}

// Find answers a FindReq (RFC 6940 §7.4.4): for each Kind, the stored
// Resource-ID closest to (at or after, clockwise) the requested one among
// those include accepts (nil: all). Unknown Kinds and Kinds with nothing
// stored give an empty Resource-ID. A Kind listed twice is an error.
func (e *Engine) Find(req *wire.FindReq, include func(wire.ResourceID) bool) (*wire.FindAns, error) {
	seen := map[wire.KindID]bool{}
	for _, k := range req.Kinds {
		if seen[k] {
			return nil, errorf(wire.ErrInvalidMessage, "kind %d appears twice in FindReq", k)
		}
		seen[k] = true
	}
	nowMS := e.nowMS()
	e.mu.Lock()
	defer e.mu.Unlock()
	target := padded(req.Resource)
	ans := &wire.FindAns{}
	for _, kid := range req.Kinds {
		var best, first []byte
		var bestID, firstID wire.ResourceID
		if _, ok := e.reg.Kind(kid); ok {
			for _, res := range e.res {
				kd := res.kind(kid)
				if kd == nil || !e.anyLive(kd, nowMS) || (include != nil && !include(res.id)) {
					continue
				}
				p := padded(res.id)
				if bytes.Compare(p, target) >= 0 && (best == nil || bytes.Compare(p, best) < 0) {
					best, bestID = p, res.id
				}
				if first == nil || bytes.Compare(p, first) < 0 {
					first, firstID = p, res.id
				}
			}
		}
		id := bestID
		if id == nil {
			id = firstID // wrap around the ring
		}
		ans.Results = append(ans.Results, wire.FindKindData{Kind: kid, Closest: append(wire.ResourceID{}, id...)})
	}
	return ans, nil
}

func padded(r wire.ResourceID) []byte {
	n := r.NodeID()
	return n[:]
}

func (e *Engine) anyLive(kd *kindData, nowMS int64) bool {
	for i := range kd.recs {
		if e.live(&kd.recs[i], nowMS) {
			return true
		}
	}
	return false
}
