package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPinStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "pins.json")
	s, err := OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, KeyECDSAP256)
	first, _ := NewSelfSigned(key, "bob", "lan.example", DigestSHA256)
	renewed, _ := NewSelfSigned(key, "bob", "lan.example", DigestSHA256)
	other, _ := NewSelfSigned(mustKey(t, KeyECDSAP256), "bob", "lan.example", DigestSHA256)

	if changed, err := CheckPin(s, "bob@lan.example", first.Cert()); err != nil || changed {
		t.Fatalf("first sight: changed=%v err=%v", changed, err)
	}
	if changed, err := CheckPin(s, "bob@lan.example", renewed.Cert()); err != nil || changed {
		t.Fatalf("same key renewed: changed=%v err=%v", changed, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pins file: %v %v", fi, err)
	}
	// A new process sees the pin.
	s2, err := OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	changed, old, err := s2.Check("bob@lan.example", other.Cert())
	if err != nil || !changed {
		t.Fatalf("other key: changed=%v err=%v", changed, err)
	}
	if old.KeySHA256 != KeyFingerprint(first.Cert()) {
		t.Errorf("old pin %+v", old)
	}
	if w := PinWarning("bob@lan.example", old, other.Cert()); !strings.Contains(w, "different key") {
		t.Errorf("warning %q", w)
	}
	// Still changed until accepted.
	if changed, _ := CheckPin(s2, "bob@lan.example", other.Cert()); !changed {
		t.Error("change forgotten without Accept")
	}
	if err := s2.Accept("bob@lan.example", other.Cert()); err != nil {
		t.Fatal(err)
	}
	if changed, _ := CheckPin(s2, "bob@lan.example", other.Cert()); changed {
		t.Error("accepted key reported changed")
	}
	if err := s2.Forget("bob@lan.example"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.Get("bob@lan.example"); ok {
		t.Error("pin not forgotten")
	}
	_ = os.WriteFile(path, []byte("{broken"), 0o600)
	if _, err := OpenPinStore(path); err == nil {
		t.Error("broken pins file accepted")
	}
}
