package wire

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

func encodedSample(t *testing.T, i int) []byte {
	t.Helper()
	raw, err := Encode(sampleMessage(sampleBodies()[i], 1))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func wantCode(t *testing.T, err error, code ErrorCode) {
	t.Helper()
	var we *Error
	if !errors.As(err, &we) {
		t.Fatalf("want *wire.Error with %v, got %v", code, err)
	}
	if we.Code != code {
		t.Fatalf("want %v, got %v (%v)", code, we.Code, err)
	}
	if r := we.ErrorResponse(); r.Code != code || r.Phrase == "" {
		t.Fatalf("ErrorResponse %+v", r)
	}
}

func TestDecodeStrict(t *testing.T) {
	raw := encodedSample(t, 4) // StoreReq
	t.Run("too large", func(t *testing.T) {
		_, err := Decode(raw, len(raw)-1)
		wantCode(t, err, ErrMessageTooLarge)
	})
	t.Run("length field over max", func(t *testing.T) {
		b := append([]byte(nil), raw[:headerFixedLen]...)
		binary.BigEndian.PutUint32(b[offLength:], 1<<30)
		_, err := Decode(b, 5000)
		wantCode(t, err, ErrMessageTooLarge)
	})
	t.Run("wrong token", func(t *testing.T) {
		b := append([]byte(nil), raw...)
		b[0] = 0x52
		_, err := Decode(b, 0)
		wantCode(t, err, ErrInvalidMessage)
	})
	t.Run("wrong version", func(t *testing.T) {
		b := append([]byte(nil), raw...)
		b[10] = 0x01
		_, err := Decode(b, 0)
		wantCode(t, err, ErrInvalidMessage)
	})
	t.Run("fragment high bit clear", func(t *testing.T) {
		b := append([]byte(nil), raw...)
		b[offFragment] &^= 0x80
		_, err := Decode(b, 0)
		wantCode(t, err, ErrInvalidMessage)
	})
	t.Run("fragment", func(t *testing.T) {
		b := append([]byte(nil), raw...)
		b[offFragment] = 0x80 // not last
		_, err := Decode(b, 0)
		wantCode(t, err, ErrInvalidMessage)
		if !errors.Is(err, ErrFragment) {
			t.Fatalf("want ErrFragment, got %v", err)
		}
	})
	t.Run("length mismatch", func(t *testing.T) {
		_, err := Decode(append(append([]byte(nil), raw...), 0), 0)
		wantCode(t, err, ErrInvalidMessage)
	})
	t.Run("critical option", func(t *testing.T) {
		m := sampleMessage(sampleBodies()[0], 1)
		m.Header.Options = []ForwardingOption{{Type: 9, Flags: DestinationCritical}}
		b, _ := Encode(m)
		_, err := Decode(b, 0)
		wantCode(t, err, ErrUnsupportedForwardingOption)
		m.Header.Options[0].Flags = ResponseCopy
		b, _ = Encode(m)
		if _, err := Decode(b, 0); err != nil {
			t.Fatalf("non-critical option rejected: %v", err)
		}
	})
	t.Run("critical extension", func(t *testing.T) {
		m := sampleMessage(sampleBodies()[0], 1)
		m.Extensions = []MessageExtension{{Type: ExtensionExp, Critical: true, Contents: []byte{1}}}
		b, _ := Encode(m)
		_, err := Decode(b, 0)
		wantCode(t, err, ErrUnknownExtension)
		dc := Decoder{KnownExtension: func(x MessageExtensionType) bool { return x == ExtensionExp }}
		if _, err := dc.Decode(b); err != nil {
			t.Fatalf("known extension rejected: %v", err)
		}
		m.Extensions[0].Critical = false
		b, _ = Encode(m)
		if _, err := Decode(b, 0); err != nil {
			t.Fatalf("non-critical extension rejected: %v", err)
		}
	})
	t.Run("bad boolean", func(t *testing.T) {
		b, _ := (&AttachReqAns{}).MarshalBinary()
		b[len(b)-1] = 2
		var a AttachReqAns
		wantCode(t, a.UnmarshalBinary(b), ErrInvalidMessage)
	})
	t.Run("huge inner length", func(t *testing.T) {
		// A body claiming 4 GiB must fail on the length check, not allocate.
		b := []byte{0x00, 0xff, 0xff, 0xff, 0xff}
		var f FetchAns
		wantCode(t, f.UnmarshalBinary(b[1:]), ErrInvalidMessage)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			_ = f.UnmarshalBinary(b[1:])
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Fatalf("%d bytes allocated rejecting a 4-byte input 10 times", d)
		}
	})
	t.Run("DecrementTTL", func(t *testing.T) {
		b := append([]byte(nil), raw...)
		b[offTTL] = 1
		if err := DecrementTTL(b); err != nil || b[offTTL] != 0 {
			t.Fatal(err)
		}
		wantCode(t, DecrementTTL(b), ErrTTLExceeded)
	})
}

// TestTruncationsNeverPanic decodes every prefix of every sample message
// and body, and a corrupted byte at every position; each must either decode
// or return a *Error.
func TestTruncationsNeverPanic(t *testing.T) {
	for i, s := range sampleBodies() {
		raw := encodedSample(t, i)
		for n := 0; n < len(raw); n++ {
			b := append([]byte(nil), raw[:n]...)
			if len(b) >= offLength+4 {
				binary.BigEndian.PutUint32(b[offLength:], uint32(n))
			}
			if _, err := Decode(b, 0); err == nil {
				t.Fatalf("%v: prefix %d decoded", s.code, n)
			} else {
				var we *Error
				if !errors.As(err, &we) {
					t.Fatalf("%v: prefix %d: untyped error %v", s.code, n, err)
				}
			}
		}
		body := mustMarshal(s.body)
		for n := 0; n < len(body); n++ {
			nb := NewBody(s.code)
			if err := nb.UnmarshalBinary(body[:n]); err == nil && n < len(body) {
				// Some prefixes are themselves valid encodings only if
				// the body is empty; a strict decoder rejects the rest.
				t.Fatalf("%v: body prefix %d of %d decoded", s.code, n, len(body))
			}
		}
		for p := 0; p < len(raw); p++ {
			b := append([]byte(nil), raw...)
			b[p] ^= 0xff
			m, err := Decode(b, 0)
			if err == nil {
				_, _ = ParseBody(m, nil)
			}
		}
	}
}

// TestDecodeDoesNotAliasInput: callers may reuse their read buffer.
func TestDecodeDoesNotAliasInput(t *testing.T) {
	raw := encodedSample(t, 4)
	m, err := Decode(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte(nil), m.Body...)
	req, err := ParseBody(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := mustMarshal(req)
	for i := range raw {
		raw[i] = 0xee
	}
	for i := range m.Body {
		if m.Body[i] != body[i] {
			t.Fatal("message body aliases the input")
		}
	}
	for i := range m.Body {
		m.Body[i] = 0xdd
	}
	if got := mustMarshal(req); string(got) != string(want) {
		t.Fatal("parsed body aliases the message body")
	}
	// Appending to a decoded value must not overwrite its neighbours.
	m2, _ := Decode(encodedSample(t, 4), 0)
	sr, _ := ParseBody(m2, nil)
	s := sr.(*StoreReq)
	next := append([]byte(nil), s.KindData[0].Values[0].Signature.Value...)
	_ = append(s.Resource, 0xff, 0xff, 0xff)
	if string(s.KindData[0].Values[0].Signature.Value) != string(next) {
		t.Fatal("append to a decoded slice overwrote the next field")
	}
}

func TestHeaderChecks(t *testing.T) {
	h := &ForwardingHeader{ConfigurationSequence: 10, OverlayHash: OverlayHash("a")}
	if err := h.CheckConfigSequence(10, CodeStoreReq); err != nil {
		t.Fatal(err)
	}
	wantCode(t, h.CheckConfigSequence(11, CodeStoreReq), ErrConfigTooOld)
	wantCode(t, h.CheckConfigSequence(9, CodeStoreReq), ErrConfigTooNew)
	h.ConfigurationSequence = 2 // wrapped past 65534
	wantCode(t, h.CheckConfigSequence(65530, CodeStoreReq), ErrConfigTooNew)
	h.ConfigurationSequence = 0xffff
	if err := h.CheckConfigSequence(7, CodeConfigUpdateReq); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckOverlay(OverlayHash("a")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, h.CheckOverlay(OverlayHash("b")), ErrIncompatibleWithOverlay)
}

func TestReplaceHeader(t *testing.T) {
	m := sampleMessage(sampleBodies()[4], 3)
	ks := testKeys(t)
	if err := Sign(m, ks["ecdsa"].signer, CertHashIdentity(ks["ecdsa"].cert)); err != nil {
		t.Fatal(err)
	}
	raw, _ := Encode(m)
	h, _, err := DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Forward: append ourselves to the via list, pop the destination, TTL-1.
	h.ViaList = append(h.ViaList, NodeDestination(nid(0xcc)))
	h.DestinationList = h.DestinationList[1:]
	h.TTL--
	fwd, err := ReplaceHeader(raw, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(fwd, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Header.ViaList) != 2 || len(got.Header.DestinationList) != 0 || got.Header.TTL != m.Header.TTL-1 {
		t.Fatalf("header not replaced: %+v", got.Header)
	}
	if err := Verify(got, ks["ecdsa"].cert); err != nil {
		t.Fatalf("signature after forwarding: %v", err)
	}
}
