package enroll

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Account is one user of an overlay.
type Account struct {
	PasswordHash string    `json:"password_hash"` // bcrypt
	NodeIDs      []string  `json:"node_ids,omitempty"`
	Created      time.Time `json:"created"`
}

// Users is the account database of an enrollment server, kept in a JSON
// file (mode 0600, replaced atomically). Passwords are bcrypt hashes.
type Users struct {
	path string
	// Cost is the bcrypt cost of new hashes.
	Cost int

	mu    sync.Mutex
	users map[string]*Account
	// seen is the file as last read or written: another process (the operator's "user add"
	// beside a running server) may change it; reloadLocked reads it again then.
	seen fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// reloadLocked reads the file again when another process changed it since.
func (u *Users) reloadLocked() error {
	st := stampOf(u.path)
	if st == u.seen {
		return nil
	}
	data, err := os.ReadFile(u.path)
	if errors.Is(err, fs.ErrNotExist) {
		u.users, u.seen = map[string]*Account{}, st
		return nil
	}
	if err != nil {
		return fmt.Errorf("user database: %w", err)
	}
	m := map[string]*Account{}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("user database %s: %w", u.path, err)
	}
	if m == nil {
		m = map[string]*Account{}
	}
	u.users, u.seen = m, st
	return nil
}

// Errors of the user database.
var (
	ErrUserExists  = errors.New("user already exists")
	ErrNoSuchUser  = errors.New("no such user")
	ErrBadPassword = errors.New("wrong password")
)

// dummyHash is compared against when the user does not exist, so that the
// time taken does not tell whether an account exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("chordphone"), bcrypt.DefaultCost)

// OpenUsers loads the database in path; a missing file is empty. Changes that other processes
// make to the file are read again before each use.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, Cost: bcrypt.DefaultCost, users: map[string]*Account{}}
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *Users) saveLocked() error {
	data, err := json.MarshalIndent(u.users, "", "  ")
	if err != nil {
		return err
	}
	if err := identity.WriteFileAtomic(u.path, append(data, '\n'), 0o600); err != nil {
		return err
	}
	u.seen = stampOf(u.path)
	return nil
}

// ValidAccountName checks an account name: the part of the user name before
// "@" (RFC 6940 §11.3: "allow only legal characters").
func ValidAccountName(name string) error {
	_, err := identity.UserName(name, "x.invalid")
	if err != nil || len(name) == 0 || name[0] == '.' {
		return fmt.Errorf("account name %q: use 1-64 letters, digits or . _ + -", name)
	}
	for _, c := range name {
		if c == '@' {
			return fmt.Errorf("account name %q: no @ (the overlay name is added)", name)
		}
	}
	return nil
}

// Add creates an account.
func (u *Users) Add(name, password string) error {
	if err := ValidAccountName(name); err != nil {
		return err
	}
	if len(password) < 8 {
		return errors.New("password: use at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), u.Cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	if _, ok := u.users[name]; ok {
		return fmt.Errorf("%s: %w", name, ErrUserExists)
	}
	u.users[name] = &Account{PasswordHash: string(h), Created: time.Now().UTC()}
	if err := u.saveLocked(); err != nil {
		delete(u.users, name)
		return err
	}
	return nil
}

// SetPassword replaces the password of an account.
func (u *Users) SetPassword(name, password string) error {
	if len(password) < 8 {
		return errors.New("password: use at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), u.Cost)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	a, ok := u.users[name]
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNoSuchUser)
	}
	old := a.PasswordHash
	a.PasswordHash = string(h)
	if err := u.saveLocked(); err != nil {
		a.PasswordHash = old
		return err
	}
	return nil
}

// Remove deletes an account.
func (u *Users) Remove(name string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	a, ok := u.users[name]
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNoSuchUser)
	}
	delete(u.users, name)
	if err := u.saveLocked(); err != nil {
		u.users[name] = a
		return err
	}
	return nil
}

// Names lists the accounts, sorted.
func (u *Users) Names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	_ = u.reloadLocked() // a damaged file: the accounts as last read
	var out []string
	for n := range u.users {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Exists reports whether the account exists.
func (u *Users) Exists(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_ = u.reloadLocked() // a damaged file: the accounts as last read
	_, ok := u.users[name]
	return ok
}

// Authenticate checks a password (RFC 6940 §11.3: compared as binary
// strings). It takes about the same time whether or not the user exists.
func (u *Users) Authenticate(name, password string) error {
	u.mu.Lock()
	_ = u.reloadLocked() // a damaged file: the accounts as last read
	a, ok := u.users[name]
	hash := dummyHash
	if ok {
		hash = []byte(a.PasswordHash)
	}
	u.mu.Unlock()
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	switch {
	case !ok:
		return ErrNoSuchUser
	case err != nil:
		return ErrBadPassword
	}
	return nil
}

// NodeIDs returns n Node-IDs for the account: the ones it had before, and
// new cryptographically random ones as needed (RFC 6940 §11.3: "if the same
// user returns ... the enrollment server should return the same Node-IDs").
func (u *Users) NodeIDs(name string, n int) ([]wire.NodeID, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	a, ok := u.users[name]
	if !ok {
		return nil, ErrNoSuchUser
	}
	old := append([]string(nil), a.NodeIDs...)
	for len(a.NodeIDs) < n {
		var id wire.NodeID
		if _, err := rand.Read(id[:]); err != nil {
			return nil, err
		}
		a.NodeIDs = append(a.NodeIDs, id.String())
	}
	if len(a.NodeIDs) != len(old) {
		if err := u.saveLocked(); err != nil {
			a.NodeIDs = old
			return nil, err
		}
	}
	out := make([]wire.NodeID, 0, n)
	for _, h := range a.NodeIDs[:n] {
		id, err := wire.ParseNodeID(h)
		if err != nil {
			return nil, fmt.Errorf("user database: %s: %w", name, err)
		}
		out = append(out, id)
	}
	return out, nil
}
