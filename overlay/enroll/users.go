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

// OpenUsers loads the database in path; a missing file is empty.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, Cost: bcrypt.DefaultCost, users: map[string]*Account{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("user database: %w", err)
	}
	if err := json.Unmarshal(data, &u.users); err != nil {
		return nil, fmt.Errorf("user database %s: %w", path, err)
	}
	if u.users == nil {
		u.users = map[string]*Account{}
	}
	return u, nil
}

func (u *Users) saveLocked() error {
	data, err := json.MarshalIndent(u.users, "", "  ")
	if err != nil {
		return err
	}
	return identity.WriteFileAtomic(u.path, append(data, '\n'), 0o600)
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
	_, ok := u.users[name]
	return ok
}

// Authenticate checks a password (RFC 6940 §11.3: compared as binary
// strings). It takes about the same time whether or not the user exists.
func (u *Users) Authenticate(name, password string) error {
	u.mu.Lock()
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
