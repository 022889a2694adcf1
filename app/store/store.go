// Package store keeps a profile's contacts, call history and settings in an embedded bbolt
// database. Every write is one transaction committed with fsync, so a crash (even kill -9 in
// the middle of a write) leaves either the old or the new data, never a corrupt file.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside the profile directory.
const FileName = "chordphone.db"

// DefaultHistoryLimit is how many call history entries are kept; older ones are dropped.
const DefaultHistoryLimit = 1000

var (
	bucketContacts = []byte("contacts")
	bucketHistory  = []byte("history")
	bucketSettings = []byte("settings")
)

// Errors a caller can test for.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("a contact with this user already exists")
	ErrInvalid   = errors.New("invalid")
	ErrLocked    = errors.New("profile database is in use by another Chordphone")
	ErrClosed    = errors.New("store is closed")
)

// Contact is someone the user calls.
type Contact struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"` // display name
	User string `json:"user"` // user name: the user part of the AoR
	AoR  string `json:"aor,omitempty"`
	// Fingerprint is the pinned certificate fingerprint of the contact's identity; empty
	// when no key is pinned yet (pinned on first call).
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Direction of a history entry.
type Direction string

// History directions.
const (
	Incoming Direction = "incoming"
	Outgoing Direction = "outgoing"
	Missed   Direction = "missed"
)

// HistoryEntry is one call in the history.
type HistoryEntry struct {
	ID        uint64        `json:"id"`
	Direction Direction     `json:"direction"`
	Peer      string        `json:"peer"` // user name
	AoR       string        `json:"aor,omitempty"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration"` // talk time; 0 for missed or unanswered calls
	// Reason is what happened: how the call ended ("remote hangup", "declined", "busy", "no
	// answer", "cancelled", "connection lost", ...) or "failed: <why>". Empty in entries
	// written before it existed.
	Reason string `json:"reason,omitempty"`
}

// Store is an open profile database. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
	// HistoryLimit bounds the history (DefaultHistoryLimit when 0).
	HistoryLimit int
}

// Open opens (creating if needed) the database in profileDir. Only one process may have a
// profile open; a second one gets ErrLocked after a short wait.
func Open(profileDir string) (*Store, error) {
	if err := os.MkdirAll(profileDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating profile directory: %w", err)
	}
	path := filepath.Join(profileDir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: opening %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	db.NoSync = false // fsync every commit: a returned write survives a crash
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContacts, bucketHistory, bucketSettings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: preparing %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Check verifies the database's structure and that every record decodes.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: consistency: %w", err)
		}
		if err := tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			var c Contact
			return decode(v, &c)
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
			var h HistoryEntry
			return decode(v, &h)
		})
	})
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func decode(v []byte, x any) error {
	if err := json.Unmarshal(v, x); err != nil {
		return fmt.Errorf("store: corrupt record: %w", err)
	}
	return nil
}

// ---- contacts ----

func validContact(c *Contact) error {
	c.Name = strings.TrimSpace(c.Name)
	c.User = strings.TrimSpace(c.User)
	c.AoR = strings.TrimSpace(c.AoR)
	if c.User == "" {
		return fmt.Errorf("%w contact: user name is empty", ErrInvalid)
	}
	if c.Name == "" {
		c.Name = c.User
	}
	return nil
}

// Contacts returns all contacts sorted by name.
func (s *Store) Contacts() ([]Contact, error) {
	var out []Contact
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			var c Contact
			if err := decode(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Contact) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.User, b.User)
	})
	return out, err
}

// Contact returns the contact with id.
func (s *Store) Contact(id uint64) (Contact, error) {
	var c Contact
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketContacts).Get(key(id))
		if v == nil {
			return fmt.Errorf("contact %d: %w", id, ErrNotFound)
		}
		return decode(v, &c)
	})
	return c, err
}

// ContactByUser returns the contact whose user name is user (case-sensitive).
func (s *Store) ContactByUser(user string) (Contact, error) {
	var found Contact
	err := s.view(func(tx *bolt.Tx) error {
		c, ok, err := byUser(tx, user)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("contact %q: %w", user, ErrNotFound)
		}
		found = c
		return nil
	})
	return found, err
}

func byUser(tx *bolt.Tx, user string) (Contact, bool, error) {
	var found Contact
	var ok bool
	err := tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
		var c Contact
		if err := decode(v, &c); err != nil {
			return err
		}
		if c.User == user {
			found, ok = c, true
		}
		return nil
	})
	return found, ok, err
}

// AddContact adds c (its ID is assigned) and returns it as stored.
func (s *Store) AddContact(c Contact) (Contact, error) {
	if err := validContact(&c); err != nil {
		return c, err
	}
	err := s.update(func(tx *bolt.Tx) error { return addContact(tx, &c) })
	return c, err
}

func addContact(tx *bolt.Tx, c *Contact) error {
	if _, dup, err := byUser(tx, c.User); err != nil {
		return err
	} else if dup {
		return fmt.Errorf("adding %q: %w", c.User, ErrDuplicate)
	}
	b := tx.Bucket(bucketContacts)
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	c.ID = id
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put(key(id), v)
}

// UpdateContact replaces the contact with c.ID.
func (s *Store) UpdateContact(c Contact) error {
	if err := validContact(&c); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		if b.Get(key(c.ID)) == nil {
			return fmt.Errorf("contact %d: %w", c.ID, ErrNotFound)
		}
		if other, dup, err := byUser(tx, c.User); err != nil {
			return err
		} else if dup && other.ID != c.ID {
			return fmt.Errorf("renaming to %q: %w", c.User, ErrDuplicate)
		}
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put(key(c.ID), v)
	})
}

// DeleteContact removes the contact with id.
func (s *Store) DeleteContact(id uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		if b.Get(key(id)) == nil {
			return fmt.Errorf("contact %d: %w", id, ErrNotFound)
		}
		return b.Delete(key(id))
	})
}

// ---- history ----

// AddHistory appends e (its ID is assigned) and drops the oldest entries beyond HistoryLimit.
func (s *Store) AddHistory(e HistoryEntry) (HistoryEntry, error) {
	switch e.Direction {
	case Incoming, Outgoing, Missed:
	default:
		return e, fmt.Errorf("%w history direction %q", ErrInvalid, e.Direction)
	}
	if e.Peer == "" {
		return e, fmt.Errorf("%w history entry: empty peer", ErrInvalid)
	}
	if e.Duration < 0 {
		e.Duration = 0
	}
	err := s.update(func(tx *bolt.Tx) error { return s.addHistory(tx, &e) })
	return e, err
}

func (s *Store) addHistory(tx *bolt.Tx, e *HistoryEntry) error {
	b := tx.Bucket(bucketHistory)
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.ID = id
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := b.Put(key(id), v); err != nil {
		return err
	}
	limit := s.HistoryLimit
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	// IDs are consecutive (entries are only dropped from the oldest end), so the count is
	// newest-oldest+1.
	for {
		k, _ := b.Cursor().First()
		if k == nil || id-binary.BigEndian.Uint64(k)+1 <= uint64(limit) {
			return nil
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
}

// History returns up to limit entries (all when limit <= 0), newest first.
func (s *Store) History(limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var e HistoryEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ClearHistory removes every history entry.
func (s *Store) ClearHistory() error {
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketHistory); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketHistory)
		return err
	})
}

// ---- settings ----

// Setting returns the value of key and whether it is set.
func (s *Store) Setting(key string) (string, bool, error) {
	var val string
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSettings).Get([]byte(key)); v != nil {
			val, ok = string(v), true
		}
		return nil
	})
	return val, ok, err
}

// SetSetting sets key to value.
func (s *Store) SetSetting(key, value string) error {
	if key == "" {
		return fmt.Errorf("%w setting: empty key", ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSettings).Put([]byte(key), []byte(value))
	})
}

// SetSettings sets several keys in one transaction: all or none survive a crash.
func (s *Store) SetSettings(kv map[string]string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		for k, v := range kv {
			if k == "" {
				return fmt.Errorf("%w setting: empty key", ErrInvalid)
			}
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSetting removes key.
func (s *Store) DeleteSetting(key string) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSettings).Delete([]byte(key)) })
}

// Settings returns every setting.
func (s *Store) Settings() (map[string]string, error) {
	out := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, err
}
