package handoff

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHandOver(t *testing.T) {
	profile, err := os.MkdirTemp("", "ho")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithCancel(context.Background())
	links, err := Listen(ctx, profile)
	if err != nil {
		t.Fatal(err)
	}
	link := "chordphone:join?overlay=lab.test&ca=sha256:" + strings.Repeat("ab", 32)
	if err := Send(profile, link); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-links:
		if got != link {
			t.Errorf("got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no link handed over")
	}
	if err := Send(profile, "rm -rf /"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a non-link: %v", err)
	}
	cancel()
	for range links { // closed once the listener has stopped
	}
	if _, err := os.Stat(filepath.Join(profile, SocketName)); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if err := Send(profile, link); err == nil {
		t.Error("sent to no phone")
	}
}
