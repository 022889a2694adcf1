package mailbox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Client deposits messages in other users' mailboxes and collects its own user's, through a
// storing peer's client side (overlay/storage). User is the own user@overlay, Cred what
// signs the values.
type Client struct {
	Svc  *storage.Service
	Cred *storage.Credentials
	User string
}

// PartDeletionLifetime is how long the deletion of a part other than the first is kept.
const PartDeletionLifetime = time.Hour

// ErrMailboxFull: the sender's MaxPerSender slots at the recipient hold undelivered parts.
var ErrMailboxFull = errors.New("mailbox: the recipient already has as many undelivered parts from you as the overlay keeps")

// ErrNoCertificate: the recipient has no certificate in the overlay to encrypt to.
var ErrNoCertificate = errors.New("mailbox: no certificate of the recipient is stored in the overlay")

// statBatch keys per Stat: the answer stays below the default max-message-size (5000 bytes).
const statBatch = 16

// RecipientCerts fetches the certificates user stored under its name (CERTIFICATE_BY_USER,
// RFC 6940 §8; each verified: signed by its own user, USER-MATCH), at most MaxWraps.
func (c *Client) RecipientCerts(ctx context.Context, user string) ([]*x509.Certificate, error) {
	res, err := c.Svc.Fetch(ctx, kinds.UserResourceID(user), wire.StoredDataSpecifier{Kind: wire.KindCertificateByUser,
		Model: wire.DataModelArray, Indices: []wire.ArrayRange{{First: 0, Last: 0xffffffff}}})
	if err != nil {
		return nil, fmt.Errorf("mailbox: fetching %s's certificate: %w", user, err)
	}
	var out []*x509.Certificate
	seen := 0
	for _, kr := range res.Kinds {
		for _, sd := range kr.Values {
			seen++
			v := sd.Value.Data()
			if !v.Exists || len(out) == MaxWraps {
				continue
			}
			if cert, err := x509.ParseCertificate(v.Value); err == nil && sameUser(kinds.SignerFromCert(cert).User, user) {
				out = append(out, cert)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w (%s: %d values, %d dropped as unverifiable)", ErrNoCertificate, user, seen, res.Dropped)
	}
	return out, nil
}

// Deposit is where a message's parts were stored.
type Deposit struct {
	To          string `json:"to"`
	Slots       []int  `json:"slots"`
	StorageTime uint64 `json:"storage_time"` // of every part
}

// Put stores envelopes (the parts of one message, sealed to `to`) in free slots of to's
// mailbox, each in its own StoreReq, with lifetime life.
func (c *Client) Put(ctx context.Context, to string, envelopes [][]byte, life time.Duration) (*Deposit, error) {
	rid := ResourceID(to)
	free, err := c.freeSlots(ctx, rid)
	if err != nil {
		return nil, err
	}
	if len(free) < len(envelopes) {
		return nil, fmt.Errorf("%w (%d free, %d needed)", ErrMailboxFull, len(free), len(envelopes))
	}
	now := time.Now()
	d := &Deposit{To: to, StorageTime: uint64(now.UnixMilli())}
	for i, env := range envelopes {
		slot := free[i]
		sd, err := storage.NewValue(rid, KindID, wire.DictionaryValue(Key(c.User, slot), env), now, life, c.Cred)
		if err != nil {
			return nil, err
		}
		if _, err := c.Svc.Store(ctx, rid, KindID, sd); err != nil {
			return nil, fmt.Errorf("mailbox: storing part %d of %d for %s: %w", i+1, len(envelopes), to, err)
		}
		d.Slots = append(d.Slots, slot)
	}
	return d, nil
}

// freeSlots lists this sender's slots at rid that hold no message (never used, expired, or
// deleted by the recipient).
func (c *Client) freeSlots(ctx context.Context, rid wire.ResourceID) ([]int, error) {
	keys := Keys(c.User)
	var free []int
	for start := 0; start < len(keys); start += statBatch {
		ans, err := c.Svc.Stat(ctx, rid, wire.StoredDataSpecifier{Kind: KindID, Model: wire.DataModelDictionary, Keys: keys[start : start+statBatch]})
		if err != nil {
			return nil, fmt.Errorf("mailbox: looking for free slots: %w", err)
		}
		for _, kr := range ans.KindResponses {
			for _, md := range kr.Values {
				if k := md.MetaData.Key; !md.MetaData.MetaData.Exists && len(k) == KeySize {
					free = append(free, int(k[16]))
				}
			}
		}
	}
	return free, nil
}

// State of a deposit.
type State int

// States.
const (
	Waiting   State = iota // still in the recipient's mailbox
	Delivered              // the recipient fetched and deleted it
	Gone                   // neither there nor deleted: expired, or lost
)

// Check tells whether the recipient has collected d: the first part's slot holds a
// deletion (or a later message of ours) stored after it.
func (c *Client) Check(ctx context.Context, d *Deposit) (State, error) {
	if len(d.Slots) == 0 {
		return Gone, errors.New("mailbox: empty deposit")
	}
	rid := ResourceID(d.To)
	res, err := c.Svc.Fetch(ctx, rid, wire.StoredDataSpecifier{Kind: KindID, Model: wire.DataModelDictionary, Keys: [][]byte{Key(c.User, d.Slots[0])}})
	if err != nil {
		return Waiting, fmt.Errorf("mailbox: checking a deposit at %s: %w", d.To, err)
	}
	for _, kr := range res.Kinds {
		for _, sd := range kr.Values {
			switch {
			case sd.StorageTime == d.StorageTime && sd.Value.Data().Exists:
				return Waiting, nil
			case sd.StorageTime > d.StorageTime:
				return Delivered, nil
			}
		}
	}
	return Gone, nil
}

// Item is one envelope found in the own mailbox (verified: signed by its sender, who
// writes only its own slots).
type Item struct {
	Key         []byte
	StorageTime uint64
	Envelope    []byte
}

// Collect fetches what waits in the own mailbox: the keys that hold a value (a Stat of the
// whole dictionary; when that answer is too large, of the slots of the senders given), then
// each value on its own (one fits an answer).
func (c *Client) Collect(ctx context.Context, senders []string) ([]Item, error) {
	rid := ResourceID(c.User)
	keys, err := c.occupied(ctx, rid, nil)
	if err != nil && node.IsCode(err, wire.ErrResponseTooLarge) {
		keys = nil
		for _, s := range senders {
			all := Keys(s)
			for start := 0; start < len(all); start += statBatch {
				more, err := c.occupied(ctx, rid, all[start:start+statBatch])
				if err != nil {
					return nil, err
				}
				keys = append(keys, more...)
			}
		}
	} else if err != nil {
		return nil, err
	}
	var out []Item
	var errs []error
	for _, k := range keys {
		res, err := c.Svc.Fetch(ctx, rid, wire.StoredDataSpecifier{Kind: KindID, Model: wire.DataModelDictionary, Keys: [][]byte{k}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, kr := range res.Kinds {
			for _, sd := range kr.Values {
				if v := sd.Value.Dictionary; v.Value.Exists {
					out = append(out, Item{Key: v.Key, StorageTime: sd.StorageTime, Envelope: v.Value.Value})
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

// occupied lists the keys among keys (nil: all) of rid's mailbox that hold a value.
func (c *Client) occupied(ctx context.Context, rid wire.ResourceID, keys [][]byte) ([][]byte, error) {
	ans, err := c.Svc.Stat(ctx, rid, wire.StoredDataSpecifier{Kind: KindID, Model: wire.DataModelDictionary, Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("mailbox: listing %s's mailbox: %w", c.User, err)
	}
	var out [][]byte
	for _, kr := range ans.KindResponses {
		for _, md := range kr.Values {
			if md.MetaData.MetaData.Exists && len(md.MetaData.Key) == KeySize {
				out = append(out, md.MetaData.Key)
			}
		}
	}
	return out, nil
}

// Remove deletes an item from the own mailbox: exists = false, stored after it, kept for
// life. The first part's deletion is kept as long as a message lives (DefaultLifetime), so
// that the sender sees it was collected and a replay is too old; the other parts' need not
// outlive a replay's chance (a part alone completes nothing), and every deletion kept is one
// more entry each listing of the mailbox carries.
func (c *Client) Remove(ctx context.Context, it Item, life time.Duration) error {
	rid := ResourceID(c.User)
	at := time.Now()
	if min := time.UnixMilli(int64(it.StorageTime) + 1); at.Before(min) {
		at = min // the sender's clock ran ahead of ours
	}
	v := wire.StoredDataValue{Model: wire.DataModelDictionary, Dictionary: wire.DictionaryEntry{Key: it.Key}}
	sd, err := storage.NewValue(rid, KindID, v, at, life, c.Cred)
	if err != nil {
		return err
	}
	if _, err := c.Svc.Store(ctx, rid, KindID, sd); err != nil {
		return fmt.Errorf("mailbox: deleting a collected message: %w", err)
	}
	return nil
}
