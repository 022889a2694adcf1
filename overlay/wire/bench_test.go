package wire

import "testing"

// typicalMessages returns a typical StoreReq, what a Chordphone stores when it registers: one
// SIP-REGISTRATION dictionary entry (RFC 7904) with an RSA-2048 signature,
// in a signed message carrying the signer's certificate.
func typicalMessages(b *testing.B) (store, fetch *Message) {
	k := testKeys(b)["rsa"]
	id := CertHashIdentity(k.cert)
	res := ResourceIDFromName("sip:alice@example.org")
	reg := mustMarshal(&SipRegistration{Type: SipRegistrationRoute, ContactPrefs: []byte{},
		DestinationList: []Destination{NodeDestination(nid(0x40))}})
	sd := StoredData{StorageTime: 1700000000000, Lifetime: 3600, Value: DictionaryValue(dictKey[:], reg)}
	if err := SignStoredData(&sd, res, KindSIPRegistration, k.signer, id); err != nil {
		b.Fatal(err)
	}
	sign := func(m *Message) *Message {
		m.Security.Certificates = []GenericCertificate{{Certificate: k.cert.Raw}}
		if err := Sign(m, k.signer, id); err != nil {
			b.Fatal(err)
		}
		return m
	}
	store = sign(sampleMessage(sample{CodeStoreReq, &StoreReq{Resource: res, KindData: []StoreKindData{
		{Kind: KindSIPRegistration, GenerationCounter: 1, Values: []StoredData{sd}}}}}, 1))
	sd2 := sd
	sd2.Value = DictionaryValue(dictKey2[:], reg)
	fetch = sign(sampleMessage(sample{CodeFetchAns, &FetchAns{KindResponses: []FetchKindResponse{
		{Kind: KindSIPRegistration, Generation: 2, Values: []StoredData{sd, sd2}}}}}, 1))
	return store, fetch
}

func benchRoundTrip(b *testing.B, m *Message, body Body) {
	raw, err := Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.SetBody(m.Code, body); err != nil {
			b.Fatal(err)
		}
		out, err := Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		got, err := Decode(out, DefaultMaxMessageSize)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseBody(got, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreReqEncodeDecode: body marshal + message encode + decode + body parse.
func BenchmarkStoreReqEncodeDecode(b *testing.B) {
	store, _ := typicalMessages(b)
	body, err := ParseBody(store, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrip(b, store, body)
}

// BenchmarkFetchAnsEncodeDecode: body marshal + message encode + decode + body parse.
func BenchmarkFetchAnsEncodeDecode(b *testing.B) {
	_, fetch := typicalMessages(b)
	body, err := ParseBody(fetch, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrip(b, fetch, body)
}

// BenchmarkDecodeHeader is the per-hop cost of a forwarding decision.
func BenchmarkDecodeHeader(b *testing.B) {
	store, _ := typicalMessages(b)
	raw, _ := Encode(store)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeHeader(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign and BenchmarkVerify are the cost of the message signature of a typical
// StoreReq (RFC 6940 §6.3.4) with each identity kind: RSA-2048 (RSASSA-PKCS1-v1_5/SHA-256,
// mandatory to implement) and ECDSA P-256 (SHA-256), cert_hash identity.
func BenchmarkSign(b *testing.B) {
	for _, kind := range []string{"rsa", "ecdsa"} {
		b.Run(kind, func(b *testing.B) {
			k := testKeys(b)[kind]
			store, _ := typicalMessages(b)
			id := CertHashIdentity(k.cert)
			b.ReportAllocs()
			for b.Loop() {
				if err := Sign(store, k.signer, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, kind := range []string{"rsa", "ecdsa"} {
		b.Run(kind, func(b *testing.B) {
			k := testKeys(b)[kind]
			store, _ := typicalMessages(b)
			if err := Sign(store, k.signer, CertHashIdentity(k.cert)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(store, k.cert); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
