package mailbox

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

const testOverlay = "mail.test"

var (
	idMu    sync.Mutex
	idCache = map[string]*identity.Identity{}
)

// ident returns a (cached) self-signed identity of user with key type kt.
func ident(t testing.TB, user string, kt identity.KeyType) *identity.Identity {
	t.Helper()
	idMu.Lock()
	defer idMu.Unlock()
	k := user + kt.String()
	if id := idCache[k]; id != nil {
		return id
	}
	key, err := identity.GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, user, testOverlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	idCache[k] = id
	return id
}

func name(user string) string { return user + "@" + testOverlay }

func textMessage(from, to, text string) *Message {
	return &Message{From: name(from), To: name(to), ID: [16]byte{1, 2, 3}, Created: time.UnixMilli(time.Now().UnixMilli()),
		Parts: 1, Type: ContentText, Payload: []byte(text)}
}

// TestSealOpen: a message sealed to an ECDSA and an RSA certificate of the recipient opens
// with either key, and not with a third key; every authenticated field survives; a change
// of any byte of the envelope makes it unreadable or malformed.
func TestSealOpen(t *testing.T) {
	bobEC, bobRSA, eve := ident(t, "bob", identity.KeyECDSAP256), ident(t, "bob", identity.KeyRSA2048), ident(t, "eve", identity.KeyECDSAP256)
	m := textMessage("alice", "bob", "meet me at noon")
	b, err := Seal(m, []*x509.Certificate{bobEC.Cert(), bobRSA.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("noon")) {
		t.Fatal("the envelope holds the text in the clear")
	}
	if n := Overhead(m.From, m.To, []*x509.Certificate{bobEC.Cert(), bobRSA.Cert()}) + len(m.Payload); n != len(b) {
		t.Errorf("Overhead predicts %d bytes, envelope has %d", n, len(b))
	}
	for _, id := range []*identity.Identity{bobEC, bobRSA} {
		got, err := Open(b, id.Key, id.Cert())
		if err != nil {
			t.Fatalf("%T: %v", id.Key, err)
		}
		if got.From != m.From || got.To != m.To || got.ID != m.ID || !got.Created.Equal(m.Created) || got.Type != ContentText || string(got.Payload) != "meet me at noon" || got.Parts != 1 {
			t.Errorf("opened %+v", got)
		}
	}
	if _, err := Open(b, eve.Key, eve.Cert()); !errors.Is(err, ErrNotForUs) {
		t.Errorf("eve opened bob's message: %v", err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if got, err := Open(c, bobEC.Key, bobEC.Cert()); err == nil {
			t.Fatalf("byte %d altered: still opens, as %+v", i, got)
		}
	}
}

// engine is a storing peer's store with the mailbox Kind.
func engine(t testing.TB) *storage.Engine {
	reg := kinds.Default()
	reg.Add(Kind())
	return storage.NewEngine(reg, storage.Options{})
}

func cred(id *identity.Identity) *storage.Credentials {
	return &storage.Credentials{Key: id.Key, Chain: id.Chain}
}

// value is signer's signed value holding env at recipient's slot key.
func value(t testing.TB, signer *identity.Identity, recipient string, key, env []byte, at time.Time) (wire.ResourceID, wire.StoredData) {
	t.Helper()
	rid := ResourceID(name(recipient))
	v := wire.DictionaryValue(key, env)
	if env == nil {
		v.Dictionary.Value = wire.DataValue{Exists: false}
	}
	sd, err := storage.NewValue(rid, KindID, v, at, DefaultLifetime, cred(signer))
	if err != nil {
		t.Fatal(err)
	}
	return rid, sd
}

func store(e *storage.Engine, signer *identity.Identity, rid wire.ResourceID, sd wire.StoredData) error {
	req := &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{{Kind: KindID, Values: []wire.StoredData{sd}}}}
	_, err := e.Store(req, storage.Origin{Certs: []*x509.Certificate{signer.Cert()}, Signer: signer.Cert()})
	return err
}

func stored(t testing.TB, e *storage.Engine, recipient string) []wire.StoredData {
	t.Helper()
	ans, _, err := e.Fetch(&wire.FetchReq{Resource: ResourceID(name(recipient)), Specifiers: []wire.StoredDataSpecifier{{Kind: KindID, Model: wire.DataModelDictionary}}})
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.StoredData
	for _, v := range ans.KindResponses[0].Values {
		if v.Signature.Identity.Type != wire.IdentityNone {
			out = append(out, v)
		}
	}
	return out
}

// TestStoringPeer: what a storing peer accepts and what it sees. alice's sealed message at
// her slot in bob's mailbox is stored, and holds no plaintext; mallory cannot store an
// envelope that claims to be alice's (in alice's slot or his own), nor write into alice's
// slot, nor delete bob's messages; oversized, malformed and out-of-range slots are refused
// and leave nothing stored; bob deletes what he fetched, and the deleted value cannot be
// stored again (replay).
func TestStoringPeer(t *testing.T) {
	alice, bob, mallory := ident(t, "alice", identity.KeyECDSAP256), ident(t, "bob", identity.KeyECDSAP256), ident(t, "mallory", identity.KeyRSA2048)
	e := engine(t)
	now := time.Now()
	env, err := Seal(textMessage("alice", "bob", "the secret plan"), []*x509.Certificate{bob.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	rid, good := value(t, alice, "bob", Key(name("alice"), 0), env, now)
	if err := store(e, alice, rid, good); err != nil {
		t.Fatalf("alice's message refused: %v", err)
	}
	vs := stored(t, e, "bob")
	if len(vs) != 1 || bytes.Contains(vs[0].Value.Dictionary.Value.Value, []byte("secret")) {
		t.Fatalf("storing peer holds %d values; plaintext visible: %v", len(vs), len(vs) == 1 && bytes.Contains(vs[0].Value.Dictionary.Value.Value, []byte("secret")))
	}

	forged, err := Seal(textMessage("alice", "bob", "send money"), []*x509.Certificate{bob.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxSize+1)
	copy(big, env)
	toCarol, _ := Seal(textMessage("mallory", "carol", "hi"), []*x509.Certificate{bob.Cert()})
	bad := []struct {
		what   string
		signer *identity.Identity
		key    []byte
		env    []byte
		code   wire.ErrorCode
	}{
		{"forged sender in alice's slot", mallory, Key(name("alice"), 1), forged, wire.ErrForbidden},
		{"forged sender in mallory's slot", mallory, Key(name("mallory"), 1), forged, wire.ErrForbidden},
		{"mallory overwrites alice's message", mallory, Key(name("alice"), 0), nil, wire.ErrForbidden},
		{"envelope for another recipient", mallory, Key(name("mallory"), 2), toCarol, wire.ErrForbidden},
		{"slot beyond the per-sender quota", alice, Key(name("alice"), MaxPerSender), env, wire.ErrForbidden},
		{"short key", alice, Key(name("alice"), 0)[:16], env, wire.ErrForbidden},
		{"malformed envelope", alice, Key(name("alice"), 3), []byte("CPM1 not really"), wire.ErrForbidden},
		{"oversized", alice, Key(name("alice"), 4), big, wire.ErrDataTooLarge},
	}
	for _, c := range bad {
		rid, sd := value(t, c.signer, "bob", c.key, c.env, now.Add(time.Second))
		err := store(e, c.signer, rid, sd)
		if got := storage.CodeOf(err); got != c.code {
			t.Errorf("%s: %v (code %v), want %v", c.what, err, got, c.code)
		}
	}
	if vs := stored(t, e, "bob"); len(vs) != 1 || !bytes.Equal(vs[0].Value.Dictionary.Value.Value, env) {
		t.Fatalf("after the refusals bob's mailbox holds %d values", len(vs))
	}

	// bob deletes; alice's old value replayed (by anybody holding it) is too old.
	rid, del := value(t, bob, "bob", Key(name("alice"), 0), nil, now.Add(2*time.Second))
	if err := store(e, bob, rid, del); err != nil {
		t.Fatalf("bob's deletion refused: %v", err)
	}
	if err := store(e, alice, rid, good); storage.CodeOf(err) != wire.ErrDataTooOld {
		t.Errorf("replayed message: %v, want Error_Data_Too_Old", err)
	}
	if vs := stored(t, e, "bob"); len(vs) != 1 || vs[0].Value.Dictionary.Value.Exists {
		t.Errorf("after deletion and replay: %d values, exists %v", len(vs), len(vs) == 1 && vs[0].Value.Dictionary.Value.Exists)
	}
}

// TestFloodBounded: one sender fills its MaxPerSender slots at a recipient and can store no
// more there; the recipient's mailbox keeps room for others.
func TestFloodBounded(t *testing.T) {
	alice, bob, carol := ident(t, "alice", identity.KeyECDSAP256), ident(t, "bob", identity.KeyECDSAP256), ident(t, "carol", identity.KeyECDSAP256)
	e := engine(t)
	env, err := Seal(textMessage("alice", "bob", strings.Repeat("spam ", 100)), []*x509.Certificate{bob.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for slot := 0; slot <= MaxPerSender; slot++ {
		rid, sd := value(t, alice, "bob", append(Key(name("alice"), 0)[:16], byte(slot)), env, now)
		err := store(e, alice, rid, sd)
		if slot < MaxPerSender && err != nil {
			t.Fatalf("slot %d: %v", slot, err)
		}
		if slot == MaxPerSender && storage.CodeOf(err) != wire.ErrForbidden {
			t.Fatalf("slot %d beyond the quota: %v", slot, err)
		}
	}
	cenv, _ := Seal(textMessage("carol", "bob", "hello"), []*x509.Certificate{bob.Cert()})
	rid, sd := value(t, carol, "bob", Key(name("carol"), 0), cenv, now)
	if err := store(e, carol, rid, sd); err != nil {
		t.Fatalf("carol after alice's flood: %v", err)
	}
	if n := len(stored(t, e, "bob")); n != MaxPerSender+1 {
		t.Errorf("bob's mailbox holds %d values, want %d", n, MaxPerSender+1)
	}
}

// TestParseRefuses: truncations and trailing bytes of a good envelope are malformed.
func TestParseRefuses(t *testing.T) {
	bob := ident(t, "bob", identity.KeyECDSAP256)
	env, err := Seal(textMessage("alice", "bob", "x"), []*x509.Certificate{bob.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(env); n++ {
		if _, err := Parse(env[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d of %d bytes: %v", n, len(env), err)
		}
	}
	if _, err := Parse(append(env, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
}
