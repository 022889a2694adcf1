package phone

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
)

// waitEvent returns the next event of kind from events.
func waitEvent(t *testing.T, events <-chan Event, kind EventKind) Event {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events ended while waiting for %s", kind)
			}
			if e.Kind == EventError {
				t.Logf("error event: %s", e.Message)
			}
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestStoreForOthersSelectsRole: the setting "peer.store_for_others" (Settings → Peer)
// chooses between a storing peer and a RELOAD client (RFC 6940 §4.2); changing it makes
// the phone rejoin in the new role, which the joined event and Status report.
func TestStoreForOthersSelectsRole(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	boot, err := peer.New(peer.Config{Profile: t.TempDir(), Overlay: "role.test", Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := boot.Join(ctx); err != nil {
		t.Fatal(err)
	}
	defer boot.Close(context.Background())

	p, err := New(Config{Profile: t.TempDir(), User: "erin", Overlay: "role.test", Listen: "127.0.0.1:0",
		Bootstrap: []string{boot.Addr().String()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := p.Subscribe(64)
	defer unsubscribe()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }() // owner: this test; ends with stop
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	if j := waitEvent(t, events, EventJoined); j.Role != peer.RolePeer {
		t.Fatalf("joined as %q, want a peer by default", j.Role)
	}
	waitEvent(t, events, EventRegistered)
	if r := p.Status().Role; r != peer.RolePeer {
		t.Fatalf("status role %q", r)
	}

	for _, tc := range []struct {
		store bool
		role  string
	}{{false, peer.RoleClient}, {true, peer.RolePeer}} {
		if err := p.SetStoreForOthers(tc.store); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, EventLeft)
		if j := waitEvent(t, events, EventJoined); j.Role != tc.role {
			t.Fatalf("store for others %v: joined as %q, want %q", tc.store, j.Role, tc.role)
		}
		waitEvent(t, events, EventRegistered)
		st := p.Status()
		if st.Role != tc.role {
			t.Fatalf("store for others %v: status role %q, want %q", tc.store, st.Role, tc.role)
		}
		if v, _, _ := p.Store().Setting(settingStoreOthers); v != map[bool]string{true: "true", false: "false"}[tc.store] {
			t.Fatalf("setting %s = %q", settingStoreOthers, v)
		}
		// "registered" may come while the store is still being retried in the background
		// (storage.ErrRetrying): poll the lookup for a while.
		start := time.Now()
		for {
			regs, err := boot.Lookup(ctx, "erin")
			if err == nil && len(regs) == 1 {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("lookup erin as %s: %v %v", tc.role, regs, err)
			}
			time.Sleep(200 * time.Millisecond) // polling the overlay; no event for a remote store
		}
		t.Logf("erin found as %s after %v", tc.role, time.Since(start))
	}
}

// TestClientStartsAgainWhenCutOff: a client phone whose only peer goes away keeps no way
// into the overlay; after clientDetachedLimit the phone starts again, and it attaches once
// a peer answers at its bootstrap address.
func TestClientStartsAgainWhenCutOff(t *testing.T) {
	old := clientDetachedLimit
	clientDetachedLimit = 500 * time.Millisecond
	defer func() { clientDetachedLimit = old }()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	startBoot := func(listen string) *peer.Peer {
		b, err := peer.New(peer.Config{Profile: t.TempDir(), Overlay: "cutoff.test", Listen: listen, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Join(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}
	boot := startBoot("127.0.0.1:0")
	addr := boot.Addr().String()

	p, err := New(Config{Profile: t.TempDir(), User: "frank", Overlay: "cutoff.test", Listen: "127.0.0.1:0",
		Bootstrap: []string{addr}, Client: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := p.Subscribe(64)
	defer unsubscribe()
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }() // owner: this test; ends with stop
	defer func() {
		stop()
		<-done
	}()
	if j := waitEvent(t, events, EventJoined); j.Role != peer.RoleClient {
		t.Fatalf("joined as %q", j.Role)
	}
	waitEvent(t, events, EventRegistered)

	boot.Close(context.Background())
	waitEvent(t, events, EventLeft) // the phone starts again
	boot = startBoot(addr)          // a peer at the same address again
	defer boot.Close(context.Background())
	if j := waitEvent(t, events, EventJoined); j.Role != peer.RoleClient {
		t.Fatalf("joined again as %q", j.Role)
	}
	waitEvent(t, events, EventRegistered)
}
