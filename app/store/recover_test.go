package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A database with one record garbled on disk is moved aside and what is readable is kept.
func TestOpenRecoveringKeepsReadableRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := s.AddContact(Contact{User: u, Name: "Name of " + u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddHistory(HistoryEntry{Direction: Outgoing, Peer: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting("user", "dora"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"Name of bob"`))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	copy(b[i:], "\x00\x01garbage\xff\xfe") // bbolt has no checksums on data pages
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	s, rec, err := OpenRecovering(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec == nil {
		t.Fatal("the garbled database was not noticed")
	}
	t.Logf("recovery: %+v", rec)
	if rec.Kept != 4 || rec.Lost != 1 || !strings.Contains(filepath.Base(rec.MovedTo), FileName+".damaged-") {
		t.Errorf("recovery %+v: want 4 kept (2 contacts, 1 history entry, 1 setting), 1 lost", rec)
	}
	if _, err := os.Stat(rec.MovedTo); err != nil {
		t.Errorf("the damaged file is gone: %v", err)
	}
	cs, err := s.Contacts()
	if err != nil || len(cs) != 2 {
		t.Errorf("contacts after recovery: %v, %v", cs, err)
	}
	if v, ok, _ := s.Setting("user"); !ok || v != "dora" {
		t.Errorf("setting after recovery: %q %v", v, ok)
	}
	// New records do not reuse the kept ones' IDs.
	c, err := s.AddContact(Contact{User: "erin"})
	if err != nil || c.ID <= 3 {
		t.Errorf("new contact %+v, %v", c, err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("the new database: %v", err)
	}
}

// A file that is not a database at all is moved aside and a fresh one made.
func TestOpenRecoveringGarbage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	garbage := bytes.Repeat([]byte("not a bbolt database "), 1000)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	s, rec, err := OpenRecovering(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec == nil || rec.Kept != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	if b, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(b, garbage) {
		t.Errorf("the damaged file was not kept as it was: %v", err)
	}
	if _, err := s.AddContact(Contact{User: "bob"}); err != nil {
		t.Fatal(err)
	}
	// A healthy database is opened as it is.
	s.Close()
	s2, rec, err := OpenRecovering(dir)
	if err != nil || rec != nil {
		t.Fatalf("healthy database: %+v, %v", rec, err)
	}
	s2.Close()
}
