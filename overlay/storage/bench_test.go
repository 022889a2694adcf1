package storage

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// benchRecords builds n SIP-REGISTRATIONs of n distinct users.
func benchRecords(b *testing.B, n int) ([]*wire.StoreReq, []*user) {
	b.Helper()
	reqs := make([]*wire.StoreReq, n)
	users := make([]*user, n)
	now := time.Now()
	for i := range n {
		u := freshUser(b, fmt.Sprintf("m%d", i))
		rid, sd := sipValue(b, u, now, time.Hour)
		reqs[i] = storeReq(rid, wire.KindSIPRegistration, 0, sd)
		users[i] = u
	}
	return reqs, users
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerRecord measures the heap one stored SIP-REGISTRATION
// costs a storing peer: "record" with the signer's certificate already in
// memory (shared), "record+cert" with the certificate parsed from the wire
// as a replica store delivers it (one certificate per user).
//
//	go test ./overlay/storage -run '^$' -bench MemoryPerRecord -benchtime 1x
func BenchmarkMemoryPerRecord(b *testing.B) {
	const n = 2000
	reqs, users := benchRecords(b, n)
	for _, withCert := range []bool{false, true} {
		name := "record"
		if withCert {
			name = "record+cert"
		}
		b.Run(name, func(b *testing.B) {
			var per float64
			for range b.N {
				// Keep the requests alive (they belong to the sender) and count only the engine.
				before := heap()
				origins := make([]Origin, n)
				for i, u := range users {
					c := u.cert()
					if withCert {
						var err error
						if c, err = x509.ParseCertificate(bytes.Clone(u.cert().Raw)); err != nil {
							b.Fatal(err)
						}
					}
					origins[i] = Origin{Certs: []*x509.Certificate{c}}
				}
				e := NewEngine(kinds.Default(), Options{})
				for i, r := range reqs {
					if _, err := e.Store(r, origins[i]); err != nil {
						b.Fatal(err)
					}
				}
				origins = nil
				after := heap()
				if e.Stats().Records != n {
					b.Fatal("records missing")
				}
				per = float64(after-before) / n
				runtime.KeepAlive(e)
				runtime.KeepAlive(reqs)
				runtime.KeepAlive(users)
			}
			b.ReportMetric(per, "B/record")
		})
	}
}

// BenchmarkStore measures one original SIP-REGISTRATION store (signature
// verification and access control included) on the engine.
func BenchmarkStore(b *testing.B) {
	reqs, users := benchRecords(b, 256)
	e := NewEngine(kinds.Default(), Options{})
	c := newClock()
	e.opts.Now = c.Now
	b.ResetTimer()
	for i := range b.N {
		u := users[i%len(users)]
		// A new storage time every round so that each store replaces the last.
		rid, sd := sipValue(b, u, c.Now().Add(time.Duration(i)*time.Millisecond), time.Hour)
		_ = reqs
		if _, err := e.Store(storeReq(rid, wire.KindSIPRegistration, 0, sd), Origin{Certs: []*x509.Certificate{u.cert()}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetch measures a wildcard SIP-REGISTRATION fetch on the engine.
func BenchmarkFetch(b *testing.B) {
	reqs, users := benchRecords(b, 256)
	e := NewEngine(kinds.Default(), Options{})
	for i, r := range reqs {
		if _, err := e.Store(r, Origin{Certs: []*x509.Certificate{users[i].cert()}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		rid := kinds.UserResourceID(users[i%len(users)].name)
		if _, _, err := e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary}}}); err != nil {
			b.Fatal(err)
		}
	}
}
