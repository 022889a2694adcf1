package peer_test

import (
	"context"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestUnknownKindTriggersConfigUpdate: alice's peer knows a private Kind from a ConfigUpdate
// of type kind (RFC 6940 §6.5.4.1) that the bootstrap peer never got. Her store of that Kind
// at a resource the bootstrap peer is responsible for is refused with Error_Unknown_Kind,
// and alice sends it the kind-block (§7.4.1.2: "A node which receives this error MUST
// generate a ConfigUpdate message which contains the appropriate Kind definition"): the
// bootstrap peer verifies it (signed by the overlay's kind-signer) and applies it, and the
// store then succeeds.
func TestUnknownKindTriggersConfigUpdate(t *testing.T) {
	const overlay = "kinds.test"
	const private wire.KindID = 0xf0000011 // private use (§14.4)
	op := startOperator(t, overlay)
	cfg := op.config(t, overlay)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	boot := operatorPeer(ctx, t, op, cfg)
	alice := enrolledPeer(t, op, cfg, cfg, "alice", []string{boot.Addr().String()})
	if err := alice.Join(ctx); err != nil {
		t.Fatal(err)
	}

	// The operator's kind-signer signs a definition of the private Kind.
	base := *op.srv.Config()
	base.Kinds = append(enroll.DefaultKinds(), config.Kind{ID: uint32(private), DataModel: "SINGLE",
		AccessControl: "NODE-MULTIPLE", MaxCount: 1, MaxSize: 64, MaxNodeMultiple: 20})
	op.srv.SetBase(&base)
	var block []byte
	for _, k := range op.config(t, overlay).Kinds {
		if k.ID == uint32(private) {
			block = config.EncodeKindBlock(k)
		}
	}
	if block == nil {
		t.Fatal("the operator's document has no private kind-block")
	}
	if err := peer.ApplyKinds(alice, [][]byte{block}); err != nil {
		t.Fatal(err)
	}
	if peer.KnowsKind(boot, private) {
		t.Fatal("the bootstrap peer knows the private Kind before any ConfigUpdate")
	}

	// One of the Kind's NODE-MULTIPLE resources of alice's is the bootstrap peer's.
	deadline := time.Now().Add(30 * time.Second)
	var rid wire.ResourceID
	for i := 1; ; i = i%20 + 1 { // i from 1 (RFC 6940 §7.3.4)
		rid = kinds.NodeMultipleResourceID(alice.NodeID(), i)
		err := peer.Store(ctx, alice, rid, private, wire.SingleValue([]byte("x")))
		if node.IsCode(err, wire.ErrUnknownKind) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no store reached the bootstrap peer: %v", err)
		}
		// nil: alice is responsible herself; another error: the ring is still forming
	}
	for !peer.KnowsKind(boot, private) {
		if time.Now().After(deadline) {
			t.Fatal("the bootstrap peer was sent no ConfigUpdate with the Kind (RFC 6940 §7.4.1.2)")
		}
		time.Sleep(20 * time.Millisecond) // no event for it
	}
	if err := peer.Store(ctx, alice, rid, private, wire.SingleValue([]byte("y"))); err != nil {
		t.Fatalf("store after the ConfigUpdate: %v", err)
	}
}
