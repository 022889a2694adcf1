package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCache: a verified document kept in a profile comes back verified; a tampered copy
// is refused, and a source never cached says so.
func TestCache(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	in := operatorConfig(t, ca, signer)
	doc, err := Encode(signer, in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseOverlay(doc, "overlay.test")
	if err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	const src = "https://overlay.test/.well-known/reload-config"
	if _, _, err := LoadCached(profile, src, ""); !errors.Is(err, ErrNotCached) {
		t.Fatalf("empty profile: %v", err)
	}
	if err := SaveCached(profile, src, c); err != nil {
		t.Fatal(err)
	}
	got, saved, err := LoadCached(profile, src, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.InstanceName != "overlay.test" || got.Sequence != 3 || len(got.BootstrapNodes) != 2 || saved.IsZero() {
		t.Fatalf("cached %+v saved %v", got, saved)
	}
	if _, _, err := LoadCached(profile, "https://other.test/.well-known/reload-config", ""); !errors.Is(err, ErrNotCached) {
		t.Fatalf("another source: %v", err)
	}
	// A copy changed on disk no longer verifies.
	files, _ := filepath.Glob(filepath.Join(profile, CacheDir, "*.xml"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	for i := range b {
		if string(b[i:i+4]) == "6084" {
			copy(b[i:], "6085")
			break
		}
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadCached(profile, src, ""); err == nil {
		t.Fatal("a tampered copy was accepted")
	}
}
