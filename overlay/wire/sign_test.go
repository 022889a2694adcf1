package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"
)

type testKey struct {
	signer crypto.Signer
	cert   *x509.Certificate
	node   NodeID
}

var (
	keysOnce sync.Once
	keys     map[string]*testKey
)

func makeKey(t testing.TB, signer crypto.Signer, node NodeID) *testKey {
	u, _ := url.Parse("reload://0110" + node.String() + "@chordphone.example/") // RFC 6940 §14.15
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "alice"},
		NotBefore:    time.Unix(1700000000, 0),
		NotAfter:     time.Unix(1700000000, 0).Add(24 * time.Hour * 365 * 50),
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{signer: signer, cert: cert, node: node}
}

func testKeys(t testing.TB) map[string]*testKey {
	keysOnce.Do(func() {
		keys = map[string]*testKey{}
		for i, name := range []string{"rsa", "rsa2"} {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			keys[name] = makeKey(t, k, nid(byte(0x50+i)))
		}
		for i, name := range []string{"ecdsa", "ecdsa2"} {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			keys[name] = makeKey(t, k, nid(byte(0x60+i)))
		}
	})
	return keys
}

func TestSignVerifyMessage(t *testing.T) {
	ks := testKeys(t)
	for _, pair := range [][2]string{{"rsa", "rsa2"}, {"ecdsa", "ecdsa2"}, {"rsa", "ecdsa"}} {
		k, other := ks[pair[0]], ks[pair[1]]
		for _, idKind := range []string{"cert_hash", "cert_hash_node_id"} {
			t.Run(pair[0]+"/"+pair[1]+"/"+idKind, func(t *testing.T) {
				m := sampleMessage(sampleBodies()[4], 77)
				id := CertHashIdentity(k.cert)
				if idKind == "cert_hash_node_id" {
					id = CertHashNodeIDIdentity(k.node, k.cert)
				}
				if err := Sign(m, k.signer, id); err != nil {
					t.Fatal(err)
				}
				m.Security.Certificates = []GenericCertificate{{Type: CertificateX509, Certificate: k.cert.Raw}}
				wantAlg := AlgRSASHA256
				if _, ok := k.signer.(*ecdsa.PrivateKey); ok {
					wantAlg = AlgECDSASHA256
				}
				if m.Security.Signature.Algorithm != wantAlg {
					t.Fatalf("algorithm %+v", m.Security.Signature.Algorithm)
				}
				raw, err := Encode(m)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(raw, 0)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := FindCertificate(got)
				if err != nil {
					t.Fatal(err)
				}
				if err := Verify(got, cert); err != nil {
					t.Fatalf("verify: %v", err)
				}
				// Another key's certificate is rejected.
				if err := Verify(got, other.cert); err == nil {
					t.Fatal("verified with another certificate")
				}
				// Header fields outside the signature input may change
				// in transit (TTL, via list).
				got.Header.TTL--
				got.Header.ViaList = append(got.Header.ViaList, NodeDestination(nid(9)))
				if err := Verify(got, cert); err != nil {
					t.Fatalf("verify after forwarding: %v", err)
				}
				// Flipping any bit of the signed contents is detected.
				for _, pos := range []int{0, len(got.Body) / 2, len(got.Body) - 1} {
					got.Body[pos] ^= 0x01
					if err := Verify(got, cert); err == nil {
						t.Fatalf("flipped body bit %d verified", pos)
					}
					got.Body[pos] ^= 0x01
				}
				got.Header.TransactionID ^= 1
				if err := Verify(got, cert); err == nil {
					t.Fatal("changed transaction id verified")
				}
				got.Header.TransactionID ^= 1
				got.Security.Signature.Value[3] ^= 0x80
				if err := Verify(got, cert); err == nil {
					t.Fatal("flipped signature bit verified")
				}
			})
		}
	}
}

func TestVerifyUnsigned(t *testing.T) {
	ks := testKeys(t)
	m := sampleMessage(sampleBodies()[0], 1)
	if err := Verify(m, ks["rsa"].cert); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("want ErrUnsigned, got %v", err)
	}
}

func TestSignVerifyStoredData(t *testing.T) {
	ks := testKeys(t)
	res := ResourceIDFromName("sip:alice@example.org")
	for _, name := range []string{"rsa", "ecdsa"} {
		k := ks[name]
		t.Run(name, func(t *testing.T) {
			sd := sampleStoredData(DataModelDictionary, mustMarshal(sampleSipReg()))
			if err := SignStoredData(&sd, res, KindSIPRegistration, k.signer, CertHashIdentity(k.cert)); err != nil {
				t.Fatal(err)
			}
			// Through the wire and back.
			req := &StoreReq{Resource: res, KindData: []StoreKindData{{Kind: KindSIPRegistration, Values: []StoredData{sd}}}}
			var back StoreReq
			if err := back.UnmarshalBinary(mustMarshal(req)); err != nil {
				t.Fatal(err)
			}
			got := back.KindData[0].Values[0]
			if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := VerifyStoredData(&got, res, KindTURNService, k.cert); err == nil {
				t.Fatal("verified under another kind")
			}
			if err := VerifyStoredData(&got, ResourceIDFromName("x"), KindSIPRegistration, k.cert); err == nil {
				t.Fatal("verified under another resource")
			}
			got.StorageTime++
			if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err == nil {
				t.Fatal("changed storage_time verified")
			}
			got.StorageTime--
			got.Value.Dictionary.Value.Value[5] ^= 0x04
			if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err == nil {
				t.Fatal("flipped value bit verified")
			}
			got.Value.Dictionary.Value.Value[5] ^= 0x04
			if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err != nil {
				t.Fatalf("restored value: %v", err)
			}
			if err := VerifyStoredData(&got, res, KindSIPRegistration, ks[name+"2"].cert); err == nil {
				t.Fatal("verified with another key")
			}
		})
	}
}

func TestStoredDataSignatureInputLayout(t *testing.T) {
	sd := StoredData{StorageTime: 0x0102030405060708, Value: SingleValue([]byte{0xee})}
	in, err := StoredDataSignatureInput(&sd, ResourceID{0xaa, 0xbb}, 0x11223344, &NoneIdentity)
	if err != nil {
		t.Fatal(err)
	}
	// resource_id || kind || storage_time || StoredDataValue || SignerIdentity (RFC 6940 §7.1)
	want := hx(t, "aabb 11223344 0102030405060708 01 00000001 ee 03 0000")
	if string(in) != string(want) {
		t.Fatalf("got %x want %x", in, want)
	}
}

// RFC 6940 §7.4.2.2: the array index is zeroed before signing, so a value
// appended with index 0xffffffff verifies at whatever index it was stored.
func TestStoredDataSignatureArrayIndexZeroed(t *testing.T) {
	k := testKeys(t)["ecdsa"]
	res := ResourceIDFromName("sip:alice@example.org")
	sd := sampleStoredData(DataModelArray, []byte("cert"))
	sd.Value.Array.Index = 0xffffffff
	if err := SignStoredData(&sd, res, KindSIPRegistration, k.signer, CertHashIdentity(k.cert)); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint32{0, 7, 0xffffffff} {
		got := sd
		got.Value.Array.Index = idx
		if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err != nil {
			t.Fatalf("index %d: %v", idx, err)
		}
	}
	got := sd
	got.Value.Array.Value.Value = []byte("cerT")
	if err := VerifyStoredData(&got, res, KindSIPRegistration, k.cert); err == nil {
		t.Fatal("changed array value verified")
	}
}
