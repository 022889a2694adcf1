package storage

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// FuzzEngineStore feeds arbitrary StoreReq and FetchReq bodies to an engine
// holding a genuine registration: nothing panics, and a refused store
// leaves the engine as it was.
func FuzzEngineStore(f *testing.F) {
	u := newUser(f, "fuzz")
	rid, sd := sipValue(f, u, time.Now(), time.Hour)
	good, _ := storeReq(rid, wire.KindSIPRegistration, 0, sd).MarshalBinary()
	fetch, _ := (&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary}}}).MarshalBinary()
	f.Add(good, fetch)
	f.Add([]byte{16}, []byte{0})
	reg := kinds.Default()
	f.Fuzz(func(t *testing.T, store, fetchB []byte) {
		e := NewEngine(reg, Options{})
		o := Origin{Certs: []*x509.Certificate{u.cert()}}
		var base wire.StoreReq
		_ = base.UnmarshalKinds(good, reg)
		if _, err := e.Store(&base, o); err != nil {
			t.Fatal(err)
		}
		before := e.Stats()
		var req wire.StoreReq
		if req.UnmarshalKinds(store, reg) == nil {
			if _, err := e.Store(&req, o); err != nil && e.Stats() != before {
				t.Fatalf("refused store changed the engine: %v", err)
			}
		}
		var fr wire.FetchReq
		if fr.UnmarshalKinds(fetchB, reg) == nil {
			if ans, _, err := e.Fetch(&fr); err == nil {
				if _, err := ans.MarshalBinary(); err != nil {
					t.Fatalf("fetch answer does not encode: %v", err)
				}
			}
			if ans, err := e.Stat(&fr); err == nil {
				if _, err := ans.MarshalBinary(); err != nil {
					t.Fatalf("stat answer does not encode: %v", err)
				}
			}
		}
		var fd wire.FindReq
		if fd.UnmarshalBinary(fetchB) == nil {
			_, _ = e.Find(&fd, nil)
		}
	})
}
