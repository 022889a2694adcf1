package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recovery says what OpenRecovering did with a damaged database.
type Recovery struct {
	// Damage is why the file was taken for damaged.
	Damage error
	// MovedTo is where the damaged file now is (nothing is deleted).
	MovedTo string
	// Kept counts the records (contacts, history entries, settings) copied from it into the
	// new database; Lost counts those that could not be read.
	Kept, Lost int
}

// OpenRecovering opens the profile's database like Open. When the file is damaged (bbolt
// cannot open it, its structure is inconsistent, or a record does not decode), it moves the
// file aside as chordphone.db.damaged-TIMESTAMP, makes a fresh database and copies into it
// every record it can still read; rec says what happened. A database in use by another
// process (ErrLocked) and other errors (permissions) are errors, not damage.
func OpenRecovering(profileDir string) (st *Store, rec *Recovery, err error) {
	path := filepath.Join(profileDir, FileName)
	err = checkSafely(func() (err error) { st, err = Open(profileDir); return err })
	if err == nil {
		damage := checkSafely(st.Check)
		if damage == nil {
			return st, nil, nil
		}
		st.Close()
		err = damage
	} else if !damaged(err) {
		return nil, nil, err
	}
	rec = &Recovery{Damage: err}
	if rec.MovedTo, err = SetAside(path, "damaged", time.Now()); err != nil {
		return nil, nil, fmt.Errorf("store: %s is damaged (%v) and cannot be moved aside: %w", path, rec.Damage, err)
	}
	if st, err = Open(profileDir); err != nil {
		return nil, nil, err
	}
	rec.Kept, rec.Lost = st.salvage(rec.MovedTo)
	return st, rec, nil
}

// damaged reports whether an Open error means the file's content is bad.
func damaged(err error) bool {
	if errors.Is(err, ErrLocked) || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
		return false
	}
	var pe *os.PathError
	if errors.As(err, &pe) { // the file system refused: not the file's content
		return false
	}
	return true
}

// checkSafely runs f, turning a panic (bbolt panics on some damaged pages; SetPanicOnFault
// turns a fault reading the mapped file into one) into an error.
func checkSafely(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: damaged database: %v", r)
		}
	}()
	return f()
}

// SetAside renames path to path.WHY-TIMESTAMP (UTC) and returns the new name. The file is
// kept for the person to look at or restore; nothing is deleted.
func SetAside(path, why string, now time.Time) (string, error) {
	to := fmt.Sprintf("%s.%s-%s", path, why, now.UTC().Format("20060102T150405Z"))
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.%s-%s-%d", path, why, now.UTC().Format("20060102T150405Z"), i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

// salvage copies the records still readable in the damaged file at path into s: each record
// on its own, so one bad page loses only what is on it.
func (s *Store) salvage(path string) (kept, lost int) {
	old, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, 0 // nothing can be read (e.g. both meta pages are bad)
	}
	defer old.Close()
	for _, name := range [][]byte{bucketContacts, bucketHistory, bucketSettings} {
		var recs [][2][]byte
		err := checkSafely(func() error {
			return old.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(name)
				if b == nil {
					return nil
				}
				return b.ForEach(func(k, v []byte) error {
					if err := validRecord(name, v); err != nil {
						lost++
						return nil
					}
					recs = append(recs, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
					return nil
				})
			})
		})
		if err != nil {
			lost++ // at least the rest of this bucket
		}
		if err := s.putAll(name, recs); err == nil {
			kept += len(recs)
		}
	}
	return kept, lost
}

func validRecord(bucket, v []byte) error {
	switch string(bucket) {
	case string(bucketContacts):
		return decode(v, &Contact{})
	case string(bucketHistory):
		return decode(v, &HistoryEntry{})
	}
	return nil
}

// putAll writes recs into bucket, keeping its sequence past every numeric key.
func (s *Store) putAll(bucket []byte, recs [][2][]byte) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, r := range recs {
			if err := b.Put(r[0], r[1]); err != nil {
				return err
			}
			if len(r[0]) == 8 && string(bucket) != string(bucketSettings) {
				if id := binary.BigEndian.Uint64(r[0]); id > b.Sequence() {
					if err := b.SetSequence(id); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}
