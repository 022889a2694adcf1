package node_test

import (
	"context"
	"testing"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestConfigurationSequence: a request whose configuration_sequence differs from the
// destination's is refused with Error_Config_Too_Old or Error_Config_Too_New (RFC 6940
// §6.3.2.1); the node with the newer configuration is told to update the other (ConfigStale)
// in both cases, along the request's route; a ConfigUpdate with sequence 65535 is accepted
// whatever the receiver's sequence.
func TestConfigurationSequence(t *testing.T) {
	stale := make(chan []wire.Destination, 64)
	r := newRing(t, 4, func(i int, s *node.Settings) {
		if i == 0 {
			s.ConfigStale = func(_ context.Context, route []wire.Destination) {
				select {
				case stale <- route:
				default:
				}
			}
		}
	})
	newer, older := r.peers[0].n, r.peers[2].n
	for _, p := range r.peers {
		p.n.SetConfigurationSequence(5)
	}
	older.SetConfigurationSequence(4)
	updates := make(chan struct{}, 1)
	older.Handle(wire.CodeConfigUpdateReq, node.HandlerFunc(func(context.Context, *node.Request) (wire.Body, error) {
		updates <- struct{}{}
		return &wire.ConfigUpdateAns{}, nil
	}))

	_, err := older.Ping(ctx(t), []wire.Destination{wire.NodeDestination(newer.ID())})
	if !node.IsCode(err, wire.ErrConfigTooOld) {
		t.Fatalf("older ping to newer: %v, want Error_Config_Too_Old", err)
	}
	if route := staleFor(t, stale, older.ID()); route[len(route)-1].Node != older.ID() {
		t.Fatalf("ConfigStale route %v does not end at the older node", route)
	}
	for len(stale) > 0 {
		<-stale
	}
	_, err = newer.Ping(ctx(t), []wire.Destination{wire.NodeDestination(older.ID())})
	if !node.IsCode(err, wire.ErrConfigTooNew) {
		t.Fatalf("newer ping to older: %v, want Error_Config_Too_New", err)
	}
	staleFor(t, stale, older.ID())
	if _, err := newer.Request(ctx(t), []wire.Destination{wire.NodeDestination(older.ID())}, wire.CodeConfigUpdateReq,
		&wire.ConfigUpdateReq{Type: wire.ConfigUpdateConfig}, node.WithConfigurationSequence(0xffff)); err != nil {
		t.Fatalf("ConfigUpdate with sequence 65535: %v", err)
	}
	<-updates
	// Equal sequences: answered.
	older.SetConfigurationSequence(5)
	if _, err := older.Ping(ctx(t), []wire.Destination{wire.NodeDestination(newer.ID())}); err != nil {
		t.Fatalf("same sequence: %v", err)
	}
}

// staleFor returns the next ConfigStale route ending at id (ring maintenance between the
// older node and its neighbours reports it too).
func staleFor(t *testing.T, ch chan []wire.Destination, id wire.NodeID) []wire.Destination {
	t.Helper()
	for {
		select {
		case route := <-ch:
			if len(route) > 0 && route[len(route)-1].Node == id {
				return route
			}
		case <-ctx(t).Done():
			t.Fatal("no ConfigStale for the older node")
		}
	}
}
