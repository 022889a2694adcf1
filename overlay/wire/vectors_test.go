package wire

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// hx turns a commented hex listing into bytes: everything after ';' on a
// line is a comment, whitespace is ignored, and "quoted" text is ASCII.
func hx(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		for len(line) > 0 {
			line = strings.TrimLeft(line, " \t")
			if line == "" {
				break
			}
			if line[0] == '"' {
				j := strings.IndexByte(line[1:], '"')
				out = append(out, line[1:1+j]...)
				line = line[2+j:]
				continue
			}
			j := strings.IndexAny(line, " \t\"")
			if j < 0 {
				j = len(line)
			}
			b, err := hex.DecodeString(line[:j])
			if err != nil {
				t.Fatalf("bad hex %q: %v", line[:j], err)
			}
			out = append(out, b...)
			line = line[j:]
		}
	}
	return out
}

func seq16(start byte) NodeID { return nid(start) }

// TestVectorForwardingHeader checks a complete PingReq message against a
// listing worked out by hand from RFC 6940 §6.3.2, §6.3.3 and §6.3.4.
func TestVectorForwardingHeader(t *testing.T) {
	m := &Message{
		Header: ForwardingHeader{
			OverlayHash:           0x01020304,
			ConfigurationSequence: 5,
			TTL:                   100,
			TransactionID:         0x0102030405060708,
			MaxResponseLength:     0x00001000,
			ViaList:               []Destination{NodeDestination(seq16(0x00))},
			DestinationList:       []Destination{ResourceDestination(ResourceID(hx(t, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))), CompressedDestination(0x8001)},
			Options:               []ForwardingOption{{Type: 1, Flags: DestinationCritical | ResponseCopy, Data: []byte{0xff}}},
		},
		Code:     CodePingReq,
		Body:     hx(t, "0000"), // PingReq with empty padding
		Security: SecurityBlock{Signature: Signature{Identity: NoneIdentity, Value: []byte{}}},
	}
	want := hx(t, `
		d2454c4f          ; relo_token "RELO" | 0x80
		01020304          ; overlay
		0005              ; configuration_sequence
		0a                ; version 1.0
		64                ; ttl 100
		c0000000          ; fragment: high bit + last fragment, offset 0
		00000067          ; length = 103 bytes (whole message)
		0102030405060708  ; transaction_id
		00001000          ; max_response_length
		0012              ; via_list_length 18
		0015              ; destination_list_length 21
		0005              ; options_length 5
		01 10 000102030405060708090a0b0c0d0e0f     ; via: node, len 16, id
		02 11 10 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff  ; dest: resource, len 17, ResourceId<0..255>
		8001              ; dest: compressed 16-bit opaque id
		01 06 0001 ff     ; option type 1, DESTINATION_CRITICAL|RESPONSE_COPY, len 1
		0017              ; message_code ping_req (23, RFC 6940 §14.8)
		00000002 0000     ; message_body<0..2^32-1>: PingReq padding<0..2^16-1> empty
		00000000          ; extensions: none
		0000              ; certificates: none
		00 00             ; signature algorithm none/anonymous
		03 0000           ; SignerIdentity none, length 0
		0000              ; signature_value empty
	`)
	got, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode mismatch\n got %x\nwant %x", got, want)
	}
	d, err := Decoder{MaxMessageSize: 5000, KnownOption: func(o ForwardingOptionType) bool { return o == 1 }}.decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, m) {
		t.Fatalf("decode mismatch:\n got %+v\nwant %+v", d, m)
	}
	// Without understanding option 1 the destination must refuse it.
	if _, err := Decode(want, 5000); CodeOf(err) != ErrUnsupportedForwardingOption {
		t.Fatalf("want Error_Unsupported_Forwarding_Option, got %v", err)
	}
}

// decode is a value-receiver convenience for tests.
func (dc Decoder) decode(b []byte) (*Message, error) { return dc.Decode(b) }

// TestVectorStoreReqSipRegistration checks a StoreReq of one
// SIP-REGISTRATION dictionary entry (RFC 6940 §7.4.1.1, §7.2.3, §7; RFC 7904 §3.2).
func TestVectorStoreReqSipRegistration(t *testing.T) {
	reg := &SipRegistration{Type: SipRegistrationURI, URI: "sip:alice@example.org"}
	regBytes, err := reg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wantReg := hx(t, `
		01                    ; type sip_registration_uri
		0017                  ; length 23
		0015 "sip:alice@example.org" ; uri<0..2^16-1>, 21 bytes
	`)
	if !bytes.Equal(regBytes, wantReg) {
		t.Fatalf("SipRegistration\n got %x\nwant %x", regBytes, wantReg)
	}
	req := &StoreReq{
		Resource:      ResourceID(hx(t, "000102030405060708090a0b0c0d0e0f")),
		ReplicaNumber: 0,
		KindData: []StoreKindData{{
			Kind:              KindSIPRegistration,
			GenerationCounter: 1,
			Values: []StoredData{{
				StorageTime: 1700000000000,
				Lifetime:    3600,
				Value:       DictionaryValue([]byte("node"), regBytes),
				Signature: Signature{
					Algorithm: AlgRSASHA256,
					Identity:  SignerIdentity{Type: IdentityCertHash, HashAlg: HashSHA256, Hash: []byte{0xaa}},
					Value:     []byte{0xbb, 0xcc},
				},
			}},
		}},
	}
	want := hx(t, `
		10 000102030405060708090a0b0c0d0e0f ; resource: ResourceId<0..2^8-1>, 16 bytes
		00                    ; replica_number
		00000051              ; kind_data<0..2^32-1>: 81 bytes
		  00000001            ;   kind SIP-REGISTRATION
		  0000000000000001    ;   generation_counter
		  00000041            ;   values<0..2^32-1>: 65 bytes
		    0000003d          ;     StoredData.length 61
		    0000018bcfe56800  ;     storage_time 1700000000000 ms
		    00000e10          ;     lifetime 3600 s
		    0004 "node"       ;     DictionaryEntry.key<0..2^16-1>
		    01                ;     DataValue.exists
		    0000001a          ;     DataValue.value<0..2^32-1>: 26 bytes
		      01 0017 0015 "sip:alice@example.org" ; SipRegistration
		    04 01             ;     SignatureAndHashAlgorithm sha256, rsa
		    01 0003 04 01 aa  ;     SignerIdentity cert_hash, len 3, sha256, hash<0..255>
		    0002 bbcc         ;     signature_value<0..2^16-1>
	`)
	got, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode mismatch\n got %x\nwant %x", got, want)
	}
	var back StoreReq
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, req) {
		t.Fatalf("decode mismatch:\n got %+v\nwant %+v", back, req)
	}
	var r2 SipRegistration
	if err := r2.UnmarshalBinary(back.KindData[0].Values[0].Value.Dictionary.Value.Value); err != nil || r2.URI != reg.URI {
		t.Fatalf("inner registration: %v %+v", err, r2)
	}
}

// TestVectorAttachReq checks an AttachReq with a host and a srflx candidate
// (RFC 6940 §6.5.1.1, IpAddressPort of §6.3.1.1).
func TestVectorAttachReq(t *testing.T) {
	req := &AttachReqAns{
		Ufrag: []byte("uf"), Password: []byte("pw"), Role: []byte("active"),
		Candidates: []IceCandidate{
			{AddrPort: netip.MustParseAddrPort("192.0.2.1:6084"), OverlayLink: LinkDTLSUDPSR, Foundation: []byte("1"), Priority: 2130706431, Type: CandHost},
			{AddrPort: netip.MustParseAddrPort("198.51.100.1:40000"), OverlayLink: LinkDTLSUDPSR, Foundation: []byte("2"), Priority: 1694498815, Type: CandSrflx,
				RelAddrPort: netip.MustParseAddrPort("10.0.0.2:6084"), Extensions: []IceExtension{{Name: []byte("n"), Value: []byte("v")}}},
		},
		SendUpdate: true,
	}
	want := hx(t, `
		02 "uf"               ; ufrag<0..2^8-1>
		02 "pw"               ; password<0..2^8-1>
		06 "active"           ; role<0..2^8-1>
		0032                  ; candidates<0..2^16-1>: 50 bytes
		  01 06 c0000201 17c4 ;   addr_port ipv4, len 6, 192.0.2.1, 6084 (the RFC's own example)
		  01                  ;   overlay_link DTLS-UDP-SR
		  01 "1"              ;   foundation<0..255>
		  7effffff            ;   priority 2130706431
		  01                  ;   type host
		  0000                ;   extensions: none
		  01 06 c6336401 9c40 ;   addr_port 198.51.100.1:40000
		  01                  ;   overlay_link DTLS-UDP-SR
		  01 "2"              ;   foundation
		  64ffffff            ;   priority 1694498815
		  02                  ;   type srflx
		  01 06 0a000002 17c4 ;   rel_addr_port 10.0.0.2:6084
		  0006 0001 "n" 0001 "v" ; extensions: one IceExtension name/value
		01                    ; send_update true
	`)
	got, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode mismatch\n got %x\nwant %x", got, want)
	}
	var back AttachReqAns
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	// Decoding gives empty (non-nil) slices for empty vectors.
	req.Candidates[0].Extensions = nil
	back.Candidates[0].Extensions = nil
	if !reflect.DeepEqual(&back, req) {
		t.Fatalf("decode mismatch:\n got %+v\nwant %+v", back, req)
	}
}

// TestVectorChordUpdate checks a "full" ChordUpdate (RFC 6940 §10.7).
func TestVectorChordUpdate(t *testing.T) {
	u := &ChordUpdate{Uptime: 42, Type: ChordFull,
		Predecessors: []NodeID{seq16(0x00)},
		Successors:   []NodeID{seq16(0x10), seq16(0x20)},
		Fingers:      []NodeID{}}
	want := hx(t, `
		0000002a              ; uptime 42 s
		03                    ; type full
		0010 000102030405060708090a0b0c0d0e0f ; predecessors<0..2^16-1>: one NodeId
		0020 101112131415161718191a1b1c1d1e1f ; successors: two NodeIds
		     202122232425262728292a2b2c2d2e2f
		0000                  ; fingers: none
	`)
	got, err := u.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode mismatch\n got %x\nwant %x", got, want)
	}
	var back ChordUpdate
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, u) {
		t.Fatalf("decode mismatch:\n got %+v\nwant %+v", back, u)
	}
	// peer_ready carries nothing after the type.
	pr, _ := (&ChordUpdate{Uptime: 1, Type: ChordPeerReady}).MarshalBinary()
	if !bytes.Equal(pr, hx(t, "00000001 01")) {
		t.Fatalf("peer_ready: %x", pr)
	}
}

// TestVectorFraming checks data and ack frames (RFC 6940 §6.6.2).
func TestVectorFraming(t *testing.T) {
	d, err := DataFrame(7, []byte("RELO"))
	if err != nil {
		t.Fatal(err)
	}
	if want := hx(t, "80 00000007 000004 \"RELO\""); !bytes.Equal(d, want) {
		t.Fatalf("data frame %x want %x", d, want)
	}
	a := AckFrame(7, 0x00000006)
	if want := hx(t, "81 00000007 00000006"); !bytes.Equal(a, want) {
		t.Fatalf("ack frame %x want %x", a, want)
	}
}
