package diag

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

func sampleAnswer() Answer {
	t0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	return Answer{Expiration: t0.Add(30 * time.Second), Initiated: t0, Received: t0.Add(5 * time.Millisecond), HopCounter: 3,
		Infos: []Info{{Kind: RoutingTableSize, Contents: []byte{0, 0, 0, 7}}, {Kind: SoftwareVersion, Contents: []byte("chordphone 0.1.0")}}}
}

// TestRoundTrip: every body decodes to what was encoded (timestamps to the NTP fraction's
// precision), and the wire layout is RFC 7851 §5.1's.
func TestRoundTrip(t *testing.T) {
	a := sampleAnswer()
	r := Request{Expiration: a.Expiration, Initiated: a.Initiated, Flags: Flags(RoutingTableSize, AppUptime), Extensions: []Extension{{Type: 9, Contents: []byte{1}}}}
	var id wire.NodeID
	id[0], id[15] = 0xab, 0xcd
	for _, c := range []struct {
		in, out interface {
			MarshalBinary() ([]byte, error)
			UnmarshalBinary([]byte) error
		}
	}{
		{&r, &Request{}}, {&a, &Answer{}},
		{&PathTrackReq{Destination: id, Request: r}, &PathTrackReq{}},
		{&PathTrackAns{NextHop: id, Response: a}, &PathTrackAns{}},
	} {
		b, err := c.in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.out.UnmarshalBinary(b); err != nil {
			t.Fatalf("%T: %v", c.in, err)
		}
		if !reflect.DeepEqual(c.in, c.out) {
			t.Errorf("%T: %+v became %+v", c.in, c.in, c.out)
		}
		if err := c.out.UnmarshalBinary(append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%T with a trailing byte: %v", c.in, err)
		}
	}
	b, _ := r.MarshalBinary()
	// expiration, timestamp_initiated, dMFlags (0x2 | 0x40), extensions length 7
	if !bytes.Equal(b[16:24], []byte{0, 0, 0, 0, 0, 0, 0, 0x42}) || !bytes.Equal(b[24:28], []byte{0, 0, 0, 7}) {
		t.Errorf("layout % x", b)
	}
	if ntp(time.Date(1900, 1, 1, 0, 0, 1, 0, time.UTC)) != 1<<32 {
		t.Error("NTP seconds are not the high 32 bits")
	}
}

// FuzzParse: no input panics a parser, and what parses encodes again.
func FuzzParse(f *testing.F) {
	a := sampleAnswer()
	for _, v := range []interface{ MarshalBinary() ([]byte, error) }{&a, &PathTrackAns{Response: a}, &Request{Flags: 3}} {
		b, _ := v.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []interface {
			MarshalBinary() ([]byte, error)
			UnmarshalBinary([]byte) error
		}{&Request{}, &Answer{}, &PathTrackReq{}, &PathTrackAns{}} {
			if v.UnmarshalBinary(b) != nil {
				continue
			}
			if _, err := v.MarshalBinary(); err != nil {
				t.Fatalf("%T parsed but does not encode: %v", v, err)
			}
		}
	})
}
