package sipadapter

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/chordphone/chordphone/app/phone"
)

// Realm is the digest realm of every account (RFC 3261 §22.1): the stored hashes are bound
// to it, so it never changes.
const Realm = "chordphone"

// accountsFile is the adapter's account list inside the profile directory.
const accountsFile = "adapter-users.json"

// Errors of the account commands.
var (
	ErrNoAccount = errors.New("no such adapter user")
	ErrExists    = errors.New("adapter user exists already")
)

// account is one user's stored secrets: the digest HA1 = H(user:realm:password) for each
// algorithm of RFC 8760 §2 (SHA-256, and MD5 for older phones). The password itself is
// never stored.
type account struct {
	HA1MD5    string `json:"ha1_md5"`
	HA1SHA256 string `json:"ha1_sha256"`
}

// Accounts are the user agents' accounts, kept in the profile (adapter-users.json, 0600).
type Accounts struct {
	path string
	mu   sync.Mutex
}

// OpenAccounts returns the accounts of the profile directory dir (none yet is fine).
func OpenAccounts(dir string) *Accounts {
	return &Accounts{path: filepath.Join(dir, accountsFile)}
}

func (a *Accounts) load() (map[string]account, error) {
	m := map[string]account{}
	b, err := os.ReadFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the adapter's users: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading the adapter's users in %s: %w", a.path, err)
	}
	return m, nil
}

func (a *Accounts) save(m map[string]account) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil {
		return fmt.Errorf("saving the adapter's users: %w", err)
	}
	tmp := a.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving the adapter's users: %w", err)
	}
	if err := os.Rename(tmp, a.path); err != nil {
		return fmt.Errorf("saving the adapter's users: %w", err)
	}
	return nil
}

// Add creates the account name (a user name as a phone's) with password.
func (a *Accounts) Add(name, password string) error {
	if err := phone.ValidateUser(name); err != nil {
		return err
	}
	if password == "" {
		return errors.New("the password is empty")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.load()
	if err != nil {
		return err
	}
	if _, ok := m[name]; ok {
		return fmt.Errorf("%s: %w", name, ErrExists)
	}
	m[name] = account{HA1MD5: ha1(md5.New(), name, password), HA1SHA256: ha1(sha256.New(), name, password)}
	return a.save(m)
}

// Remove deletes the account name.
func (a *Accounts) Remove(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.load()
	if err != nil {
		return err
	}
	if _, ok := m[name]; !ok {
		return fmt.Errorf("%s: %w", name, ErrNoAccount)
	}
	delete(m, name)
	return a.save(m)
}

// List returns the account names, sorted.
func (a *Accounts) List() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.load()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// ha1For returns name's stored HA1 for a digest algorithm ("" is MD5, RFC 3261 §22.4).
func (a *Accounts) ha1For(name, algorithm string) (string, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.load()
	if err != nil {
		return "", false, err
	}
	acc, ok := m[name]
	if !ok {
		return "", false, nil
	}
	switch strings.ToUpper(algorithm) {
	case "", "MD5":
		return acc.HA1MD5, true, nil
	case "SHA-256":
		return acc.HA1SHA256, true, nil
	}
	return "", false, nil
}

func ha1(h hash.Hash, name, password string) string {
	h.Write([]byte(name + ":" + Realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}

