// Package mailbox is the overlay's store-and-forward for users who are offline: the
// CHORDPHONE-MAILBOX Kind, whose values wait in the overlay under the recipient's user name
// until the recipient's phone fetches and deletes them, encrypted to the recipient's
// certificate key and signed by the sender (RFC 6940 §7 storage, §7.3 access control).
//
// Kind-ID 0xF0000101, in RFC 6940 §14.6's private range (0xF0000001-0xFFFFFFFE).
//
// Data model: DICTIONARY at the Resource-ID of the recipient's user name (the hash of
// user@overlay, as CERTIFICATE_BY_USER and SIP-REGISTRATION). A key is 17 bytes: the first
// 16 bytes of SHA-256 of the sender's user name, then a slot number below MaxPerSender. A
// value is an Envelope (envelope.go): one part of one message.
//
// Access control (a Custom policy, RFC 6940 §7.3): a value that exists may be written only
// by the user whose name hashes to the key's first 16 bytes, into a slot below
// MaxPerSender, and must be an Envelope from that user to the resource's user; a deletion
// (exists = false) may be written by that sender or by the recipient (the user whose name
// hashes to the Resource-ID). So a sender holds at most MaxPerSender values at one
// recipient (per-sender quota), a recipient at most MaxCount (per-recipient quota), and
// nobody else can write or delete them.
//
// Lifetime: DefaultLifetime (7 days), as the sender stores it; replication, migration and
// expiry are the storing peer's, as for every Kind (overlay/storage).
//
// What a storing peer sees: the sender's and recipient's user names, the time, a random
// message id, the part numbers and sizes; not the text or sound, nor its type.
package mailbox

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// KindID is the CHORDPHONE-MAILBOX Kind (RFC 6940 §14.6 private use).
const KindID wire.KindID = 0xF0000101

// Name is the Kind's name in logs.
const Name = "CHORDPHONE-MAILBOX"

// Limits.
const (
	// MaxPerSender is the number of slots one sender has at one recipient: at most this
	// many parts of undelivered messages (a 60 s voice message takes up to ~45).
	MaxPerSender = 64
	// MaxCount is the most values (parts and deletions) at one recipient.
	MaxCount = 1024
	// MaxSize is the largest value: one Envelope. It keeps a StoreReq with the sender's
	// certificate below the overlay's default max-message-size (5000 bytes, RFC 6940 §11.1).
	MaxSize = 2800
	// DefaultLifetime is how long a message waits in the overlay.
	DefaultLifetime = 7 * 24 * time.Hour
)

// KeySize is the length of a dictionary key: sender hash and slot.
const KeySize = 17

// Kind returns the CHORDPHONE-MAILBOX Kind definition.
func Kind() *kinds.Kind {
	return &kinds.Kind{
		ID: KindID, Name: Name,
		Model: wire.DataModelDictionary, Policy: kinds.Custom,
		MaxCount: MaxCount, MaxSize: MaxSize,
		Access:   access,
		Validate: validate,
	}
}

// ResourceID is where user's mailbox is stored (the Resource-ID of user@overlay).
func ResourceID(user string) wire.ResourceID { return kinds.UserResourceID(user) }

// senderHash is the first 16 bytes of SHA-256 of the sender's normalized user name.
func senderHash(user string) []byte {
	if n, err := kinds.NormalizeAoR(user); err == nil {
		user = n
	}
	h := sha256.Sum256([]byte(user))
	return h[:16]
}

// Key is the dictionary key of sender's slot.
func Key(sender string, slot int) []byte {
	return append(senderHash(sender), byte(slot))
}

// Keys returns every slot key of sender.
func Keys(sender string) [][]byte {
	out := make([][]byte, MaxPerSender)
	for i := range out {
		out[i] = Key(sender, i)
	}
	return out
}

func sameUser(a, b string) bool {
	na, err1 := kinds.NormalizeAoR(a)
	nb, err2 := kinds.NormalizeAoR(b)
	return err1 == nil && err2 == nil && na == nb
}

// access is the Kind's policy (package comment).
func access(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
	key := v.Dictionary.Key
	if len(key) != KeySize || int(key[16]) >= MaxPerSender {
		return fmt.Errorf("a key of %d bytes is not one of a sender's %d slots", len(key), MaxPerSender)
	}
	if s.User == "" {
		return errors.New("the signer's certificate names no user")
	}
	if bytes.Equal(key[:16], senderHash(s.User)) {
		return nil // the sender's own slot
	}
	if !v.Data().Exists && string(kinds.UserResourceID(s.User)) == string(resource) {
		return nil // the recipient deletes what it fetched
	}
	return fmt.Errorf("user %s may not write another sender's slot", s.User)
}

// Signer is the verified author of a value.
type Signer = kinds.Signer

// validate checks an existing value: an Envelope from the signer to the resource's user.
func validate(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
	e, err := Parse(v.Data().Value)
	if err != nil {
		return err
	}
	if !sameUser(e.From, s.User) {
		return fmt.Errorf("envelope from %q signed by %q", e.From, s.User)
	}
	if string(kinds.UserResourceID(e.To)) != string(resource) {
		return fmt.Errorf("envelope to %q stored at another user's resource", e.To)
	}
	return nil
}
