package storage

import (
	"context"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestLookupAoRFullDictionary: an AoR with as many devices as SIP-REGISTRATION's
// max-count, each value signed by its own device certificate, does not fit in one
// FetchAns under max-message-size 5000. The responder answers
// Error_Response_Too_Large (RFC 6940 §6.3.2) and LookupAoR fetches the keys in
// batches (StatReq first, RFC 6940 §7.4.3) and finds every device.
func TestLookupAoRFullDictionary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCluster(t, 100)
	c.secure = true
	c.maxMsg = 5000
	c.grow(ctx, 2)
	c.waitRing(30 * time.Second)
	ps := c.live()
	const name = "carol"
	aor := freshUser(t, name).name
	rid := kinds.UserResourceID(aor)
	now := time.Now()
	var values []wire.StoredData
	var origin Origin
	for i := 0; i < kinds.DefaultSIPMaxCount; i++ {
		d := freshUser(t, name)
		v, err := kinds.RouteRegistration(d.node, "")
		if err != nil {
			t.Fatal(err)
		}
		sd, err := NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(d.node[:], v), now, time.Hour, d.cred)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, sd)
		origin.Certs = append(origin.Certs, d.cert())
	}
	for _, p := range ps {
		if _, err := p.eng.Store(storeReq(rid, wire.KindSIPRegistration, 0, values...), origin); err != nil {
			t.Fatalf("store at %s: %v", p.id, err)
		}
	}
	for _, p := range ps {
		if _, err := p.svc.Fetch(ctx, rid, wire.StoredDataSpecifier{Kind: wire.KindSIPRegistration}); err == nil {
			t.Fatal("the whole dictionary fitted in one answer: the test does not test batching")
		}
		got, err := p.svc.LookupAoR(ctx, aor)
		if err != nil {
			t.Fatalf("lookup from %s: %v", p.id, err)
		}
		if len(got) != kinds.DefaultSIPMaxCount {
			t.Fatalf("lookup from %s: %d registrations, want %d", p.id, len(got), kinds.DefaultSIPMaxCount)
		}
		for _, r := range got {
			if r.User != aor {
				t.Fatalf("registration of %s not verified (user %q)", r.Node, r.User)
			}
		}
	}
}
