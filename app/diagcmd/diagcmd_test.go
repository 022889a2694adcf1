package diagcmd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
)

// overlay starts three storing peers, the last one registered as "dave".
func overlay(t *testing.T, ctx context.Context, name string) (boot string, dave *peer.Peer) {
	t.Helper()
	var addrs []string
	var peers []*peer.Peer
	for i, user := range []string{"", "", "dave"} {
		p, err := peer.New(peer.Config{Profile: t.TempDir(), User: user, Overlay: name, Listen: "127.0.0.1:0", Bootstrap: addrs,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := p.Register(ctx); err != nil {
				t.Fatal(err)
			}
			dave = p
		}
		addrs = append(addrs, p.Addr().String())
		peers = append(peers, p)
	}
	// The ring settles after dave registered: wait until every peer finds him.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range peers {
		for {
			if _, err := p.Lookup(ctx, "dave"); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("dave not found from %v: %v", p.NodeID(), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs[0], dave
}

// TestCommand (issue 20 item 1): `chordphone diag inspect dave` prints dave's device's
// diagnostics and `chordphone diag path NODE-ID` the path to it, each hop with its
// round-trip time, from a fresh profile joined as a client.
func TestCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot, dave := overlay(t, ctx, "diagcmd.test")
	flags := func() []string {
		return []string{"--profile", t.TempDir(), "--user", "eve", "--overlay", "diagcmd.test", "--bootstrap", boot, "--listen", "127.0.0.1:0"}
	}
	var out, errs bytes.Buffer
	if code := Command(ctx, append([]string{"inspect", "dave"}, flags()...), &out, &errs); code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errs.String())
	}
	t.Logf("inspect:\n%s", out.String())
	for _, want := range []string{dave.NodeID().String(), "ROUTING_TABLE_SIZE:", "SOFTWARE_VERSION:", "APP_UPTIME:", "DATASIZE_STORED:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "MEMORY_FOOTPRINT") {
		t.Error("another node was told MEMORY_FOOTPRINT")
	}
	out.Reset()
	if code := Command(ctx, append([]string{"path", dave.NodeID().String()}, flags()...), &out, &errs); code != 0 {
		t.Fatalf("path: exit %d: %s", code, errs.String())
	}
	t.Logf("path:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[len(lines)-1], dave.NodeID().String()) || !strings.HasSuffix(lines[len(lines)-1], "ms") {
		t.Errorf("path does not end at dave with a round-trip time: %q", lines)
	}
	if code := Command(ctx, []string{"inspect"}, &out, &errs); code != 2 {
		t.Errorf("no target: exit %d, want 2", code)
	}
}
