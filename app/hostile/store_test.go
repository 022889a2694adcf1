package hostile

import (
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestForgedStoresRefused: a storing peer refuses every forged or tampered SIP-REGISTRATION
// store with Error_Forbidden (RFC 6940 §7.1, §7.3.3; RFC 7904 §3.3) and what it holds is
// unchanged afterwards.
func TestForgedStoresRefused(t *testing.T) {
	ps := startPeers(t, 1)
	storer := ps[0]
	alice, eve := newUser(t, "alice"), newUser(t, "eve")
	al, el := alice.dial(t, storer), eve.dial(t, storer)

	// Alice's genuine registration.
	now := time.Now()
	genuine := alice.registration(t, alice.aor(), alice.NodeID, now)
	expectOK(t, "alice's own store", call(t, alice, al, alice.storeMsg(alice.aor(), wire.KindSIPRegistration, genuine)), wire.CodeStoreAns)
	aliceBefore := snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration)
	eveBefore := snapshot(t, eve, el, eve.aor(), wire.KindSIPRegistration)
	if values(aliceBefore) != 1 || values(eveBefore) != 0 {
		t.Fatalf("setup: alice %d values, eve %d", values(aliceBefore), values(eveBefore))
	}
	later := now.Add(time.Second)

	t.Run("AoRNotTheCertificates", func(t *testing.T) {
		// Eve, with her own certificate, registers herself under alice's AoR.
		sd := eve.registration(t, alice.aor(), eve.NodeID, later)
		expectCode(t, "eve's value at alice's AoR", call(t, eve, el, eve.storeMsg(alice.aor(), wire.KindSIPRegistration, sd)), wire.ErrForbidden)
	})
	t.Run("KeyNotTheSignersNodeID", func(t *testing.T) {
		// At her own AoR, but under alice's Node-ID as dictionary key (RFC 6940 §7.3.3).
		sd := eve.registration(t, eve.aor(), alice.NodeID, later)
		expectCode(t, "eve's value under alice's Node-ID", call(t, eve, el, eve.storeMsg(eve.aor(), wire.KindSIPRegistration, sd)), wire.ErrForbidden)
	})
	t.Run("SignedByAnotherUser", func(t *testing.T) {
		// The value names alice's certificate (sent along) but eve's key made the signature.
		v, _ := kinds.RouteRegistration(eve.NodeID, "")
		sd := wire.StoredData{StorageTime: uint64(later.UnixMilli()), Lifetime: 600, Value: wire.DictionaryValue(alice.NodeID[:], v)}
		if err := storage.SignStoredData(&sd, alice.aor(), wire.KindSIPRegistration, eve.Key, eve.Chain[0]); err != nil {
			t.Fatal(err)
		}
		sd.Signature.Identity = wire.CertHashIdentity(alice.Chain[0])
		expectCode(t, "value naming alice's certificate, signed by eve", call(t, eve, el, eve.storeMsg(alice.aor(), wire.KindSIPRegistration, sd), alice.Chain[0]), wire.ErrForbidden)
	})
	t.Run("GenuineValueInEvesRequest", func(t *testing.T) {
		// Alice's own newer value (properly signed by her), carried in a StoreReq that eve
		// signs: the request's signer must satisfy the policy too.
		sd := alice.registration(t, alice.aor(), alice.NodeID, later)
		expectCode(t, "alice's value in eve's StoreReq", call(t, eve, el, eve.storeMsg(alice.aor(), wire.KindSIPRegistration, sd), alice.Chain[0]), wire.ErrForbidden)
	})
	t.Run("FlippedValueByte", func(t *testing.T) {
		// Alice's value with one byte of the registration flipped after signing; the request
		// itself is signed correctly (by alice), so only the value signature is wrong.
		sd := alice.registration(t, alice.aor(), alice.NodeID, later)
		d := sd.Value.Dictionary.Value
		d.Value = flip(d.Value, 3)
		sd.Value.Dictionary.Value = d
		expectCode(t, "tampered value", call(t, alice, al, alice.storeMsg(alice.aor(), wire.KindSIPRegistration, sd)), wire.ErrForbidden)
	})
	t.Run("FlippedMessageByte", func(t *testing.T) {
		// A correct StoreReq with one byte of the message contents flipped in transit: the
		// message signature (RFC 6940 §6.3.4) fails.
		sd := alice.registration(t, alice.aor(), alice.NodeID, later)
		m := alice.storeMsg(alice.aor(), wire.KindSIPRegistration, sd)
		raw := alice.Encode(m)
		_, hl, err := wire.DecodeHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		raw = flip(raw, hl+6+45) // storage_time of the value (code 2, body length 4, then 45 bytes into the StoreReq)
		expectDropped(t, "message with a flipped byte", alice.Client, al, raw, m.Header.TransactionID)
	})

	sameSnapshot(t, "forged stores at alice's AoR", aliceBefore, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))
	sameSnapshot(t, "forged stores at eve's AoR", eveBefore, snapshot(t, eve, el, eve.aor(), wire.KindSIPRegistration))
}

// TestReplayedStores: a StoreReq sent again is never applied twice (RFC 6940 §6.2.1
// transaction cache; §7.4.1.1 storage_time): the same bytes on the same link are answered
// from the cache, an old request replayed by another node after an update is refused with
// Error_Data_Too_Old, and the current one replayed changes nothing (generation counter).
func TestReplayedStores(t *testing.T) {
	ps := startPeers(t, 1)
	storer := ps[0]
	alice, eve := newUser(t, "alice"), newUser(t, "eve")
	al, el := alice.dial(t, storer), eve.dial(t, storer)
	ctx := testCtx(t, 60*time.Second)

	now := time.Now()
	m1 := alice.storeMsg(alice.aor(), wire.KindSIPRegistration, alice.registration(t, alice.aor(), alice.NodeID, now))
	raw1 := alice.Encode(m1)
	ans1, err := alice.Exchange(ctx, al, raw1, m1.Header.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	expectOK(t, "first store", ans1, wire.CodeStoreAns)
	gen1 := storeGeneration(t, ans1)
	snap1 := snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration)

	// Same bytes, same link, at once: the cached answer, nothing applied.
	for i := 0; i < 3; i++ {
		again, err := alice.Exchange(ctx, al, raw1, m1.Header.TransactionID)
		if err != nil {
			t.Fatal(err)
		}
		expectOK(t, "retransmission", again, wire.CodeStoreAns)
		if g := storeGeneration(t, again); g != gen1 {
			t.Errorf("retransmission answered generation %d, first answer %d", g, gen1)
		}
	}
	sameSnapshot(t, "retransmitted StoreReq", snap1, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))

	// Eve replays alice's request as it is over her own link: the originator is not the
	// signer (RFC 6940 §6.3.4): dropped unanswered.
	expectDropped(t, "alice's request replayed by eve as hers", eve.Client, el, raw1, m1.Header.TransactionID)
	// Eve replays it as a relay of alice's (via list naming alice): the cached answer.
	ans, err := eve.Exchange(ctx, el, withVia(t, raw1, alice.NodeID), m1.Header.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	expectOK(t, "replay relayed for alice", ans, wire.CodeStoreAns)
	if g := storeGeneration(t, ans); g != gen1 {
		t.Errorf("replay of the current request moved the generation from %d to %d", gen1, g)
	}
	sameSnapshot(t, "replay of the current StoreReq", snap1, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))

	// Alice updates; trudy replays the old request relayed for alice: the cached answer of
	// the first transaction (§6.2.1) or Error_Data_Too_Old (§7.4.1.1); the update stays.
	m2 := alice.storeMsg(alice.aor(), wire.KindSIPRegistration, alice.registration(t, alice.aor(), alice.NodeID, now.Add(time.Second)))
	expectOK(t, "update", call(t, alice, al, m2), wire.CodeStoreAns)
	snap2 := snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration)
	trudy := newUser(t, "trudy")
	ans, err = trudy.Exchange(ctx, trudy.dial(t, storer), withVia(t, raw1, alice.NodeID), m1.Header.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, isErr := ErrorCode(ans); isErr {
		expectCode(t, "old StoreReq replayed after an update", ans, wire.ErrDataTooOld)
	} else if g := storeGeneration(t, ans); g != gen1 {
		t.Errorf("old StoreReq replayed after an update answered generation %d, want the cached %d", g, gen1)
	}
	sameSnapshot(t, "replay of the old StoreReq", snap2, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))

	// A changed transaction id breaks the message signature: dropped (§6.3.4).
	raw3 := withVia(t, raw1, alice.NodeID)
	raw3[20] ^= 0xff // transaction id, first byte (RFC 6940 §6.3.2 layout)
	expectDropped(t, "replay under a new transaction id", eve.Client, el, raw3, m1.Header.TransactionID^(0xff<<56))
	sameSnapshot(t, "replay under a new transaction id", snap2, snapshot(t, alice, al, alice.aor(), wire.KindSIPRegistration))
}

// TestReplayedAppendNotAppliedTwice: an array append (index 0xffffffff, RFC 6940 §7.4.1.1)
// replayed by another node must not add the value a second time. CERTIFICATE_BY_USER is an
// array Kind every storing peer accepts (RFC 6940 §8).
func TestReplayedAppendNotAppliedTwice(t *testing.T) {
	ps := startPeers(t, 1)
	storer := ps[0]
	alice, eve := newUser(t, "alice"), newUser(t, "eve")
	al, el := alice.dial(t, storer), eve.dial(t, storer)
	ctx := testCtx(t, 60*time.Second)

	sd, err := storage.NewValue(alice.aor(), wire.KindCertificateByUser, wire.ArrayValue(0xffffffff, alice.Chain[0].Raw), time.Now(), time.Hour, alice.creds())
	if err != nil {
		t.Fatal(err)
	}
	m := alice.storeMsg(alice.aor(), wire.KindCertificateByUser, sd)
	raw := alice.Encode(m)
	ans, err := alice.Exchange(ctx, al, raw, m.Header.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	expectOK(t, "append", ans, wire.CodeStoreAns)
	before := snapshot(t, alice, al, alice.aor(), wire.KindCertificateByUser)
	if values(before) != 1 {
		t.Fatalf("after one append: %d values\n%s", values(before), before)
	}
	// Each replay relayed by another node for alice (as hers it would be dropped, §6.3.4).
	for i, r := range []*user{eve, newUser(t, "trudy")} {
		l := el
		if r != eve {
			l = r.dial(t, storer)
		}
		ans, err := r.Exchange(ctx, l, withVia(t, raw, alice.NodeID), m.Header.TransactionID)
		if err != nil {
			t.Fatal(err)
		}
		code, phrase, isErr := ErrorCode(ans)
		t.Logf("replay %d: error=%v %v %s", i+1, isErr, code, phrase)
	}
	after := snapshot(t, alice, al, alice.aor(), wire.KindCertificateByUser)
	if n := values(after); n != 1 {
		t.Errorf("BUG: a replayed append was applied again: %d copies of alice's certificate stored "+
			"(overlay/storage/engine.go Engine.Store resolves index 0xffffffff to a new slot without looking for an identical value; "+
			"array signatures cover index 0, so the copy verifies)\n%s", n, after)
	}
}

func storeGeneration(t *testing.T, ans *wire.Message) uint64 {
	t.Helper()
	var sa wire.StoreAns
	if err := sa.UnmarshalBinary(ans.Body); err != nil || len(sa.KindResponses) != 1 {
		t.Fatalf("StoreAns: %v %+v", err, sa)
	}
	return sa.KindResponses[0].GenerationCounter
}
