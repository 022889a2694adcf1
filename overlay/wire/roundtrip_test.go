package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestBodyRoundTripEveryMethod(t *testing.T) {
	seen := map[MessageCode]bool{}
	for _, s := range sampleBodies() {
		t.Run(s.code.String(), func(t *testing.T) {
			seen[s.code] = true
			b1, err := s.body.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			m := sampleMessage(s, 0x1122334455667788)
			raw, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(raw, DefaultMaxMessageSize)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Code != s.code || !bytes.Equal(got.Body, b1) {
				t.Fatalf("code %v body mismatch", got.Code)
			}
			if !reflect.DeepEqual(got.Header, m.Header) {
				t.Fatalf("header mismatch:\n got %+v\nwant %+v", got.Header, m.Header)
			}
			body, err := ParseBody(got, nil)
			if err != nil {
				t.Fatalf("parse body: %v", err)
			}
			if !reflect.DeepEqual(body, s.body) {
				t.Fatalf("body mismatch:\n got %#v\nwant %#v", body, s.body)
			}
			b2, err := body.MarshalBinary()
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("re-encode differs: %v", err)
			}
		})
	}
	for c := range codeNames {
		if !seen[c] && NewBody(c) != nil {
			t.Errorf("no sample for %v", c)
		}
	}
}

func TestMessageRoundTripFull(t *testing.T) {
	m := sampleMessage(sampleBodies()[0], 99)
	m.Header.TTL = 3
	m.Header.ViaList = []Destination{NodeDestination(nid(1)), CompressedDestination(0x8123), OpaqueDestination(OpaqueID{1, 2, 3})}
	m.Header.DestinationList = []Destination{ResourceDestination(ResourceID{9, 9}), NodeDestination(nid(2))}
	m.Header.Options = []ForwardingOption{{Type: 5, Flags: ResponseCopy, Data: []byte{1}}, {Type: 6, Flags: ForwardCritical, Data: []byte{}}}
	m.Header.MaxResponseLength = 1200
	m.Extensions = []MessageExtension{{Type: 7, Critical: false, Contents: []byte("ext")}}
	m.Security.Certificates = []GenericCertificate{{Type: CertificateX509, Certificate: []byte("der")}}
	m.Security.Signature = Signature{Algorithm: AlgECDSASHA256, Identity: SignerIdentity{Type: IdentityCertHashNodeID, HashAlg: HashSHA256, Hash: []byte{1, 2}}, Value: []byte("sig")}
	raw, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("mismatch:\n got %+v\nwant %+v", got, m)
	}
	h, n, err := DecodeHeader(raw)
	if err != nil || !reflect.DeepEqual(*h, m.Header) {
		t.Fatalf("DecodeHeader: %v %+v", err, h)
	}
	if raw[n] != 0 || raw[n+1] != byte(m.Code) {
		t.Fatalf("header length %d does not end before message_code", n)
	}
	if err := h.CheckForwardingOptions(true, nil); CodeOf(err) != ErrUnsupportedForwardingOption {
		t.Fatalf("forward-critical unknown option: %v", err)
	}
	if err := h.CheckForwardingOptions(false, nil); err != nil {
		t.Fatalf("destination check: %v", err)
	}
	if err := h.CheckForwardingOptions(true, func(o ForwardingOptionType) bool { return o == 6 }); err != nil {
		t.Fatalf("known option: %v", err)
	}
}

func TestSipRegistrationRoundTrip(t *testing.T) {
	for _, r := range []*SipRegistration{
		{Type: SipRegistrationURI, URI: "sip:bob@example.org"},
		{Type: SipRegistrationRoute, ContactPrefs: []byte("+sip.instance"), DestinationList: []Destination{NodeDestination(nid(5)), CompressedDestination(0x8001)}},
		{Type: 9, Raw: []byte{1, 2, 3}},
	} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got SipRegistration
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, r) {
			t.Fatalf("got %+v want %+v", got, r)
		}
	}
}

func TestOtherRoundTrips(t *testing.T) {
	for _, b := range []Body{
		&ChordUpdate{Uptime: 1, Type: ChordPeerReady},
		&ChordUpdate{Uptime: 2, Type: ChordNeighbors, Predecessors: []NodeID{nid(1)}, Successors: []NodeID{}},
		&ChordLeaveData{Type: ChordLeaveFromPred, Predecessors: []NodeID{nid(7), nid(8)}},
		&ConfigUpdateReq{Type: ConfigUpdateKind, Kinds: [][]byte{[]byte("<kind/>"), []byte("<kind2/>")}},
		&ProbeAns{ProbeInfo: []ProbeInformation{{Type: 77, Raw: []byte{1, 2}}}},
	} {
		raw, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(b).Elem()).Interface().(Body)
		if err := got.UnmarshalBinary(raw); err != nil {
			t.Fatalf("%T: %v", b, err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("%T: got %+v want %+v", b, got, b)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	req := &StoreReq{Resource: ResourceID{1}, KindData: []StoreKindData{{Kind: 0xf0000001, Values: []StoredData{sampleStoredData(DataModelSingle, []byte{1})}}}}
	raw, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got StoreReq
	err = got.UnmarshalBinary(raw)
	if CodeOf(err) != ErrUnknownKind {
		t.Fatalf("want Error_Unknown_Kind, got %v", err)
	}
	if err := got.UnmarshalKinds(raw, WithKinds(KindModelMap{0xf0000001: DataModelSingle})); err != nil {
		t.Fatalf("with kinds: %v", err)
	}
	var we *Error
	if !errors.As(err, &we) && err != nil {
		t.Fatal("not *Error")
	}
}

func TestIDs(t *testing.T) {
	n := nid(0)
	p, err := ParseNodeID(n.String())
	if err != nil || p != n {
		t.Fatalf("ParseNodeID: %v %v", p, err)
	}
	if _, err := ParseNodeID("abcd"); err == nil {
		t.Fatal("short id accepted")
	}
	if !nid(0).Less(nid(1)) || nid(1).Compare(nid(1)) != 0 {
		t.Fatal("compare")
	}
	// SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
	if got := ResourceIDFromName("abc").String(); got != "a9993e364706816aba3e25717850c26c" {
		t.Fatalf("ResourceIDFromName = %s", got)
	}
	if got := OverlayHash("abc"); got != 0x9cd0d89d {
		t.Fatalf("OverlayHash = %#x", got)
	}
	for c := range codeNames {
		if c == CodeError {
			if !c.IsAnswer() || c.IsRequest() {
				t.Fatal("error code")
			}
			continue
		}
		if c.IsRequest() == c.IsAnswer() {
			t.Fatalf("%v both/neither", c)
		}
		if c.IsRequest() && c.Answer().Request() != c {
			t.Fatalf("%v answer/request", c)
		}
	}
}
