package storage

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Private test Kinds, one per data model (USER-MATCH).
const (
	kindSingle wire.KindID = 0xf0001
	kindArray  wire.KindID = 0xf0002
	kindDict   wire.KindID = 0xf0003
)

func testRegistry() *kinds.Registry {
	r := kinds.Default()
	r.Add(&kinds.Kind{ID: kindSingle, Model: wire.DataModelSingle, Policy: kinds.UserMatch, MaxCount: 1, MaxSize: 100})
	r.Add(&kinds.Kind{ID: kindArray, Model: wire.DataModelArray, Policy: kinds.UserMatch, MaxCount: 5, MaxSize: 100})
	r.Add(&kinds.Kind{ID: kindDict, Model: wire.DataModelDictionary, Policy: kinds.UserMatch, MaxCount: 3, MaxSize: 100})
	return r
}

func modelEngine(t *testing.T) (*Engine, *clock) {
	c := newClock()
	return NewEngine(testRegistry(), Options{Now: c.Now}), c
}

func signed(t *testing.T, u *user, rid wire.ResourceID, kind wire.KindID, v wire.StoredDataValue, at time.Time) wire.StoredData {
	t.Helper()
	sd, err := NewValue(rid, kind, v, at, time.Hour, u.cred)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestSingleValue(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	// Nothing stored: a synthetic nonexistent value (RFC 6940 §7.4.2.2).
	vals, gen := fetchAll(t, e, rid, kindSingle)
	if len(vals) != 1 || vals[0].Value.Single.Exists || vals[0].Signature.Identity.Type != wire.IdentityNone || gen != 0 {
		t.Fatalf("empty fetch: %+v gen %d", vals, gen)
	}
	v1 := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("one")), c.Now())
	ans, err := e.Store(storeReq(rid, kindSingle, 0, v1), origin(u))
	if err != nil {
		t.Fatal(err)
	}
	if ans.KindResponses[0].GenerationCounter != 1 {
		t.Fatalf("generation %d, want 1", ans.KindResponses[0].GenerationCounter)
	}
	c.Advance(time.Second)
	v2 := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("two")), c.Now())
	if _, err := e.Store(storeReq(rid, kindSingle, 0, v2), origin(u)); err != nil {
		t.Fatal(err)
	}
	vals, gen = fetchAll(t, e, rid, kindSingle)
	if len(vals) != 1 || string(vals[0].Value.Single.Value) != "two" || gen != 2 {
		t.Fatalf("fetch: %+v gen %d", vals, gen)
	}
	// The fetched value still verifies.
	ver := &Verifier{Kinds: e.Kinds(), Now: c.Now}
	if _, err := ver.Verify(rid, kindSingle, &vals[0], []*x509.Certificate{u.cert()}); err != nil {
		t.Fatalf("fetched value does not verify: %v", err)
	}
}

func TestArray(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	at := c.Now()
	// Store at index 2 of an empty array: [NA, NA, X] (RFC 6940 §7.2.2).
	x := signed(t, u, rid, kindArray, wire.ArrayValue(2, []byte("X")), at)
	if _, err := e.Store(storeReq(rid, kindArray, 0, x), origin(u)); err != nil {
		t.Fatal(err)
	}
	vals, _ := fetchAll(t, e, rid, kindArray)
	if len(vals) != 3 || vals[0].Value.Array.Value.Exists || vals[1].Value.Array.Value.Exists || !vals[2].Value.Array.Value.Exists || vals[2].Value.Array.Index != 2 {
		t.Fatalf("sparse array: %+v", vals)
	}
	// Append (index 0xffffffff) lands at index 3 and still verifies (index zeroed when signing, §7.4.2.2).
	y := signed(t, u, rid, kindArray, wire.ArrayValue(0xffffffff, []byte("Y")), at)
	if _, err := e.Store(storeReq(rid, kindArray, 0, y), origin(u)); err != nil {
		t.Fatal(err)
	}
	ans, certs, err := e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindArray, Indices: []wire.ArrayRange{{First: 3, Last: 3}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := ans.KindResponses[0].Values
	if len(got) != 1 || got[0].Value.Array.Index != 3 || string(got[0].Value.Array.Value.Value) != "Y" {
		t.Fatalf("append: %+v", got)
	}
	ver := &Verifier{Kinds: e.Kinds(), Now: c.Now}
	if _, err := ver.Verify(rid, kindArray, &got[0], certs); err != nil {
		t.Fatalf("appended value does not verify: %v", err)
	}
	// A replayed append is not applied again (idempotent; RFC 6940 §7.4.1.1).
	if _, err := e.Store(storeReq(rid, kindArray, 0, y), origin(u)); err != nil {
		t.Fatal(err)
	}
	if vals, _ := fetchAll(t, e, rid, kindArray); len(vals) != 4 {
		t.Fatalf("replayed append stored again: %d entries", len(vals))
	}
	// Ranges: 1..2 gives the gap and X.
	ans, _, _ = e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindArray, Indices: []wire.ArrayRange{{First: 1, Last: 2}}}}})
	if v := ans.KindResponses[0].Values; len(v) != 2 || v[0].Value.Array.Index != 1 || v[1].Value.Array.Index != 2 {
		t.Fatalf("range 1..2: %+v", v)
	}
	// first > last is refused.
	_, _, err = e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindArray, Indices: []wire.ArrayRange{{First: 2, Last: 1}}}}})
	wantCode(t, err, wire.ErrInvalidMessage)
	// max-count 5 bounds the array length: index 5 is too far.
	z := signed(t, u, rid, kindArray, wire.ArrayValue(5, []byte("Z")), at)
	_, err = e.Store(storeReq(rid, kindArray, 0, z), origin(u))
	wantCode(t, err, wire.ErrDataTooLarge)
}

func TestDictionary(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	at := c.Now()
	a := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte("a"), []byte("1")), at)
	b := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte("b"), []byte("2")), at)
	if _, err := e.Store(storeReq(rid, kindDict, 0, a, b), origin(u)); err != nil {
		t.Fatal(err)
	}
	vals, gen := fetchAll(t, e, rid, kindDict)
	if len(vals) != 2 || gen != 1 {
		t.Fatalf("wildcard: %d values gen %d", len(vals), gen)
	}
	ans, _, _ := e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindDict, Keys: [][]byte{[]byte("b"), []byte("zz")}}}})
	v := ans.KindResponses[0].Values
	if len(v) != 2 || string(v[0].Value.Dictionary.Value.Value) != "2" || v[1].Value.Dictionary.Value.Exists || string(v[1].Value.Dictionary.Key) != "zz" {
		t.Fatalf("keyed fetch: %+v", v)
	}
	// max-count 3.
	c2 := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte("c"), []byte("3")), at)
	d := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte("d"), []byte("4")), at)
	_, err := e.Store(storeReq(rid, kindDict, 0, c2, d), origin(u))
	wantCode(t, err, wire.ErrDataTooLarge)
	if vals, _ := fetchAll(t, e, rid, kindDict); len(vals) != 2 {
		t.Fatalf("refused store changed the dictionary: %d values", len(vals))
	}
}

func TestGenerationCounter(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	v := func(s string) wire.StoredData {
		c.Advance(time.Millisecond)
		return signed(t, u, rid, kindSingle, wire.SingleValue([]byte(s)), c.Now())
	}
	if _, err := e.Store(storeReq(rid, kindSingle, 0, v("a")), origin(u)); err != nil {
		t.Fatal(err)
	}
	// Matching counter succeeds and increments.
	ans, err := e.Store(storeReq(rid, kindSingle, 1, v("b")), origin(u))
	if err != nil || ans.KindResponses[0].GenerationCounter != 2 {
		t.Fatalf("matching counter: %v %+v", err, ans)
	}
	// Stale counter: Error_Generation_Counter_Too_Low with a StoreAns in error_info.
	_, err = e.Store(storeReq(rid, kindSingle, 1, v("c")), origin(u))
	wantCode(t, err, wire.ErrGenerationCounterTooLow)
	var se *Error
	errors.As(err, &se)
	var info wire.StoreAns
	if err := info.UnmarshalBinary(se.Info); err != nil || info.KindResponses[0].GenerationCounter != 2 {
		t.Fatalf("error_info: %v %+v", err, info)
	}
	// Fetch with the current generation returns nothing (§7.4.2.1).
	ans2, _, _ := e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindSingle, Generation: 2}}})
	if len(ans2.KindResponses[0].Values) != 0 {
		t.Fatalf("fetch with current generation returned values")
	}
	// Replica stores take the sender's counter; 0 is refused.
	rep := storeReq(rid, kindSingle, 40, v("d"))
	rep.ReplicaNumber = 1
	ans, err = e.Store(rep, Origin{Certs: []*x509.Certificate{u.cert()}})
	if err != nil || ans.KindResponses[0].GenerationCounter != 40 {
		t.Fatalf("replica: %v %+v", err, ans)
	}
	rep = storeReq(rid, kindSingle, 0, v("e"))
	rep.ReplicaNumber = 2
	_, err = e.Store(rep, Origin{Certs: []*x509.Certificate{u.cert()}})
	wantCode(t, err, wire.ErrInvalidMessage)
}

func TestStorageTimeOrdering(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	t0 := c.Now()
	newer := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("new")), t0.Add(time.Second))
	older := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("old")), t0)
	same := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("same-time")), t0.Add(time.Second))
	if _, err := e.Store(storeReq(rid, kindSingle, 0, newer), origin(u)); err != nil {
		t.Fatal(err)
	}
	_, err := e.Store(storeReq(rid, kindSingle, 0, older), origin(u))
	wantCode(t, err, wire.ErrDataTooOld)
	_, err = e.Store(storeReq(rid, kindSingle, 0, same), origin(u))
	wantCode(t, err, wire.ErrDataTooOld)
	// A retransmission of the stored value is accepted and changes nothing.
	ans, err := e.Store(storeReq(rid, kindSingle, 0, newer), origin(u))
	if err != nil || ans.KindResponses[0].GenerationCounter != 1 {
		t.Fatalf("identical re-store: %v %+v", err, ans)
	}
	// A replica store with older data merges silently (keeps the newer value).
	rep := storeReq(rid, kindSingle, 5, older)
	rep.ReplicaNumber = 1
	if _, err := e.Store(rep, Origin{Certs: []*x509.Certificate{u.cert()}}); err != nil {
		t.Fatal(err)
	}
	vals, _ := fetchAll(t, e, rid, kindSingle)
	if string(vals[0].Value.Single.Value) != "new" {
		t.Fatalf("older replica replaced newer data: %q", vals[0].Value.Single.Value)
	}
}

func TestLifetimeAndExpiry(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid, sd := sipValue(t, u, c.Now(), 60*time.Second)
	if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u)); err != nil {
		t.Fatal(err)
	}
	c.Advance(20 * time.Second)
	vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration)
	if len(vals) != 1 || vals[0].Lifetime != 40 {
		t.Fatalf("remaining lifetime: %+v", vals)
	}
	req, _, _, ok := e.Snapshot(rid, 1)
	if !ok || req.KindData[0].Values[0].Lifetime != 40 {
		t.Fatalf("snapshot lifetime not reduced (RFC 6940 §7.4.1.1)")
	}
	c.Advance(41 * time.Second)
	if vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration); len(vals) != 0 {
		t.Fatalf("expired value served: %+v", vals)
	}
	if n := e.Sweep(); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}
	if st := e.Stats(); st.Records != 0 || st.Resources != 0 || st.Certificates != 0 || st.Users != 0 {
		t.Fatalf("after sweep: %+v", st)
	}
}

func TestDeletion(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid, sd := sipValue(t, u, c.Now(), time.Hour)
	if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u)); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	// RFC 6940 §7.4.1.3: store exists = false.
	del := wire.StoredDataValue{Model: wire.DataModelDictionary, Dictionary: wire.DictionaryEntry{Key: u.node[:]}}
	tomb, err := NewValue(rid, wire.KindSIPRegistration, del, c.Now(), time.Hour, u.cred)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, tomb), origin(u)); err != nil {
		t.Fatal(err)
	}
	vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration)
	if len(vals) != 1 || vals[0].Value.Dictionary.Value.Exists || vals[0].Signature.Identity.Type == wire.IdentityNone {
		t.Fatalf("tombstone: %+v", vals)
	}
	// The old value cannot be replayed over the tombstone.
	_, err = e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u))
	wantCode(t, err, wire.ErrDataTooOld)
}

func TestMaxSize(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	big := signed(t, u, rid, kindSingle, wire.SingleValue(bytes.Repeat([]byte("x"), 101)), c.Now())
	_, err := e.Store(storeReq(rid, kindSingle, 0, big), origin(u))
	wantCode(t, err, wire.ErrDataTooLarge)
	if e.Stats().Records != 0 {
		t.Fatal("refused store changed state")
	}
}

func TestUnknownKind(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	sd := signed(t, u, rid, 0x7777, wire.SingleValue([]byte("x")), c.Now())
	_, err := e.Store(storeReq(rid, 0x7777, 0, sd), origin(u))
	wantCode(t, err, wire.ErrUnknownKind)
	var se *Error
	errors.As(err, &se)
	if ids, err := UnknownKindsInfo(se.Info); err != nil || len(ids) != 1 || ids[0] != 0x7777 {
		t.Fatalf("unknown_kinds info: %v %v", ids, err)
	}
	_, _, err = e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: 0x7777, Model: wire.DataModelSingle}}})
	wantCode(t, err, wire.ErrUnknownKind)
	_, err = e.Stat(&wire.StatReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: 0x7777, Model: wire.DataModelSingle}}})
	wantCode(t, err, wire.ErrUnknownKind)
}

func TestStoreIsAtomic(t *testing.T) {
	e, c := modelEngine(t)
	u, m := newUser(t, "alice"), newUser(t, "mallory")
	rid := kinds.UserResourceID(u.name)
	good := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("ok")), c.Now())
	forged := signed(t, m, rid, kindDict, wire.DictionaryValue([]byte("k"), []byte("v")), c.Now())
	req := &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{
		{Kind: kindSingle, Values: []wire.StoredData{good}},
		{Kind: kindDict, Values: []wire.StoredData{forged}},
	}}
	_, err := e.Store(req, Origin{Certs: []*x509.Certificate{u.cert(), m.cert()}})
	wantCode(t, err, wire.ErrForbidden)
	if st := e.Stats(); st.Records != 0 || st.Certificates != 0 {
		t.Fatalf("partial store: %+v", st)
	}
	// Same Kind twice in one request is invalid (§7.4.1.1).
	req = &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{{Kind: kindSingle, Values: []wire.StoredData{good}}, {Kind: kindSingle}}}
	_, err = e.Store(req, origin(u))
	wantCode(t, err, wire.ErrInvalidMessage)
}

// TestForgedStores: every forged or tampered store is refused with
// Error_Forbidden and changes nothing (issue 6, RFC 6940 §7.3, RFC 7904 §3.3).
func TestForgedStores(t *testing.T) {
	alice, mallory := newUser(t, "alice"), newUser(t, "mallory")
	aliceRID := kinds.UserResourceID(alice.name)
	now := time.Now()
	sipReg := func(node wire.NodeID) []byte {
		b, err := kinds.RouteRegistration(node, "")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		make func() (*wire.StoreReq, Origin)
	}{
		{"signed by another user", func() (*wire.StoreReq, Origin) {
			// Mallory signs a registration at Alice's AoR with Alice's Node-ID as key.
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(mallory.node)), now, time.Hour, mallory.cred)
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(mallory)
		}},
		{"AoR not matching the certificate", func() (*wire.StoreReq, Origin) {
			// Mallory, with her own key and Node-ID, at Alice's resource.
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(mallory.node[:], sipReg(mallory.node)), now, time.Hour, mallory.cred)
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(mallory)
		}},
		{"dictionary key not the signer's Node-ID", func() (*wire.StoreReq, Origin) {
			other := newUser(t, "bob").node
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(other[:], sipReg(alice.node)), now, time.Hour, alice.cred)
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"tampered value", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(alice.node)), now, time.Hour, alice.cred)
			sd.Value.Dictionary.Value.Value = sipReg(mallory.node) // redirect Alice's calls
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"tampered storage time", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(alice.node)), now, time.Hour, alice.cred)
			sd.StorageTime += 1000
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"signature moved to another resource", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(alice.node)), now, time.Hour, alice.cred)
			other := kinds.UserResourceID("alice@other.example")
			return storeReq(other, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"unsigned", func() (*wire.StoreReq, Origin) {
			sd := wire.StoredData{StorageTime: uint64(now.UnixMilli()), Lifetime: 3600, Value: wire.DictionaryValue(alice.node[:], sipReg(alice.node)),
				Signature: wire.Signature{Algorithm: wire.AlgNone, Identity: wire.NoneIdentity}}
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"certificate missing", func() (*wire.StoreReq, Origin) {
			// Mallory's own registration, but her certificate is neither sent nor retained.
			rid, sd := sipValue(t, mallory, now, time.Hour)
			return storeReq(rid, wire.KindSIPRegistration, 0, sd), Origin{}
		}},
		{"identity names a different certificate", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(alice.node)), now, time.Hour, mallory.cred)
			sd.Signature.Identity = wire.CertHashIdentity(alice.cert())
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"message signed by another user", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], sipReg(alice.node)), now, time.Hour, alice.cred)
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), Origin{Certs: []*x509.Certificate{alice.cert(), mallory.cert()}, Signer: mallory.cert()}
		}},
		{"not a SipRegistration", func() (*wire.StoreReq, Origin) {
			sd, _ := NewValue(aliceRID, wire.KindSIPRegistration, wire.DictionaryValue(alice.node[:], []byte{9, 9, 9}), now, time.Hour, alice.cred)
			return storeReq(aliceRID, wire.KindSIPRegistration, 0, sd), origin(alice)
		}},
		{"certificate by node at someone else's Node-ID", func() (*wire.StoreReq, Origin) {
			rid := kinds.NodeResourceID(alice.node)
			sd, _ := NewValue(rid, wire.KindCertificateByNode, wire.ArrayValue(0xffffffff, mallory.cert().Raw), now, time.Hour, mallory.cred)
			return storeReq(rid, wire.KindCertificateByNode, 0, sd), origin(mallory)
		}},
		{"certificate by user under someone else's name", func() (*wire.StoreReq, Origin) {
			rid := kinds.UserResourceID(alice.name)
			sd, _ := NewValue(rid, wire.KindCertificateByUser, wire.ArrayValue(0xffffffff, mallory.cert().Raw), now, time.Hour, mallory.cred)
			return storeReq(rid, wire.KindCertificateByUser, 0, sd), origin(mallory)
		}},
		{"TURN-SERVICE at a resource not H(Node-ID || i)", func() (*wire.StoreReq, Origin) {
			rid := kinds.NodeMultipleResourceID(alice.node, 1)
			sd, _ := NewValue(rid, wire.KindTURNService, wire.SingleValue([]byte{1, 1, 127, 0, 0, 1, 0x0d, 0x96}), now, time.Hour, mallory.cred)
			return storeReq(rid, wire.KindTURNService, 0, sd), origin(mallory)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			e := newTestEngine(t, c)
			// Alice's genuine registration is there first; nothing may change it.
			rid, good := sipValue(t, alice, now.Add(-time.Minute), time.Hour)
			if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, good), origin(alice)); err != nil {
				t.Fatal(err)
			}
			before, gen := fetchAll(t, e, aliceRID, wire.KindSIPRegistration)
			st := e.Stats()
			req, o := tc.make()
			_, err := e.Store(req, o)
			wantCode(t, err, wire.ErrForbidden)
			after, gen2 := fetchAll(t, e, aliceRID, wire.KindSIPRegistration)
			if gen != gen2 || len(after) != len(before) || !bytes.Equal(after[0].Signature.Value, before[0].Signature.Value) || e.Stats() != st {
				t.Fatalf("refused store changed state")
			}
		})
	}
}

func TestUntrustedAndExpiredCertificates(t *testing.T) {
	u := newUser(t, "alice")
	c := newClock()
	e := NewEngine(kinds.Default(), Options{Now: c.Now, Trust: func([]*x509.Certificate, time.Time) error { return errors.New("not our CA") }})
	rid, sd := sipValue(t, u, c.Now(), time.Hour)
	_, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u))
	wantCode(t, err, wire.ErrForbidden)

	// A value whose certificate expires is no longer served (RFC 6940 §7.1).
	e = newTestEngine(t, c)
	if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u)); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Until(u.cert().NotAfter) + time.Hour)
	if vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration); len(vals) != 0 {
		t.Fatalf("value of an expired certificate served")
	}
	sd2, _ := NewValue(rid, wire.KindSIPRegistration, sd.Value, c.Now(), time.Hour, u.cred)
	_, err = e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd2), origin(u))
	wantCode(t, err, wire.ErrForbidden)
}

func TestPerUserQuota(t *testing.T) {
	c := newClock()
	reg := testRegistry()
	e := NewEngine(reg, Options{Now: c.Now, MaxRecordsPerUser: 4})
	u, v := newUser(t, "alice"), newUser(t, "bob")
	store := func(u *user, key string) error {
		rid := kinds.UserResourceID(u.name)
		sd := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte(key), []byte("x")), c.Now())
		_, err := e.Store(storeReq(rid, kindDict, 0, sd), origin(u))
		return err
	}
	single := func(u *user) error {
		rid := kinds.UserResourceID(u.name)
		sd := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("x")), c.Now())
		_, err := e.Store(storeReq(rid, kindSingle, 0, sd), origin(u))
		return err
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := store(u, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := single(u); err != nil {
		t.Fatal(err)
	}
	rid := kinds.UserResourceID(u.name)
	arr := signed(t, u, rid, kindArray, wire.ArrayValue(0, []byte("x")), c.Now())
	_, err := e.Store(storeReq(rid, kindArray, 0, arr), origin(u))
	wantCode(t, err, wire.ErrDataTooLarge)
	// Another user is not affected.
	if err := store(v, "a"); err != nil {
		t.Fatalf("other user: %v", err)
	}
	if n, _ := e.UserUsage(u.name); n != 4 {
		t.Fatalf("usage %d, want 4", n)
	}
}

func TestPerPeerCap(t *testing.T) {
	c := newClock()
	e := NewEngine(testRegistry(), Options{Now: c.Now, MaxRecords: 2})
	for i, name := range []string{"a1", "a2", "a3"} {
		u := newUser(t, name)
		rid := kinds.UserResourceID(u.name)
		sd := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("x")), c.Now())
		_, err := e.Store(storeReq(rid, kindSingle, 0, sd), origin(u))
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			wantCode(t, err, wire.ErrDataTooLarge)
		}
	}
}

func TestStat(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	sd := signed(t, u, rid, kindDict, wire.DictionaryValue([]byte("k"), []byte("hello")), c.Now())
	if _, err := e.Store(storeReq(rid, kindDict, 0, sd), origin(u)); err != nil {
		t.Fatal(err)
	}
	ans, err := e.Stat(&wire.StatReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kindDict}}})
	if err != nil {
		t.Fatal(err)
	}
	kr := ans.KindResponses[0]
	want := MetaDataOf(true, []byte("hello"))
	if kr.Generation != 1 || len(kr.Values) != 1 || kr.Values[0].MetaData.MetaData.ValueLength != 5 ||
		!bytes.Equal(kr.Values[0].MetaData.MetaData.HashValue, want.HashValue) || string(kr.Values[0].MetaData.Key) != "k" {
		t.Fatalf("stat: %+v", kr)
	}
	// The StatAns encodes.
	if _, err := ans.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	e, c := modelEngine(t)
	var rids []wire.ResourceID
	for _, n := range []string{"f1", "f2", "f3"} {
		u := newUser(t, n)
		rid := kinds.UserResourceID(u.name)
		sd := signed(t, u, rid, kindSingle, wire.SingleValue([]byte("x")), c.Now())
		if _, err := e.Store(storeReq(rid, kindSingle, 0, sd), origin(u)); err != nil {
			t.Fatal(err)
		}
		rids = append(rids, rid)
	}
	for _, target := range rids {
		ans, err := e.Find(&wire.FindReq{Resource: target, Kinds: []wire.KindID{kindSingle, kindArray, 0x9999}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ans.Results[0].Closest, target) {
			t.Fatalf("closest to %s is %s", target, ans.Results[0].Closest)
		}
		if len(ans.Results[1].Closest) != 0 || len(ans.Results[2].Closest) != 0 {
			t.Fatalf("kinds with nothing stored: %+v", ans.Results)
		}
	}
	_, err := e.Find(&wire.FindReq{Resource: rids[0], Kinds: []wire.KindID{kindSingle, kindSingle}}, nil)
	wantCode(t, err, wire.ErrInvalidMessage)
}

func TestCertificateAndTURNKinds(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	byNode := kinds.NodeResourceID(u.node)
	sd := signed(t, u, byNode, wire.KindCertificateByNode, wire.ArrayValue(0xffffffff, u.cert().Raw), c.Now())
	if _, err := e.Store(storeReq(byNode, wire.KindCertificateByNode, 0, sd), origin(u)); err != nil {
		t.Fatalf("CERTIFICATE_BY_NODE: %v", err)
	}
	byUser := kinds.UserResourceID(u.name)
	sd = signed(t, u, byUser, wire.KindCertificateByUser, wire.ArrayValue(0xffffffff, u.cert().Raw), c.Now())
	if _, err := e.Store(storeReq(byUser, wire.KindCertificateByUser, 0, sd), origin(u)); err != nil {
		t.Fatalf("CERTIFICATE_BY_USER: %v", err)
	}
	turn := kinds.NodeMultipleResourceID(u.node, 7)
	ts, _ := (&kinds.TurnServer{Iteration: 7, Addr: netip.MustParseAddrPort("127.0.0.1:3478")}).MarshalBinary()
	sd = signed(t, u, turn, wire.KindTURNService, wire.SingleValue(ts), c.Now())
	if _, err := e.Store(storeReq(turn, wire.KindTURNService, 0, sd), origin(u)); err != nil {
		t.Fatalf("TURN-SERVICE: %v", err)
	}
	if st := e.Stats(); st.Records != 3 || st.Certificates != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReplicaSyncMarks(t *testing.T) {
	c := newClock()
	a, b := newTestEngine(t, c), newTestEngine(t, c)
	u := newUser(t, "alice")
	rid, sd := sipValue(t, u, c.Now(), time.Hour)
	if _, err := a.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u)); err != nil {
		t.Fatal(err)
	}
	req, certs, ver, ok := a.Snapshot(rid, 1)
	if !ok {
		t.Fatal("no snapshot")
	}
	from := wire.NodeID{1}
	if _, err := b.Store(req, Origin{Certs: certs, From: from}); err != nil {
		t.Fatal(err)
	}
	a.MarkPushed(rid, wire.NodeID{2}, ver)
	if !a.Pushed(rid, wire.NodeID{2}) || a.Pushed(rid, wire.NodeID{3}) {
		t.Fatal("push marks")
	}
	if !b.Pushed(rid, from) {
		t.Fatal("receiver did not record the sender as holding its copy")
	}
	// Identical replica re-store: nothing changes, no signature work needed.
	before := b.Resources()[0].Version
	if _, err := b.Store(req, Origin{Certs: certs, From: from}); err != nil {
		t.Fatal(err)
	}
	if b.Resources()[0].Version != before {
		t.Fatal("identical replica store changed the version")
	}
	// The replica's copy verifies against the original signer.
	vals, _ := fetchAll(t, b, rid, wire.KindSIPRegistration)
	ver2 := &Verifier{Kinds: b.Kinds(), Now: c.Now}
	if _, err := ver2.Verify(rid, wire.KindSIPRegistration, &vals[0], certs); err != nil {
		t.Fatal(err)
	}
}

func TestSIPDomainRestriction(t *testing.T) {
	c := newClock()
	reg := kinds.Default()
	d, err := kinds.NewDomainRestriction(testOverlay, true, []string{`other\.example`})
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(kinds.SIPRegistrationRestricted(d))
	e := NewEngine(reg, Options{Now: c.Now})
	u := newUser(t, "alice")
	rid, sd := sipValue(t, u, c.Now(), time.Hour)
	_, err = e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u))
	wantCode(t, err, wire.ErrForbidden)
}

// The identity package's certificates carry what the policies need.
func TestIdentityCertificates(t *testing.T) {
	u := newUser(t, "carol")
	s := kinds.SignerFromCert(u.cert())
	if s.User != "carol@"+testOverlay || len(s.NodeIDs) != 1 || s.NodeIDs[0] != u.node {
		t.Fatalf("signer %+v", s)
	}
	if wire.NodeID(identity.NodeIDsFromCert(u.cert())[0]) != u.node {
		t.Fatal("node id")
	}
}

// TestReplicaGenerationIsTheMessages: a replica store sets the generation counter to the
// one in the message, lower ones included, and does not take the maximum (RFC 6940
// §7.4.1.1: "MUST set the generation counter to match ... MUST NOT check").
func TestReplicaGenerationIsTheMessages(t *testing.T) {
	e, c := modelEngine(t)
	u := newUser(t, "alice")
	rid := kinds.UserResourceID(u.name)
	for i, gen := range []uint64{40, 7, 9} {
		c.Advance(time.Millisecond)
		rep := storeReq(rid, kindSingle, gen, signed(t, u, rid, kindSingle, wire.SingleValue([]byte{byte(i)}), c.Now()))
		rep.ReplicaNumber = 1
		ans, err := e.Store(rep, Origin{Certs: []*x509.Certificate{u.cert()}})
		if err != nil || ans.KindResponses[0].GenerationCounter != gen {
			t.Fatalf("replica store %d with generation %d: %v %+v", i, gen, err, ans)
		}
	}
	// The same value again under another generation: the counter follows the message.
	req, _, _, _ := e.Snapshot(rid, 1)
	req.KindData[0].GenerationCounter = 3
	if ans, err := e.Store(req, Origin{Certs: []*x509.Certificate{u.cert()}}); err != nil || ans.KindResponses[0].GenerationCounter != 3 {
		t.Fatalf("unchanged replica store with generation 3: %v %+v", err, ans)
	}
}

// TestExpiredValueNotRevived: a value that expired is not stored again by a Store of the
// same value (same storage_time and signature) with a fresh lifetime — the lifetime is not
// signed (RFC 6940 §7.1) — neither as a replica store nor as an original one, whether it
// was swept already or is found expired by the Store itself; a newer value still is.
func TestExpiredValueNotRevived(t *testing.T) {
	for _, swept := range []bool{true, false} {
		e, c := modelEngine(t)
		u := newUser(t, "alice")
		rid, sd := sipValue(t, u, c.Now(), 60*time.Second)
		if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), origin(u)); err != nil {
			t.Fatal(err)
		}
		c.Advance(61 * time.Second)
		if swept && e.Sweep() != 1 {
			t.Fatal("not swept")
		}
		fresh := sd
		fresh.Lifetime = 3600
		rep := storeReq(rid, wire.KindSIPRegistration, 5, fresh)
		rep.ReplicaNumber = 1
		if _, err := e.Store(rep, Origin{Certs: []*x509.Certificate{u.cert()}}); err != nil {
			t.Fatalf("swept %v: replica store: %v", swept, err)
		}
		if vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration); len(vals) != 0 {
			t.Fatalf("swept %v: expired value revived by a replica store with a fresh lifetime: %+v", swept, vals)
		}
		_, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, fresh), origin(u))
		wantCode(t, err, wire.ErrDataTooOld)
		_, newer := sipValue(t, u, c.Now(), 60*time.Second)
		if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, newer), origin(u)); err != nil {
			t.Fatalf("swept %v: a newer value: %v", swept, err)
		}
		if vals, _ := fetchAll(t, e, rid, wire.KindSIPRegistration); len(vals) != 1 {
			t.Fatalf("swept %v: newer value not stored: %+v", swept, vals)
		}
	}
}
