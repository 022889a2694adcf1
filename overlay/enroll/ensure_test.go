package enroll

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	profile := t.TempDir()
	lanDir := identity.OverlayDir(profile, config.LANOverlay)

	// Zero-configuration LAN overlay: self-signed, made once, then reused.
	lan := config.LAN()
	a, err := Ensure(ctx, lanDir, lan, "alice", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.SelfSigned() || a.User() != "alice@"+config.LANOverlay {
		t.Errorf("lan identity %q self-signed=%v", a.User(), a.SelfSigned())
	}
	again, err := Ensure(ctx, lanDir, lan, "alice@"+config.LANOverlay, Request{})
	if err != nil || again.NodeID() != a.NodeID() || identity.Fingerprint(again.Cert()) != identity.Fingerprint(a.Cert()) {
		t.Errorf("not reused: %v", err)
	}
	// A new user name keeps the key, so the Node-ID (digest of the key) stays.
	renamed, err := Ensure(ctx, lanDir, lan, "alicia", Request{})
	if err != nil || renamed.NodeID() != a.NodeID() || renamed.User() != "alicia@"+config.LANOverlay {
		t.Errorf("rename: %v %q", err, renamed.User())
	}

	// Named overlay with enrollment.
	o := startOverlay(t, false)
	_ = o.srv.Users.Add("alice", "alice-password")
	cfg := o.fetch(t)
	dir := identity.OverlayDir(profile, cfg.InstanceName)
	if filepath.Base(dir) != "overlay.test" {
		t.Errorf("dir %s", dir)
	}
	if _, err := Ensure(ctx, dir, cfg, "alice", Request{Password: "nope-nope", HTTPClient: o.client}); !errors.Is(err, ErrFailedAuthentication) {
		t.Errorf("wrong password: %v", err)
	}
	e, err := Ensure(ctx, dir, cfg, "alice", Request{Password: "alice-password", HTTPClient: o.client})
	if err != nil || e.SelfSigned() || e.User() != "alice@overlay.test" {
		t.Fatalf("enrolled: %v", err)
	}
	// Next start: no network needed, the stored certificate is accepted.
	e2, err := Ensure(ctx, dir, cfg, "alice", Request{})
	if err != nil || e2.NodeID() != e.NodeID() {
		t.Errorf("reuse enrolled: %v", err)
	}
	// The LAN identity is not accepted by the named overlay and vice versa.
	if _, err := config.VerifyPeerCert(cfg, a.Cert()); err == nil {
		t.Error("self-signed LAN certificate accepted by an enrolled overlay")
	}
}
