package hostile

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

const overlayName = "hostile.test"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startPeers starts n storing peers (no user) on loopback in one overlay, the first
// starting it, and returns when all have joined.
func startPeers(t *testing.T, n int) []*peer.Peer {
	t.Helper()
	return startPeersDoc(t, n, nil)
}

// startPeersDoc is startPeers in an overlay configured by doc (nil: self-signed, defaults).
func startPeersDoc(t *testing.T, n int, doc *config.Config) []*peer.Peer {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	var ps []*peer.Peer
	for i := 0; i < n; i++ {
		var boot []string
		if i > 0 {
			boot = []string{ps[0].Addr().String()}
		}
		p, err := peer.New(peer.Config{Profile: t.TempDir(), Overlay: overlayName, Document: doc, Listen: "127.0.0.1:0", Bootstrap: boot, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = p.Close(cctx)
		})
		if err := p.Join(ctx); err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		ps = append(ps, p)
	}
	if n > 1 {
		waitRing(t, ps)
	}
	return ps
}

// waitRing waits until every peer has as many successors as the ring allows (min(n-1, 1)).
func waitRing(t *testing.T, ps []*peer.Peer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, p := range ps {
			st := p.Status()
			if !st.Joined || len(st.Successors) == 0 || len(st.Predecessors) == 0 {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring did not form within 30 s")
		}
		time.Sleep(50 * time.Millisecond) // polling the status: chord has no "stable" event
	}
}

// user is a raw client with a user identity of its own.
type user struct {
	*Client
	id *identity.Identity
}

func newUser(t *testing.T, name string) *user {
	t.Helper()
	return newUserDoc(t, name, nil)
}

// newUserDoc is newUser in an overlay configured by doc (its configuration sequence in every
// header); name may carry a domain ("mallory@elsewhere.example").
func newUserDoc(t *testing.T, name string, doc *config.Config) *user {
	t.Helper()
	id, err := identity.NewSelfSigned(mustKey(t), name, overlayName, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(id, overlayName, ClientSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if doc != nil {
		c.ConfigurationSequence = uint16(doc.Sequence)
	}
	t.Cleanup(func() { c.Close() })
	return &user{Client: c, id: id}
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (u *user) dial(t *testing.T, p *peer.Peer) *link.Link {
	t.Helper()
	l, err := u.Dial(testCtx(t, 15*time.Second), p.Addr().String(), p.NodeID())
	if err != nil {
		t.Fatalf("%s: link to %s: %v", u.id.User(), p.NodeID(), err)
	}
	return l
}

func (u *user) aor() wire.ResourceID { return kinds.UserResourceID(u.id.User()) }

func (u *user) creds() *storage.Credentials {
	return &storage.Credentials{Key: u.id.Key, Chain: u.id.Chain}
}

// registration returns u's signed SIP-REGISTRATION value (RFC 7904 §3.2) for resource rid
// under dictionary key, stored at time at.
func (u *user) registration(t *testing.T, rid wire.ResourceID, key wire.NodeID, at time.Time) wire.StoredData {
	t.Helper()
	v, err := kinds.RouteRegistration(u.NodeID, "")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := storage.NewValue(rid, wire.KindSIPRegistration, wire.DictionaryValue(key[:], v), at, 10*time.Minute, u.creds())
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// storeMsg is a StoreReq (replica 0) of values of one kind at rid, to the Resource-ID.
func (u *user) storeMsg(rid wire.ResourceID, kind wire.KindID, values ...wire.StoredData) *wire.Message {
	return u.Request(wire.CodeStoreReq, &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{{Kind: kind, Values: values}}},
		wire.ResourceDestination(rid))
}

// expectCode fails unless ans is an ErrorResponse with code.
func expectCode(t *testing.T, what string, ans *wire.Message, code wire.ErrorCode) {
	t.Helper()
	got, phrase, ok := ErrorCode(ans)
	if !ok {
		t.Errorf("%s: answered %v, want ErrorResponse %v", what, ans.Code, code)
		return
	}
	if got != code {
		t.Errorf("%s: ErrorResponse %v (%q), want %v", what, got, phrase, code)
		return
	}
	t.Logf("%s: %v (%s)", what, got, phrase)
}

// expectOK fails unless ans is the answer code want.
func expectOK(t *testing.T, what string, ans *wire.Message, want wire.MessageCode) {
	t.Helper()
	if code, phrase, isErr := ErrorCode(ans); isErr {
		t.Fatalf("%s: ErrorResponse %v (%s), want %v", what, code, phrase, want)
	}
	if ans.Code != want {
		t.Fatalf("%s: answered %v, want %v", what, ans.Code, want)
	}
}

func call(t *testing.T, u *user, l *link.Link, m *wire.Message, extra ...*x509.Certificate) *wire.Message {
	t.Helper()
	// Retransmitted like a node does (RFC 6940 §6.2.1), so that a message lost while the
	// ring settles does not fail the test.
	ans, _, err := u.CallRetransmit(testCtx(t, 20*time.Second), l, m, 3*time.Second, 5, extra...)
	if err != nil {
		t.Fatalf("%v: %v", m.Code, err)
	}
	return ans
}

// snapshot fetches every value of kind at rid through l and returns a canonical text of
// the generation and the values (key/index, storage time, signature), for "nothing changed".
func snapshot(t *testing.T, u *user, l *link.Link, rid wire.ResourceID, kind wire.KindID) string {
	t.Helper()
	s, err := fetchSnapshot(testCtx(t, 20*time.Second), u, l, rid, kind)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return s
}

func fetchSnapshot(ctx context.Context, u *user, l *link.Link, rid wire.ResourceID, kind wire.KindID) (string, error) {
	m, ok := kinds.Default().DataModel(kind)
	if !ok {
		return "", fmt.Errorf("kind %d", kind)
	}
	sp := wire.StoredDataSpecifier{Kind: kind, Model: m}
	if m == wire.DataModelArray {
		sp.Indices = []wire.ArrayRange{{First: 0, Last: 0xfffffffe}}
	}
	ans, err := u.Call(ctx, l, u.Request(wire.CodeFetchReq, &wire.FetchReq{Resource: rid, Specifiers: []wire.StoredDataSpecifier{sp}}, wire.ResourceDestination(rid)))
	if err != nil {
		return "", err
	}
	if code, phrase, isErr := ErrorCode(ans); isErr {
		return "", fmt.Errorf("fetch answered %v (%s)", code, phrase)
	}
	b, err := wire.ParseBody(ans, kinds.Default())
	if err != nil {
		return "", fmt.Errorf("fetch answer: %w", err)
	}
	fa, ok := b.(*wire.FetchAns)
	if !ok {
		return "", fmt.Errorf("fetch answered %v", ans.Code)
	}
	var lines []string
	for _, kr := range fa.KindResponses {
		lines = append(lines, fmt.Sprintf("kind %d generation %d", kr.Kind, kr.Generation))
		for _, v := range kr.Values {
			if v.Signature.Identity.Type == wire.IdentityNone {
				continue // synthetic nonexistent value (RFC 6940 §7.4.2.2)
			}
			d := v.Value.Data()
			lines = append(lines, fmt.Sprintf("  key %x index %d time %d exists %v value %x sig %x",
				v.Value.Dictionary.Key, v.Value.Array.Index, v.StorageTime, d.Exists, d.Value, v.Signature.Value))
		}
	}
	if len(lines) > 1 {
		sort.Strings(lines[1:])
	}
	return strings.Join(lines, "\n"), nil
}

// values counts the real (signed) values in a snapshot.
func values(snap string) int { return strings.Count(snap, "\n  key") }

func sameSnapshot(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s changed stored data:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i%len(c)] ^= 0x01
	return c
}

// waitOwnCertificates waits until a lone peer holds its own certificate records
// (CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER, RFC 6940 §8, stored after joining) and
// returns how many records it holds then.
func waitOwnCertificates(t *testing.T, p *peer.Peer) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p.Status().StoredRecords < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the peer did not store its own certificates within 30 s")
		}
		time.Sleep(20 * time.Millisecond) // no event for it
	}
	return p.Status().StoredRecords
}

// expectDropped fails if raw (a request with transaction id tx) sent on l is answered: RFC
// 6940 §6.3.4 drops a request whose signature fails, or whose originator is not its signer,
// without an answer. It waits 3 s (the overlay-reliability-timer) for one.
func expectDropped(t *testing.T, what string, c *Client, l *link.Link, raw []byte, tx uint64) {
	t.Helper()
	ans, err := c.Exchange(testCtx(t, 3*time.Second), l, raw, tx)
	if err == nil {
		code, phrase, _ := ErrorCode(ans)
		t.Errorf("%s: answered %v %v (%s), want dropped unanswered", what, ans.Code, code, phrase)
		return
	}
	t.Logf("%s: dropped (%v)", what, err)
}

// withVia re-encodes raw with a via list naming from (a relay of from's request: the via
// list is not signed, RFC 6940 §6.3.4), keeping the signature.
func withVia(t *testing.T, raw []byte, from wire.NodeID) []byte {
	t.Helper()
	m, err := wire.Decode(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.ViaList = []wire.Destination{wire.NodeDestination(from)}
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
