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
	HA1MD5    string `json:"ha1_md5,omitempty"`
	HA1SHA256 string `json:"ha1_sha256,omitempty"`
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

// Digest algorithms an account may use (RFC 8760 §2).
const (
	DigestBoth   = "both"    // SHA-256 and MD5 (the default)
	DigestSHA256 = "sha-256" // SHA-256 only
	DigestMD5    = "md5"     // MD5 only: for phones that fail on a SHA-256 challenge (baresip 1.0)
)

// Add creates the account name (a user name as a phone's) with password, for the digest
// algorithms alg (DigestBoth, DigestSHA256 or DigestMD5): only the hashes of those are kept,
// and only those are offered in challenges.
func (a *Accounts) Add(name, password, alg string) error {
	if alg != DigestBoth && alg != DigestSHA256 && alg != DigestMD5 {
		return fmt.Errorf("unknown digest algorithm %q (want %s, %s or %s)", alg, DigestBoth, DigestSHA256, DigestMD5)
	}
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
	var acc account
	if alg != DigestSHA256 {
		acc.HA1MD5 = ha1(md5.New(), name, password)
	}
	if alg != DigestMD5 {
		acc.HA1SHA256 = ha1(sha256.New(), name, password)
	}
	m[name] = acc
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
	var h string
	switch strings.ToUpper(algorithm) {
	case "", "MD5":
		h = acc.HA1MD5
	case "SHA-256":
		h = acc.HA1SHA256
	}
	return h, h != "", nil
}

// algorithms returns the digest algorithms to challenge name with, preferred first (RFC
// 8760 §2.4): the account's, or both for a name without an account (which says nothing
// about which names exist).
func (a *Accounts) algorithms(name string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.load()
	acc, ok := m[name]
	if err != nil || !ok {
		return []string{"SHA-256", "MD5"}
	}
	var out []string
	if acc.HA1SHA256 != "" {
		out = append(out, "SHA-256")
	}
	if acc.HA1MD5 != "" {
		out = append(out, "MD5")
	}
	return out
}

func ha1(h hash.Hash, name, password string) string {
	h.Write([]byte(name + ":" + Realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}
