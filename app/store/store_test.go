package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContactsCRUD(t *testing.T) {
	s := open(t, t.TempDir())
	bob, err := s.AddContact(Contact{Name: " Bob ", User: "bob", AoR: "sip:bob@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID == 0 || bob.Name != "Bob" {
		t.Fatalf("added %+v", bob)
	}
	alice, err := s.AddContact(Contact{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if alice.Name != "alice" {
		t.Errorf("empty name should default to the user name, got %q", alice.Name)
	}
	if _, err := s.AddContact(Contact{Name: "Other Bob", User: "bob"}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate user: err = %v, want ErrDuplicate", err)
	}
	if _, err := s.AddContact(Contact{Name: "Nobody"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty user: err = %v, want ErrInvalid", err)
	}
	cs, err := s.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].User != "alice" || cs[1].User != "bob" {
		t.Fatalf("contacts = %+v, want alice, bob sorted by name", cs)
	}
	bob.Fingerprint = "AB:CD"
	bob.Name = "Robert"
	if err := s.UpdateContact(bob); err != nil {
		t.Fatal(err)
	}
	got, err := s.ContactByUser("bob")
	if err != nil || got.Name != "Robert" || got.Fingerprint != "AB:CD" {
		t.Fatalf("after update: %+v, %v", got, err)
	}
	alice.User = "bob"
	if err := s.UpdateContact(alice); !errors.Is(err, ErrDuplicate) {
		t.Errorf("renaming onto another contact's user: err = %v, want ErrDuplicate", err)
	}
	if err := s.DeleteContact(bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Contact(bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted contact: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteContact(bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: err = %v, want ErrNotFound", err)
	}
	if err := s.UpdateContact(Contact{ID: 999, User: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("updating a missing contact: err = %v, want ErrNotFound", err)
	}
}

func TestHistoryNewestFirstAndBounded(t *testing.T) {
	s := open(t, t.TempDir())
	s.HistoryLimit = 5
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 8 {
		dir := []Direction{Incoming, Outgoing, Missed}[i%3]
		if _, err := s.AddHistory(HistoryEntry{Direction: dir, Peer: fmt.Sprintf("u%d", i), Start: t0.Add(time.Duration(i) * time.Minute), Duration: time.Duration(i) * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 5 {
		t.Fatalf("history has %d entries, want the limit 5", len(h))
	}
	if h[0].Peer != "u7" || h[4].Peer != "u3" {
		t.Errorf("history = %v … %v, want newest u7 first and oldest kept u3", h[0].Peer, h[4].Peer)
	}
	if !h[0].Start.Equal(t0.Add(7*time.Minute)) || h[0].Duration != 7*time.Second || h[0].Direction != Outgoing {
		t.Errorf("entry did not round-trip: %+v", h[0])
	}
	if h2, _ := s.History(2); len(h2) != 2 || h2[1].Peer != "u6" {
		t.Errorf("History(2) = %+v", h2)
	}
	if _, err := s.AddHistory(HistoryEntry{Direction: "sideways", Peer: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad direction: err = %v, want ErrInvalid", err)
	}
	if err := s.ClearHistory(); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(0); len(h) != 0 {
		t.Errorf("after ClearHistory: %d entries", len(h))
	}
}

func TestSettingsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Setting("user"); ok {
		t.Fatal("unset setting reported as set")
	}
	if err := s.SetSettings(map[string]string{"user": "alice", "listen": ":5000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddContact(Contact{User: "bob"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Contacts(); !errors.Is(err, ErrClosed) {
		t.Errorf("use after Close: err = %v, want ErrClosed", err)
	}
	s = open(t, dir)
	if v, ok, err := s.Setting("user"); err != nil || !ok || v != "alice" {
		t.Fatalf("after reopen: user = %q, %v, %v", v, ok, err)
	}
	if err := s.DeleteSetting("listen"); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Settings()
	if len(all) != 1 || all["user"] != "alice" {
		t.Errorf("settings = %v", all)
	}
	if cs, _ := s.Contacts(); len(cs) != 1 {
		t.Errorf("contacts after reopen = %v", cs)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the lock timeout")
	}
	dir := t.TempDir()
	open(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
}

const crashEnv = "CHORDPHONE_STORE_CRASH_DIR"

// TestCrashWriter is the child of TestKillDuringWritesKeepsData: it writes until killed,
// printing "committed N" after each transaction returns.
func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestKillDuringWritesKeepsData")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	n := 0
	if v, ok, _ := s.Setting("n"); ok {
		n, _ = strconv.Atoi(v)
	}
	fp := strings.Repeat("AB:", 32)
	for ; ; n++ {
		// One transaction holds a contact, a history entry and the counter: they must
		// survive together or not at all.
		err := s.update(func(tx *bolt.Tx) error {
			c := Contact{Name: fmt.Sprintf("Contact %d", n), User: fmt.Sprintf("user%d", n), Fingerprint: fp}
			if err := addContact(tx, &c); err != nil {
				return err
			}
			h := HistoryEntry{Direction: Outgoing, Peer: c.User, Start: time.Now(), Duration: time.Second}
			if err := s.addHistory(tx, &h); err != nil {
				return err
			}
			return tx.Bucket(bucketSettings).Put([]byte("n"), []byte(strconv.Itoa(n+1)))
		})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Printf("committed %d\n", n+1)
	}
}

// Issue 12 point 5: kill -9 in the middle of writing contacts, history and settings never
// corrupts them, and every write that returned is still there.
func TestKillDuringWritesKeepsData(t *testing.T) {
	dir := t.TempDir()
	acked := 0
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, "HOME="+t.TempDir())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		seen := 0
		target := 40 + 17*round // kill at a different point of the write loop each round
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
			if v, ok := strings.CutPrefix(line, "committed "); ok {
				acked, _ = strconv.Atoi(v)
				if seen++; seen == target {
					// The child is in its next transaction now (it writes back to back).
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
		}
		_ = cmd.Wait()
		if seen < target {
			t.Fatalf("round %d: child stopped after %d commits", round, seen)
		}

		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		v, _, _ := s.Setting("n")
		n, _ := strconv.Atoi(v)
		cs, err := s.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.History(0)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if n < acked {
			t.Fatalf("round %d: counter %d < %d writes acknowledged before the kill: a committed write was lost", round, n, acked)
		}
		if len(cs) != n || len(h) != n {
			t.Fatalf("round %d: counter %d, %d contacts, %d history entries: a transaction was torn", round, n, len(cs), len(h))
		}
		if h[0].Peer != fmt.Sprintf("user%d", n-1) {
			t.Fatalf("round %d: newest history entry %q, want user%d", round, h[0].Peer, n-1)
		}
		t.Logf("round %d: killed after %d acknowledged writes; database holds %d, consistent", round, acked, n)
	}
}
