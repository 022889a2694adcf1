package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultMessageLimit is how many messages (all contacts together) are kept; older ones go.
const DefaultMessageLimit = 10000

var (
	bucketMessages = []byte("messages")    // sequence number -> MessageEntry
	bucketMsgIDs   = []byte("message_ids") // direction + "\x00" + ID -> sequence number
)

// Message states (MessageEntry.Status).
const (
	MessageSending   = "sending"   // outgoing: on its way
	MessageStored    = "stored"    // outgoing: waiting in the overlay for the recipient
	MessageDelivered = "delivered" // outgoing: the recipient's phone has it
	MessageFailed    = "failed"    // outgoing: neither delivered nor stored
	MessageReceived  = "received"  // incoming: not read yet
	MessageRead      = "read"      // incoming: shown to the person
)

// MessageEntry is one text message (or voicemail) in a conversation with Peer.
type MessageEntry struct {
	Seq       uint64    `json:"seq"`
	ID        string    `json:"id"` // the sender's identity of the message
	Peer      string    `json:"peer"`
	Direction Direction `json:"direction"` // Incoming or Outgoing
	Text      string    `json:"text"`
	Time      time.Time `json:"time"` // when it was written (the sender's clock)
	Status    string    `json:"status"`
	// Offline: it came (or went) through the overlay rather than straight to the phone.
	Offline bool `json:"offline,omitempty"`
	// File is a voice message's WAV file (the one sent, or the one received into the
	// profile); Text then describes it.
	File string `json:"file,omitempty"`
	// Slots and StorageTime: where an outgoing message waits in the recipient's mailbox
	// (overlay/mailbox), while its status is MessageStored.
	Slots       []int  `json:"slots,omitempty"`
	StorageTime uint64 `json:"storage_time,omitempty"`
}

// msgIDKey indexes a message by direction, peer and id: an id is the sender's choice, so one
// sender cannot take another's.
func msgIDKey(d Direction, peer, id string) []byte {
	return []byte(string(d) + "\x00" + peer + "\x00" + id)
}

// messageBuckets returns the message buckets, made on first use.
func messageBuckets(tx *bolt.Tx) (msgs, ids *bolt.Bucket, err error) {
	if msgs, err = tx.CreateBucketIfNotExists(bucketMessages); err != nil {
		return nil, nil, err
	}
	ids, err = tx.CreateBucketIfNotExists(bucketMsgIDs)
	return msgs, ids, err
}

// AddMessage records a message. A message whose direction and ID are already recorded is
// not added again (a page sent to several devices, or fetched from the overlay twice):
// added is false and e is the recorded entry.
func (s *Store) AddMessage(e MessageEntry) (_ MessageEntry, added bool, err error) {
	if e.ID == "" || e.Peer == "" || (e.Direction != Incoming && e.Direction != Outgoing) {
		return e, false, fmt.Errorf("store: message: %w: needs an id, a peer and a direction", ErrInvalid)
	}
	err = s.update(func(tx *bolt.Tx) error {
		msgs, ids, err := messageBuckets(tx)
		if err != nil {
			return err
		}
		if k := ids.Get(msgIDKey(e.Direction, e.Peer, e.ID)); k != nil {
			return decode(msgs.Get(k), &e)
		}
		seq, err := msgs.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := msgs.Put(key(seq), v); err != nil {
			return err
		}
		if err := ids.Put(msgIDKey(e.Direction, e.Peer, e.ID), key(seq)); err != nil {
			return err
		}
		added = true
		return trimMessages(msgs, ids, DefaultMessageLimit)
	})
	return e, added, err
}

// trimMessages drops the oldest messages beyond limit.
func trimMessages(msgs, ids *bolt.Bucket, limit int) error {
	for msgs.Stats().KeyN > limit {
		k, v := msgs.Cursor().First()
		if k == nil {
			return nil
		}
		var e MessageEntry
		if decode(v, &e) == nil {
			_ = ids.Delete(msgIDKey(e.Direction, e.Peer, e.ID))
		}
		if err := msgs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// UpdateMessage changes the message d/peer/id with f (its status, where it is stored) and
// returns it; ErrNotFound if there is none. A delivered message stays delivered (a late
// failure report does not undo it): then f is not called and changed is false.
func (s *Store) UpdateMessage(d Direction, peer, id string, f func(*MessageEntry)) (e MessageEntry, changed bool, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		msgs, ids, err := messageBuckets(tx)
		if err != nil {
			return err
		}
		k := ids.Get(msgIDKey(d, peer, id))
		if k == nil {
			return fmt.Errorf("store: message %s: %w", id, ErrNotFound)
		}
		if err := decode(msgs.Get(k), &e); err != nil {
			return err
		}
		if e.Status == MessageDelivered {
			return nil
		}
		old, _ := json.Marshal(e)
		f(&e)
		v, err := json.Marshal(e)
		if err != nil || string(v) == string(old) {
			return err
		}
		changed = true
		return msgs.Put(k, v)
	})
	return e, changed, err
}

// SetMessageStatus sets the status of the message d/peer/id (see UpdateMessage).
func (s *Store) SetMessageStatus(d Direction, peer, id, status string) (MessageEntry, bool, error) {
	return s.UpdateMessage(d, peer, id, func(e *MessageEntry) { e.Status = status })
}

// WaitingInOverlay returns the outgoing messages stored in recipients' mailboxes and not
// known to be delivered yet.
func (s *Store) WaitingInOverlay() ([]MessageEntry, error) {
	var out []MessageEntry
	err := s.eachMessage(func(e MessageEntry) {
		if e.Direction == Outgoing && e.Status == MessageStored && len(e.Slots) > 0 {
			out = append(out, e)
		}
	})
	return out, err
}

// eachMessage calls f with every message kept, in key order.
func (s *Store) eachMessage(f func(MessageEntry)) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e MessageEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			f(e)
			return nil
		})
	})
}

// Messages returns the last limit messages with peer ("" for everybody), oldest first.
func (s *Store) Messages(peer string, limit int) ([]MessageEntry, error) {
	var out []MessageEntry
	err := s.view(func(tx *bolt.Tx) error {
		msgs := tx.Bucket(bucketMessages)
		if msgs == nil {
			return nil
		}
		c := msgs.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var e MessageEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			if peer == "" || e.Peer == peer {
				out = append(out, e)
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// MarkRead marks every received message from peer as read.
func (s *Store) MarkRead(peer string) error {
	return s.update(func(tx *bolt.Tx) error {
		msgs, _, err := messageBuckets(tx)
		if err != nil {
			return err
		}
		return msgs.ForEach(func(k, v []byte) error {
			var e MessageEntry
			if err := decode(v, &e); err != nil || e.Peer != peer || e.Status != MessageReceived {
				return err
			}
			e.Status = MessageRead
			nv, err := json.Marshal(e)
			if err != nil {
				return err
			}
			return msgs.Put(k, nv)
		})
	})
}

// Unread counts the received messages not read yet, by peer.
func (s *Store) Unread() (map[string]int, error) {
	out := map[string]int{}
	err := s.eachMessage(func(e MessageEntry) {
		if e.Status == MessageReceived {
			out[e.Peer]++
		}
	})
	return out, err
}
