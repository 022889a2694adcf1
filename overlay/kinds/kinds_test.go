package kinds

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

func signer(t *testing.T, name string) *Signer {
	t.Helper()
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, name, "k.example", identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return SignerFromCert(id.Cert())
}

func TestNormalizeAoR(t *testing.T) {
	for in, want := range map[string]string{
		"sip:alice@Example.ORG":           "alice@example.org",
		"<sips:alice@example.org>":        "alice@example.org",
		"alice@example.org":               "alice@example.org",
		"sip:al%69ce@example.org;gr=abc":  "alice@example.org",
		"sip:alice@example.org?subject=x": "alice@example.org",
	} {
		got, err := NormalizeAoR(in)
		if err != nil || got != want {
			t.Errorf("NormalizeAoR(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "alice", "sip:@example.org", "tel:+123", "a@b@c"} {
		if _, err := NormalizeAoR(bad); err == nil {
			t.Errorf("NormalizeAoR(%q) accepted", bad)
		}
	}
	a, _ := AoRResourceID("sip:alice@EXAMPLE.org")
	if string(a) != string(UserResourceID("alice@example.org")) {
		t.Error("AoR and user name resource ids differ")
	}
}

func TestPolicies(t *testing.T) {
	alice, bob := signer(t, "alice"), signer(t, "bob")
	reg := Default()
	sip, _ := reg.Kind(wire.KindSIPRegistration)
	route, err := RouteRegistration(alice.NodeIDs[0], "")
	if err != nil {
		t.Fatal(err)
	}
	aliceRID := UserResourceID(alice.User)
	ok := wire.DictionaryValue(alice.NodeIDs[0][:], route)
	if err := sip.Authorize(aliceRID, &ok, alice); err != nil {
		t.Fatalf("USER-NODE-MATCH refused the owner: %v", err)
	}
	forbidden := func(what string, err error) {
		t.Helper()
		if err == nil || !errors.Is(err, ErrForbidden) || wire.CodeOf(err) != wire.ErrForbidden {
			t.Errorf("%s: got %v, want Error_Forbidden", what, err)
		}
	}
	forbidden("other user", sip.Authorize(aliceRID, &ok, bob))
	wrongKey := wire.DictionaryValue(bob.NodeIDs[0][:], route)
	forbidden("key not signer's node", sip.Authorize(aliceRID, &wrongKey, alice))
	// cert_hash_node_id naming a Node-ID not in the certificate.
	named := *alice
	named.NodeID = bob.NodeIDs[0]
	forbidden("identity names foreign node", sip.Authorize(aliceRID, &ok, &named))
	bad := wire.DictionaryValue(alice.NodeIDs[0][:], []byte{1, 0, 2, 0, 0})
	forbidden("malformed SipRegistration", sip.Authorize(aliceRID, &bad, alice))
	single := wire.SingleValue(route)
	forbidden("wrong data model", sip.Authorize(aliceRID, &single, alice))
	forbidden("unsigned", sip.Authorize(aliceRID, &ok, nil))
	// A uri registration forwards to another AoR (RFC 7904 §3.1).
	fwd, _ := URIRegistration("sip:bob@k.example")
	fv := wire.DictionaryValue(alice.NodeIDs[0][:], fwd)
	if err := sip.Authorize(aliceRID, &fv, alice); err != nil {
		t.Errorf("uri registration: %v", err)
	}

	byNode, _ := reg.Kind(wire.KindCertificateByNode)
	cv := wire.ArrayValue(0, alice.Cert.Raw)
	if err := byNode.Authorize(NodeResourceID(alice.NodeIDs[0]), &cv, alice); err != nil {
		t.Errorf("NODE-MATCH: %v", err)
	}
	forbidden("NODE-MATCH other node", byNode.Authorize(NodeResourceID(bob.NodeIDs[0]), &cv, alice))
	byUser, _ := reg.Kind(wire.KindCertificateByUser)
	if err := byUser.Authorize(UserResourceID(alice.User), &cv, alice); err != nil {
		t.Errorf("USER-MATCH: %v", err)
	}
	forbidden("USER-MATCH other user", byUser.Authorize(UserResourceID(bob.User), &cv, alice))
	notCert := wire.ArrayValue(0, []byte("junk"))
	forbidden("certificate kind with junk", byUser.Authorize(UserResourceID(alice.User), &notCert, alice))
	bobCert := wire.ArrayValue(0, bob.Cert.Raw)
	forbidden("storing someone else's certificate", byUser.Authorize(UserResourceID(alice.User), &bobCert, alice))

	turn, _ := reg.Kind(wire.KindTURNService)
	ts := func(i int) wire.StoredDataValue {
		b, err := (&TurnServer{Iteration: uint8(i), Addr: netip.MustParseAddrPort("192.0.2.1:3478")}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return wire.SingleValue(b)
	}
	for i := 1; i <= DefaultTURNMaxIter; i++ {
		tv := ts(i)
		if err := turn.Authorize(NodeMultipleResourceID(alice.NodeIDs[0], i), &tv, alice); err != nil {
			t.Fatalf("NODE-MULTIPLE i=%d: %v", i, err)
		}
	}
	tv := ts(DefaultTURNMaxIter + 1)
	forbidden("NODE-MULTIPLE beyond max", turn.Authorize(NodeMultipleResourceID(alice.NodeIDs[0], DefaultTURNMaxIter+1), &tv, alice))
	wrongIter := ts(3)
	forbidden("TurnServer iteration not the resource's", turn.Authorize(NodeMultipleResourceID(alice.NodeIDs[0], 2), &wrongIter, alice))
	junk := wire.SingleValue([]byte{1, 1, 6, 1})
	forbidden("TurnServer malformed", turn.Authorize(NodeMultipleResourceID(alice.NodeIDs[0], 1), &junk, alice))
	v6, _ := (&TurnServer{Iteration: 1, Addr: netip.MustParseAddrPort("[2001:db8::1]:3478")}).MarshalBinary()
	if got, err := ParseTurnServer(v6); err != nil || got.Addr.Port() != 3478 || !got.Addr.Addr().Is6() {
		t.Errorf("TurnServer IPv6 round trip: %v %+v", err, got)
	}
	// Deleting (exists = false) needs no valid value, only the policy.
	del := wire.StoredDataValue{Model: wire.DataModelDictionary, Dictionary: wire.DictionaryEntry{Key: alice.NodeIDs[0][:]}}
	if err := sip.Authorize(aliceRID, &del, alice); err != nil {
		t.Errorf("delete: %v", err)
	}
}

func TestConfigure(t *testing.T) {
	r := Default()
	err := r.Configure([]Limits{
		{Name: NameSIPRegistration, DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 3, MaxSize: 200},
		{ID: 4000, DataModel: "ARRAY", AccessControl: "NODE-MATCH", MaxCount: 9, MaxSize: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := r.Kind(wire.KindSIPRegistration)
	if k.MaxCount != 3 || k.MaxSize != 200 || k.Validate == nil {
		t.Fatalf("SIP limits not applied: %+v", k)
	}
	if m, ok := r.DataModel(4000); !ok || m != wire.DataModelArray {
		t.Fatal("private kind not added")
	}
	for _, bad := range [][]Limits{
		{{Name: "NO-SUCH-KIND"}},
		{{Name: NameSIPRegistration, DataModel: "SINGLE"}},
		{{Name: NameSIPRegistration, AccessControl: "USER-MATCH"}},
		{{ID: 4001, DataModel: "SINGLE", AccessControl: "USER-NODE-MATCH"}},
		{{ID: 4002, DataModel: "SINGLE", AccessControl: "NODE-MULTIPLE"}},
		{{ID: 4003, DataModel: "TREE", AccessControl: "USER-MATCH"}},
	} {
		if err := Default().Configure(bad); err == nil {
			t.Errorf("Configure(%+v) accepted", bad)
		}
	}
	if p, err := ParsePolicy("node-multiple"); err != nil || p != NodeMultiple {
		t.Error("ParsePolicy")
	}
}

func TestDomainRestriction(t *testing.T) {
	var none *DomainRestriction
	if !none.Allows("any.example") {
		t.Error("absent restriction must accept any domain")
	}
	d, _ := NewDomainRestriction("ov.example", false, nil)
	if !d.Allows("OV.example") || d.Allows("other.example") {
		t.Error("disabled restriction must accept only the overlay's domain")
	}
	d, _ = NewDomainRestriction("ov.example", true, []string{`dht\.example\.com`, `.*\.my\.example`})
	if !d.Allows("dht.example.com") || !d.Allows("a.my.example") || d.Allows("my.example.evil") {
		t.Error("patterns (RFC 7904 §3.4 example)")
	}
}

func TestLimitsFromConfig(t *testing.T) {
	r := Default()
	err := r.Configure(LimitsFromConfig([]config.Kind{
		{Name: NameSIPRegistration, DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 2, MaxSize: 300},
		{Name: NameTURNService, DataModel: "SINGLE", AccessControl: "NODE-MULTIPLE", MaxCount: 1, MaxSize: 100, MaxNodeMultiple: 5},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := r.Kind(wire.KindSIPRegistration); k.MaxCount != 2 || k.MaxSize != 300 {
		t.Fatalf("SIP limits %+v", k)
	}
	if k, _ := r.Kind(wire.KindTURNService); k.MaxNodeMultiple != 5 {
		t.Fatalf("TURN limits %+v", k)
	}
}
