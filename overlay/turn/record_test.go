package turn

import (
	"net/netip"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Iteration: 1, Addr: netip.MustParseAddrPort("198.51.100.7:3478")},
		{Iteration: 20, Addr: netip.MustParseAddrPort("[2001:db8::1]:49152")},
	} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Record
		if err := got.UnmarshalBinary(b); err != nil || got != r {
			t.Fatalf("%+v -> %x -> %+v, %v", r, b, got, err)
		}
	}
	// RFC 6940 §9 layout: iteration, then IpAddressPort (type 1, length 6, address, port).
	b, _ := Record{Iteration: 3, Addr: netip.MustParseAddrPort("192.0.2.1:3478")}.MarshalBinary()
	if want := []byte{3, 1, 6, 192, 0, 2, 1, 0x0d, 0x96}; string(b) != string(want) {
		t.Fatalf("encoding %x, want %x", b, want)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 1, 6, 1, 2, 3, 4, 0}, {1, 3, 6, 1, 2, 3, 4, 0, 1}, {1, 1, 6, 0, 0, 0, 0, 0, 1}, {1, 1, 6, 1, 2, 3, 4, 0, 0}, {1, 1, 6, 1, 2, 3, 4, 0, 1, 9}} {
		var r Record
		if err := r.UnmarshalBinary(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestIsPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"198.51.100.7": true, "198.18.1.1": true, "2001:db8::1": true, "8.8.8.8": true,
		"10.1.2.3": false, "192.168.1.1": false, "172.16.0.1": false, "127.0.0.1": false,
		"100.64.0.1": false, "fd00::1": false, "fe80::1": false, "0.0.0.0": false,
	} {
		if got := IsPublic(netip.MustParseAddr(a)); got != want {
			t.Errorf("IsPublic(%s) = %v", a, got)
		}
	}
}

func FuzzRecord(f *testing.F) {
	f.Add([]byte{3, 1, 6, 192, 0, 2, 1, 0x0d, 0x96})
	f.Add([]byte{1, 2, 18, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if r.UnmarshalBinary(b) != nil {
			return
		}
		out, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", r, err)
		}
		var again Record
		if err := again.UnmarshalBinary(out); err != nil || again != r {
			t.Fatalf("round trip %+v -> %+v, %v", r, again, err)
		}
	})
}
