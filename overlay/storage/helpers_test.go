package storage

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

const testOverlay = "test.example"

// user is a test identity: a key, a self-signed certificate, a user name
// and a Node-ID.
type user struct {
	cred *Credentials
	name string
	node wire.NodeID
}

func (u *user) cert() *x509.Certificate { return u.cred.Cert() }

var (
	userMu    sync.Mutex
	userCache = map[string]*user{}
)

// newUser returns a (cached) self-signed identity for name.
func newUser(t testing.TB, name string) *user {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	if u := userCache[name]; u != nil {
		return u
	}
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, name, testOverlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	u := &user{cred: &Credentials{Key: id.Key, Chain: id.Chain}, name: kinds.SignerFromCert(id.Cert()).User, node: wire.NodeID(id.NodeID())}
	userCache[name] = u
	return u
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestEngine(t testing.TB, c *clock) *Engine {
	t.Helper()
	return NewEngine(kinds.Default(), Options{Now: c.Now})
}

// sipValue returns u's signed SIP-REGISTRATION for its own AoR at time at.
func sipValue(t testing.TB, u *user, at time.Time, life time.Duration) (wire.ResourceID, wire.StoredData) {
	t.Helper()
	rid := kinds.UserResourceID(u.name)
	reg, err := kinds.RouteRegistration(u.node, "")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(u.node[:], reg), at, life, u.cred)
	if err != nil {
		t.Fatal(err)
	}
	return rid, sd
}

func storeReq(rid wire.ResourceID, kind wire.KindID, gen uint64, values ...wire.StoredData) *wire.StoreReq {
	return &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{{Kind: kind, GenerationCounter: gen, Values: values}}}
}

func origin(u *user) Origin {
	return Origin{Certs: []*x509.Certificate{u.cert()}, Signer: u.cert(), From: u.node}
}

func wantCode(t testing.TB, err error, code wire.ErrorCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %v", code)
	}
	if got := CodeOf(err); got != code {
		t.Fatalf("got %v (%v), want %v", got, err, code)
	}
}

func fetchAll(t testing.TB, e *Engine, rid wire.ResourceID, kind wire.KindID) ([]wire.StoredData, uint64) {
	t.Helper()
	ans, _, err := e.Fetch(&wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{{Kind: kind, Model: mustModel(e, kind), Indices: []wire.ArrayRange{{First: 0, Last: 0xffffffff}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return ans.KindResponses[0].Values, ans.KindResponses[0].Generation
}

func mustModel(e *Engine, kind wire.KindID) wire.DataModel {
	m, _ := e.Kinds().DataModel(kind)
	return m
}
