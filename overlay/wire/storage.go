package wire

// KindModels resolves a Kind-ID to its data model. It is needed to decode
// StoredData, StoredDataSpecifier and StoredMetaData, because the model is
// fixed by the Kind definition and not carried on the wire (RFC 6940 §7.2).
type KindModels interface {
	DataModel(KindID) (DataModel, bool)
}

// KindModelMap is a KindModels backed by a map.
type KindModelMap map[KindID]DataModel

// DataModel implements KindModels.
func (m KindModelMap) DataModel(k KindID) (DataModel, bool) {
	d, ok := m[k]
	return d, ok
}

// DefaultKindModels holds the data models of the Kinds registered by RFC 6940
// §14.6 and RFC 7904 §9.1 (plus ReDiR, RFC 7374). It is used when a nil
// KindModels is given. Treat as read-only; build a KindModelMap (or wrap
// with WithKinds) for overlay-specific Kinds.
var DefaultKindModels KindModels = KindModelMap{
	KindSIPRegistration:   DataModelDictionary, // RFC 7904 §3
	KindTURNService:       DataModelSingle,     // RFC 6940 §9 (TURN-SERVICE)
	KindCertificateByNode: DataModelArray,      // RFC 6940 §8.3
	KindCertificateByUser: DataModelArray,      // RFC 6940 §8.3
	KindRedir:             DataModelDictionary, // RFC 7374
}

type chainModels []KindModels

func (c chainModels) DataModel(k KindID) (DataModel, bool) {
	for _, m := range c {
		if m == nil {
			continue
		}
		if d, ok := m.DataModel(k); ok {
			return d, true
		}
	}
	return 0, false
}

// WithKinds returns a KindModels that consults extra first, then DefaultKindModels.
func WithKinds(extra KindModels) KindModels { return chainModels{extra, DefaultKindModels} }

func models(k KindModels) KindModels {
	if k == nil {
		return DefaultKindModels
	}
	return k
}

func modelOf(d *dec, km KindModels, k KindID) DataModel {
	m, ok := km.DataModel(k)
	if !ok && d.err == nil {
		d.failCode(ErrUnknownKind, "unknown kind %d", k)
	}
	return m
}

// ---- DataValue / StoredDataValue, RFC 6940 §7.2

func appendDataValue(e *enc, v *DataValue) {
	e.boolean(v.Exists)
	e.vec32(v.Value, "value")
}

func decodeDataValue(d *dec) DataValue {
	var v DataValue
	v.Exists = d.boolean("exists")
	v.Value = d.vec(4, "value")
	return v
}

func appendStoredDataValue(e *enc, v *StoredDataValue) {
	switch v.Model {
	case DataModelSingle:
		appendDataValue(e, &v.Single)
	case DataModelArray:
		e.u32(v.Array.Index)
		appendDataValue(e, &v.Array.Value)
	case DataModelDictionary:
		e.vec16(v.Dictionary.Key, "dictionary key")
		appendDataValue(e, &v.Dictionary.Value)
	default:
		e.fail("stored data value: data model %v", v.Model)
	}
}

func decodeStoredDataValue(d *dec, m DataModel) StoredDataValue {
	v := StoredDataValue{Model: m}
	switch m {
	case DataModelSingle:
		v.Single = decodeDataValue(d)
	case DataModelArray:
		v.Array.Index = d.u32("index")
		v.Array.Value = decodeDataValue(d)
	case DataModelDictionary:
		v.Dictionary.Key = d.vec(2, "dictionary key")
		v.Dictionary.Value = decodeDataValue(d)
	default:
		d.fail("data model %v", m)
	}
	return v
}

// MarshalBinary encodes the StoredDataValue (RFC 6940 §7.2).
func (v *StoredDataValue) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) { appendStoredDataValue(e, v) })
}

// UnmarshalModel decodes a StoredDataValue of data model m.
func (v *StoredDataValue) UnmarshalModel(b []byte, m DataModel) error {
	return decodeAll(b, "StoredDataValue", func(d *dec) { *v = decodeStoredDataValue(d, m) })
}

// ---- StoredData, RFC 6940 §7

func appendStoredData(e *enc, sd *StoredData) {
	s := e.begin(4)
	e.u64(sd.StorageTime)
	e.u32(sd.Lifetime)
	appendStoredDataValue(e, &sd.Value)
	appendSignature(e, &sd.Signature)
	e.end(4, s, "StoredData")
}

func decodeStoredData(d *dec, m DataModel) StoredData {
	var sd StoredData
	s := d.sub(4, "StoredData")
	sd.StorageTime = s.u64("storage_time")
	sd.Lifetime = s.u32("lifetime")
	sd.Value = decodeStoredDataValue(s, m)
	sd.Signature = decodeSignature(s)
	d.join(s, "StoredData")
	return sd
}

// MarshalBinary encodes the StoredData (RFC 6940 §7).
func (sd *StoredData) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) { appendStoredData(e, sd) })
}

// UnmarshalModel decodes a StoredData whose value has data model m.
func (sd *StoredData) UnmarshalModel(b []byte, m DataModel) error {
	return decodeAll(b, "StoredData", func(d *dec) { *sd = decodeStoredData(d, m) })
}

// storedDataSize estimates the encoded size of values.
func storedDataSize(vs []StoredData) int {
	n := 0
	for i := range vs {
		v := &vs[i]
		d := v.Value.Data()
		n += 40 + len(v.Value.Dictionary.Key) + len(d.Value) + len(v.Signature.Identity.Hash) + len(v.Signature.Value)
	}
	return n
}

func appendStoredDataList(e *enc, vs []StoredData) {
	s := e.begin(4)
	for i := range vs {
		appendStoredData(e, &vs[i])
	}
	e.end(4, s, "values")
}

func decodeStoredDataList(d *dec, m DataModel) []StoredData {
	l := d.sub(4, "values")
	var out []StoredData
	for !l.empty() {
		out = append(out, decodeStoredData(l, m))
	}
	d.join(l, "values")
	return out
}

// ---- Store, RFC 6940 §7.4.1

// MarshalBinary encodes the StoreReq (RFC 6940 §7.4.1.1).
func (x *StoreReq) MarshalBinary() ([]byte, error) {
	n := 8 + len(x.Resource)
	for _, kd := range x.KindData {
		n += 16 + storedDataSize(kd.Values)
	}
	return encodeSized(n, func(e *enc) {
		e.vec8(x.Resource, "resource")
		e.u8(x.ReplicaNumber)
		s := e.begin(4)
		for i := range x.KindData {
			kd := &x.KindData[i]
			e.u32(uint32(kd.Kind))
			e.u64(kd.GenerationCounter)
			appendStoredDataList(e, kd.Values)
		}
		e.end(4, s, "kind_data")
	})
}

// UnmarshalBinary decodes a StoreReq using DefaultKindModels.
func (x *StoreReq) UnmarshalBinary(b []byte) error { return x.UnmarshalKinds(b, nil) }

// UnmarshalKinds decodes a StoreReq resolving data models with km (nil = default).
// An unknown Kind yields an Error_Unknown_Kind *Error.
func (x *StoreReq) UnmarshalKinds(b []byte, km KindModels) error {
	km = models(km)
	*x = StoreReq{}
	return decodeAll(b, "StoreReq", func(d *dec) {
		x.Resource = ResourceID(d.vec(1, "resource"))
		x.ReplicaNumber = d.u8("replica_number")
		l := d.sub(4, "kind_data")
		for !l.empty() {
			var kd StoreKindData
			kd.Kind = KindID(l.u32("kind"))
			kd.GenerationCounter = l.u64("generation_counter")
			m := modelOf(l, km, kd.Kind)
			kd.Values = decodeStoredDataList(l, m)
			x.KindData = append(x.KindData, kd)
		}
		d.join(l, "kind_data")
	})
}

// MarshalBinary encodes the StoreAns (RFC 6940 §7.4.1.2).
func (x *StoreAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(2)
		for i := range x.KindResponses {
			r := &x.KindResponses[i]
			e.u32(uint32(r.Kind))
			e.u64(r.GenerationCounter)
			appendNodeIDs(e, r.Replicas, "replicas")
		}
		e.end(2, s, "kind_responses")
	})
}

// UnmarshalBinary decodes a StoreAns.
func (x *StoreAns) UnmarshalBinary(b []byte) error {
	*x = StoreAns{}
	return decodeAll(b, "StoreAns", func(d *dec) {
		l := d.sub(2, "kind_responses")
		for !l.empty() {
			var r StoreKindResponse
			r.Kind = KindID(l.u32("kind"))
			r.GenerationCounter = l.u64("generation_counter")
			r.Replicas = decodeNodeIDs(l, "replicas")
			x.KindResponses = append(x.KindResponses, r)
		}
		d.join(l, "kind_responses")
	})
}

// ---- Fetch / Stat requests, RFC 6940 §7.4.2.1, §7.4.3.1

func appendSpecifier(e *enc, sp *StoredDataSpecifier, km KindModels) {
	m := sp.Model
	if m == DataModelInvalid {
		var ok bool
		if m, ok = km.DataModel(sp.Kind); !ok {
			e.fail("specifier: unknown data model for kind %d", sp.Kind)
			return
		}
	}
	e.u32(uint32(sp.Kind))
	e.u64(sp.Generation)
	s := e.begin(2)
	switch m {
	case DataModelSingle:
	case DataModelArray:
		l := e.begin(2)
		for _, r := range sp.Indices {
			e.u32(r.First)
			e.u32(r.Last)
		}
		e.end(2, l, "indices")
	case DataModelDictionary:
		l := e.begin(2)
		for _, k := range sp.Keys {
			e.vec16(k, "dictionary key")
		}
		e.end(2, l, "keys")
	default:
		e.fail("specifier: data model %v", m)
	}
	e.end(2, s, "StoredDataSpecifier")
}

func decodeSpecifier(d *dec, km KindModels) StoredDataSpecifier {
	var sp StoredDataSpecifier
	sp.Kind = KindID(d.u32("kind"))
	sp.Generation = d.u64("generation")
	s := d.sub(2, "StoredDataSpecifier")
	sp.Model = modelOf(s, km, sp.Kind)
	switch sp.Model {
	case DataModelSingle:
	case DataModelArray:
		p := s.vecRaw(2, "indices")
		if s.ok() && len(p)%8 != 0 {
			s.fail("indices: %d bytes is not a multiple of 8", len(p))
		}
		if s.ok() {
			sp.Indices = make([]ArrayRange, len(p)/8)
			ld := newDec(p, d.op)
			for i := range sp.Indices {
				sp.Indices[i] = ArrayRange{First: ld.u32("first"), Last: ld.u32("last")}
			}
		}
	case DataModelDictionary:
		l := s.sub(2, "keys")
		for !l.empty() {
			sp.Keys = append(sp.Keys, l.vec(2, "dictionary key"))
		}
		s.join(l, "keys")
	}
	d.join(s, "StoredDataSpecifier")
	return sp
}

// MarshalBinary encodes the FetchReq (or StatReq). Specifiers with a zero
// Model are resolved through DefaultKindModels.
func (x *FetchReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.vec8(x.Resource, "resource")
		s := e.begin(2)
		for i := range x.Specifiers {
			appendSpecifier(e, &x.Specifiers[i], DefaultKindModels)
		}
		e.end(2, s, "specifiers")
	})
}

// UnmarshalBinary decodes a FetchReq (or StatReq) using DefaultKindModels.
func (x *FetchReq) UnmarshalBinary(b []byte) error { return x.UnmarshalKinds(b, nil) }

// UnmarshalKinds decodes a FetchReq (or StatReq) resolving data models with km.
func (x *FetchReq) UnmarshalKinds(b []byte, km KindModels) error {
	km = models(km)
	*x = FetchReq{}
	return decodeAll(b, "FetchReq", func(d *dec) {
		x.Resource = ResourceID(d.vec(1, "resource"))
		l := d.sub(2, "specifiers")
		for !l.empty() {
			x.Specifiers = append(x.Specifiers, decodeSpecifier(l, km))
		}
		d.join(l, "specifiers")
	})
}

// ---- Fetch answer, RFC 6940 §7.4.2.2

// MarshalBinary encodes the FetchAns.
func (x *FetchAns) MarshalBinary() ([]byte, error) {
	n := 4
	for _, r := range x.KindResponses {
		n += 16 + storedDataSize(r.Values)
	}
	return encodeSized(n, func(e *enc) {
		s := e.begin(4)
		for i := range x.KindResponses {
			r := &x.KindResponses[i]
			e.u32(uint32(r.Kind))
			e.u64(r.Generation)
			appendStoredDataList(e, r.Values)
		}
		e.end(4, s, "kind_responses")
	})
}

// UnmarshalBinary decodes a FetchAns using DefaultKindModels.
func (x *FetchAns) UnmarshalBinary(b []byte) error { return x.UnmarshalKinds(b, nil) }

// UnmarshalKinds decodes a FetchAns resolving data models with km.
func (x *FetchAns) UnmarshalKinds(b []byte, km KindModels) error {
	km = models(km)
	*x = FetchAns{}
	return decodeAll(b, "FetchAns", func(d *dec) {
		l := d.sub(4, "kind_responses")
		for !l.empty() {
			var r FetchKindResponse
			r.Kind = KindID(l.u32("kind"))
			r.Generation = l.u64("generation")
			m := modelOf(l, km, r.Kind)
			r.Values = decodeStoredDataList(l, m)
			x.KindResponses = append(x.KindResponses, r)
		}
		d.join(l, "kind_responses")
	})
}

// ---- Stat answer, RFC 6940 §7.4.3.2

func appendMetaData(e *enc, md *MetaData) {
	e.boolean(md.Exists)
	e.u32(md.ValueLength)
	e.u8(uint8(md.HashAlgorithm))
	e.vec8(md.HashValue, "hash_value")
}

func decodeMetaData(d *dec) MetaData {
	var md MetaData
	md.Exists = d.boolean("exists")
	md.ValueLength = d.u32("value_length")
	md.HashAlgorithm = HashAlgorithm(d.u8("hash_algorithm"))
	md.HashValue = d.vec(1, "hash_value")
	return md
}

// MarshalBinary encodes the StatAns.
func (x *StatAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(4)
		for i := range x.KindResponses {
			r := &x.KindResponses[i]
			e.u32(uint32(r.Kind))
			e.u64(r.Generation)
			l := e.begin(4)
			for j := range r.Values {
				v := &r.Values[j]
				vs := e.begin(4) // StoredMetaData.value_length: length of the rest
				e.u64(v.StorageTime)
				e.u32(v.Lifetime)
				switch v.MetaData.Model {
				case DataModelSingle:
				case DataModelArray:
					e.u32(v.MetaData.Index)
				case DataModelDictionary:
					e.vec16(v.MetaData.Key, "dictionary key")
				default:
					e.fail("stat: data model %v", v.MetaData.Model)
				}
				appendMetaData(e, &v.MetaData.MetaData)
				e.end(4, vs, "StoredMetaData")
			}
			e.end(4, l, "values")
		}
		e.end(4, s, "kind_responses")
	})
}

// UnmarshalBinary decodes a StatAns using DefaultKindModels.
func (x *StatAns) UnmarshalBinary(b []byte) error { return x.UnmarshalKinds(b, nil) }

// UnmarshalKinds decodes a StatAns resolving data models with km.
func (x *StatAns) UnmarshalKinds(b []byte, km KindModels) error {
	km = models(km)
	*x = StatAns{}
	return decodeAll(b, "StatAns", func(d *dec) {
		l := d.sub(4, "kind_responses")
		for !l.empty() {
			var r StatKindResponse
			r.Kind = KindID(l.u32("kind"))
			r.Generation = l.u64("generation")
			m := modelOf(l, km, r.Kind)
			vl := l.sub(4, "values")
			for !vl.empty() {
				var v StoredMetaData
				s := vl.sub(4, "StoredMetaData")
				v.StorageTime = s.u64("storage_time")
				v.Lifetime = s.u32("lifetime")
				v.MetaData.Model = m
				switch m {
				case DataModelArray:
					v.MetaData.Index = s.u32("index")
				case DataModelDictionary:
					v.MetaData.Key = s.vec(2, "dictionary key")
				}
				v.MetaData.MetaData = decodeMetaData(s)
				vl.join(s, "StoredMetaData")
				r.Values = append(r.Values, v)
			}
			l.join(vl, "values")
			x.KindResponses = append(x.KindResponses, r)
		}
		d.join(l, "kind_responses")
	})
}

// ---- Find, RFC 6940 §7.4.4

// MarshalBinary encodes the FindReq.
func (x *FindReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.vec8(x.Resource, "resource")
		s := e.begin(1)
		for _, k := range x.Kinds {
			e.u32(uint32(k))
		}
		e.end(1, s, "kinds")
	})
}

// UnmarshalBinary decodes a FindReq.
func (x *FindReq) UnmarshalBinary(b []byte) error {
	*x = FindReq{}
	return decodeAll(b, "FindReq", func(d *dec) {
		x.Resource = ResourceID(d.vec(1, "resource"))
		p := d.vecRaw(1, "kinds")
		if d.ok() && len(p)%4 != 0 {
			d.fail("kinds: %d bytes is not a multiple of 4", len(p))
		}
		if d.ok() {
			ld := newDec(p, d.op)
			x.Kinds = make([]KindID, len(p)/4)
			for i := range x.Kinds {
				x.Kinds[i] = KindID(ld.u32("kind"))
			}
		}
	})
}

// MarshalBinary encodes the FindAns.
func (x *FindAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(2)
		for _, r := range x.Results {
			e.u32(uint32(r.Kind))
			e.vec8(r.Closest, "closest")
		}
		e.end(2, s, "results")
	})
}

// UnmarshalBinary decodes a FindAns.
func (x *FindAns) UnmarshalBinary(b []byte) error {
	*x = FindAns{}
	return decodeAll(b, "FindAns", func(d *dec) {
		l := d.sub(2, "results")
		for !l.empty() {
			var r FindKindData
			r.Kind = KindID(l.u32("kind"))
			r.Closest = ResourceID(l.vec(1, "closest"))
			x.Results = append(x.Results, r)
		}
		d.join(l, "results")
	})
}
