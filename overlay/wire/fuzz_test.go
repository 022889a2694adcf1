package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ and are regenerated with
//   WIRE_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./overlay/wire/
// Each fuzz target also runs its seeds as part of the normal test run.

// checkError requires every decode error to be a *Error (a typed error
// that maps to an ErrorResponse code).
func checkError(t *testing.T, err error) {
	t.Helper()
	var we *Error
	if err != nil && !errors.As(err, &we) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

func FuzzDecode(f *testing.F) {
	for i := range sampleBodies() {
		raw, _ := Encode(sampleMessage(sampleBodies()[i], uint64(i)))
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, 1<<16)
		checkError(t, err)
		if err != nil {
			return
		}
		// Decoding is canonical: re-encoding gives the same bytes.
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, again)
		}
		body, err := ParseBody(m, nil)
		checkError(t, err)
		if err != nil {
			return
		}
		nb, err := body.MarshalBinary()
		if err != nil {
			t.Fatalf("body re-encode: %v", err)
		}
		if !bytes.Equal(nb, m.Body) {
			t.Fatalf("%v body re-encode differs:\n in %x\nout %x", m.Code, m.Body, nb)
		}
	})
}

func FuzzBody(f *testing.F) {
	for _, s := range sampleBodies() {
		f.Add(uint16(s.code), mustMarshal(s.body))
	}
	f.Add(uint16(0), mustMarshal(&SipRegistration{Type: SipRegistrationRoute, ContactPrefs: []byte("x"), DestinationList: []Destination{NodeDestination(nid(1)), CompressedDestination(0x8002)}}))
	f.Add(uint16(0), mustMarshal(sampleSipReg()))
	f.Fuzz(func(t *testing.T, code uint16, b []byte) {
		var body Body
		if code == 0 {
			body = &SipRegistration{}
		} else if body = NewBody(MessageCode(code)); body == nil {
			return
		}
		err := body.UnmarshalBinary(b)
		checkError(t, err)
		if err != nil {
			return
		}
		out, err := body.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("%T re-encode differs:\n in %x\nout %x", body, b, out)
		}
	})
}

func FuzzFrame(f *testing.F) {
	d, _ := DataFrame(1, bigMessage(f, 10, 1))
	f.Add(d)
	f.Add(AckFrame(9, 0xf0f0f0f0))
	f.Add([]byte{0x80, 0, 0, 0, 1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		checkError(t, err)
		if err == nil {
			out, err := AppendFrame(nil, &fr)
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("frame re-encode differs: %v", err)
			}
			if n, ok, err := FrameSize(b); err != nil || !ok || n != len(b) {
				t.Fatalf("FrameSize %d %v %v", n, ok, err)
			}
		}
		// Stream reading must never over-allocate or panic.
		r := bytes.NewReader(b)
		for range 4 {
			if _, err := ReadFrame(r, 5000); err != nil {
				break
			}
		}
	})
}

// fuzzFragments encodes fragments as [u16 length][bytes]... for the corpus.
func fuzzFragments(frags [][]byte) []byte {
	var out []byte
	for _, f := range frags {
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

func FuzzReassemble(f *testing.F) {
	raw := bigMessage(f, 1500, 3)
	frags, _ := Fragment(raw, 600)
	f.Add(fuzzFragments(frags))
	f.Add(fuzzFragments([][]byte{frags[2], frags[0], frags[1], frags[0]}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Reassembler{MaxMessageSize: 5000, MaxBytes: 8000, Timeout: time.Second}
		now := time.Unix(0, 0)
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if n > len(b) {
				n = len(b)
			}
			frag := b[:n]
			b = b[n:]
			now = now.Add(100 * time.Millisecond)
			out, err := r.Add(frag, now)
			checkError(t, err)
			if out != nil {
				// An oversize message comes out as its first max+1 bytes with
				// Error_Message_Too_Large, so that the node can answer it.
				tooLarge := CodeOf(err) == ErrMessageTooLarge && len(out) == 5001
				if len(out) > 5000 && !tooLarge {
					t.Fatalf("reassembled %d bytes over limit", len(out))
				}
				if tooLarge {
					continue
				}
				h, _, err := DecodeHeader(out)
				if err != nil {
					t.Fatalf("reassembled message header: %v", err)
				}
				if !bytes.Equal(out, frag) && h.IsFragment() {
					t.Fatal("reassembled message still a fragment")
				}
			}
			if _, bytes := r.Pending(); bytes > 8000 {
				t.Fatalf("buffered %d bytes", bytes)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from the samples.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("WIRE_WRITE_CORPUS") == "" {
		t.Skip("set WIRE_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(target, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&buf, "[]byte(%s)\n", strconv.Quote(string(v)))
			case uint16:
				fmt.Fprintf(&buf, "uint16(%d)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range sampleBodies() {
		m := sampleMessage(s, uint64(i))
		raw, _ := Encode(m)
		write("FuzzDecode", s.code.String(), raw)
		write("FuzzBody", s.code.String(), uint16(s.code), mustMarshal(s.body))
	}
	ks := testKeys(t)
	m := sampleMessage(sampleBodies()[4], 5)
	m.Header.ViaList = append(m.Header.ViaList, CompressedDestination(0x8123), OpaqueDestination(OpaqueID{1, 2}))
	m.Header.Options = []ForwardingOption{{Type: 3, Flags: ResponseCopy, Data: []byte{1}}}
	m.Extensions = []MessageExtension{{Type: 5, Contents: []byte("e")}}
	m.Security.Certificates = []GenericCertificate{{Certificate: ks["ecdsa"].cert.Raw}}
	if err := Sign(m, ks["ecdsa"].signer, CertHashIdentity(ks["ecdsa"].cert)); err != nil {
		t.Fatal(err)
	}
	raw, _ := Encode(m)
	write("FuzzDecode", "signed_store_req", raw)
	write("FuzzBody", "sipreg_route", uint16(0), mustMarshal(&SipRegistration{Type: SipRegistrationRoute, ContactPrefs: []byte("x"), DestinationList: []Destination{NodeDestination(nid(1)), CompressedDestination(0x8002)}}))
	write("FuzzBody", "sipreg_uri", uint16(0), mustMarshal(sampleSipReg()))
	d, _ := DataFrame(1, bigMessage(t, 10, 1))
	write("FuzzFrame", "data", d)
	write("FuzzFrame", "ack", AckFrame(9, 0xf0f0f0f0))
	write("FuzzFrame", "two_frames", append(append([]byte(nil), d...), AckFrame(1, 1)...))
	big := bigMessage(t, 1500, 3)
	frags, _ := Fragment(big, 600)
	write("FuzzReassemble", "in_order", fuzzFragments(frags))
	write("FuzzReassemble", "shuffled_dup", fuzzFragments([][]byte{frags[2], frags[0], frags[1], frags[0]}))
	write("FuzzReassemble", "unfragmented", fuzzFragments([][]byte{bigMessage(t, 10, 4)}))
}
