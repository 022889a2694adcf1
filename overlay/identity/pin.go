package identity

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Pin is what the phone remembers of a contact's certificate: the key first
// seen for the user (trust on first use).
type Pin struct {
	// KeySHA256 is KeyFingerprint of the pinned certificate.
	KeySHA256 string `json:"key_sha256"`
	// CertSHA256 is Fingerprint of the last certificate seen with that key.
	CertSHA256 string `json:"cert_sha256"`
	// NodeIDs are the Node-IDs of that certificate, in hex.
	NodeIDs   []string  `json:"node_ids,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
}

// PinStore keeps the pins of contacts in a JSON file, written atomically.
// It is safe for concurrent use.
type PinStore struct {
	path string
	mu   sync.Mutex
	pins map[string]Pin
}

// OpenPinStore loads the pins in path; a missing file is an empty store.
func OpenPinStore(path string) (*PinStore, error) {
	s := &PinStore{path: path, pins: map[string]Pin{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pins: %w", err)
	}
	if err := json.Unmarshal(data, &s.pins); err != nil {
		return nil, fmt.Errorf("pins file %s: %w", path, err)
	}
	if s.pins == nil {
		s.pins = map[string]Pin{}
	}
	return s, nil
}

func pinFor(cert *x509.Certificate) Pin {
	p := Pin{KeySHA256: KeyFingerprint(cert), CertSHA256: Fingerprint(cert), FirstSeen: time.Now().UTC()}
	for _, id := range NodeIDsFromCert(cert) {
		p.NodeIDs = append(p.NodeIDs, hex.EncodeToString(id[:]))
	}
	return p
}

// Check compares cert with the pin for user. The first certificate seen for
// a user is pinned and reported unchanged. A certificate with another key is
// reported as changed and the old pin is kept (and returned) until Accept.
func (s *PinStore) Check(user string, cert *x509.Certificate) (changed bool, old Pin, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pins[user]
	if ok {
		if p.KeySHA256 != KeyFingerprint(cert) {
			return true, p, nil
		}
		if p.CertSHA256 == Fingerprint(cert) {
			return false, p, nil
		}
		// Same key, renewed certificate: follow it silently.
		np := pinFor(cert)
		np.FirstSeen = p.FirstSeen
		return false, p, s.setLocked(user, np)
	}
	return false, Pin{}, s.setLocked(user, pinFor(cert))
}

// Accept pins cert for user, replacing any earlier pin (after the person has
// confirmed the change).
func (s *PinStore) Accept(user string, cert *x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(user, pinFor(cert))
}

// Forget removes the pin of user.
func (s *PinStore) Forget(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pins[user]; !ok {
		return nil
	}
	old := s.pins[user]
	delete(s.pins, user)
	if err := s.saveLocked(); err != nil {
		s.pins[user] = old
		return err
	}
	return nil
}

// Get returns the pin of user.
func (s *PinStore) Get(user string) (Pin, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pins[user]
	return p, ok
}

func (s *PinStore) setLocked(user string, p Pin) error {
	old, had := s.pins[user]
	s.pins[user] = p
	if err := s.saveLocked(); err != nil {
		if had {
			s.pins[user] = old
		} else {
			delete(s.pins, user)
		}
		return err
	}
	return nil
}

func (s *PinStore) saveLocked() error {
	data, err := json.MarshalIndent(s.pins, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("save pins: %w", err)
	}
	return WriteFileAtomic(s.path, append(data, '\n'), 0o600)
}

// CheckPin is Check without the old pin: it reports whether the certificate
// of user differs from the one first seen.
func CheckPin(s *PinStore, user string, cert *x509.Certificate) (changed bool, err error) {
	changed, _, err = s.Check(user, cert)
	return changed, err
}

// PinWarning is a message for a person about a changed certificate.
func PinWarning(user string, old Pin, cert *x509.Certificate) string {
	return fmt.Sprintf("Warning: %s has a different key than when you first talked (first seen %s). "+
		"It may be a new device or someone else using the name. Old key %s, new key %s. "+
		"Check with %s by another way before trusting it.",
		user, old.FirstSeen.Format("2006-01-02"), shortFP(old.KeySHA256),
		shortFP(KeyFingerprint(cert)), user)
}

func shortFP(fp string) string {
	if len(fp) > 16 {
		fp = fp[:16]
	}
	return FormatFingerprint(fp)
}
