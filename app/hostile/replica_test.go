package hostile

import (
	"fmt"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestReplicaStoreForgeries: a node that is neither responsible for a resource nor closer
// to it than the receiving peer sends replica stores (replica_number 1, RFC 6940 §7.4.1.1)
// of a user's genuine, newer value with a made-up generation counter to every peer of a
// four-peer ring, the responsible one and its replicas included: each refuses with
// Error_Forbidden and the data (values, generation counter) is unchanged everywhere.
func TestReplicaStoreForgeries(t *testing.T) {
	ps := startPeers(t, 4)
	mallory := newUser(t, "mallory")
	// A user whose Resource-ID follows mallory's Node-ID with no peer in between: mallory
	// is then farther from it than every peer (§10.1: clockwise distance).
	ids := []wire.NodeID{}
	for _, p := range ps {
		ids = append(ids, p.NodeID())
	}
	name := ""
	for k := 0; name == ""; k++ {
		n := fmt.Sprintf("alice%d", k)
		x := kinds.UserResourceID(n + "@" + overlayName).NodeID()
		name = n
		for _, id := range ids {
			if between(id, mallory.NodeID, x) {
				name = "" // a peer lies in (mallory, x]
			}
		}
	}
	alice := newUser(t, name)
	al := alice.dial(t, ps[0])
	now := time.Now()
	expectOK(t, "alice registers", call(t, alice, al, alice.storeMsg(alice.aor(), wire.KindSIPRegistration, alice.registration(t, alice.aor(), alice.NodeID, now))), wire.CodeStoreAns)
	before := snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration)
	newer := alice.registration(t, alice.aor(), alice.NodeID, now.Add(time.Second))
	for _, p := range ps {
		l := mallory.dial(t, p)
		m := mallory.Request(wire.CodeStoreReq, &wire.StoreReq{Resource: alice.aor(), ReplicaNumber: 1,
			KindData: []wire.StoreKindData{{Kind: wire.KindSIPRegistration, GenerationCounter: 999, Values: []wire.StoredData{newer}}}},
			wire.NodeDestination(p.NodeID()))
		expectCode(t, "replica store from mallory at "+p.NodeID().String(), call(t, mallory, l, m, alice.Chain[0]), wire.ErrForbidden)
	}
	sameSnapshot(t, "forged replica stores", before, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))
}
