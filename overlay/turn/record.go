package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Record is the TurnServer value of the TURN-SERVICE Kind (RFC 6940 §9):
//
//	struct {
//	  uint8                   iteration;
//	  IpAddressPort           server_address;
//	} TurnServer;
type Record struct {
	Iteration uint8
	Addr      netip.AddrPort
}

// MarshalBinary encodes the TurnServer (IpAddressPort as in RFC 6940 §6.3.1.1).
func (r Record) MarshalBinary() ([]byte, error) {
	a := r.Addr.Addr().Unmap()
	b := []byte{r.Iteration}
	switch {
	case a.Is4():
		b = append(b, 1, 6)
		v := a.As4()
		b = append(b, v[:]...)
	case a.Is6():
		b = append(b, 2, 18)
		v := a.As16()
		b = append(b, v[:]...)
	default:
		return nil, fmt.Errorf("turn: record: invalid address %v", r.Addr)
	}
	return binary.BigEndian.AppendUint16(b, r.Addr.Port()), nil
}

// UnmarshalBinary decodes a TurnServer; trailing bytes are an error.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < 3 {
		return errors.New("turn: record: too short")
	}
	it, typ, n := b[0], b[1], int(b[2])
	body := b[3:]
	if len(body) != n {
		return fmt.Errorf("turn: record: address length %d, %d bytes follow", n, len(body))
	}
	var a netip.Addr
	switch {
	case typ == 1 && n == 6:
		a = netip.AddrFrom4([4]byte(body[:4]))
	case typ == 2 && n == 18:
		// An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 §2.5.5.2); it is
		// kept in that form, which is how it is encoded again.
		a = netip.AddrFrom16([16]byte(body[:16])).Unmap()
	default:
		return fmt.Errorf("turn: record: address type %d with length %d", typ, n)
	}
	port := binary.BigEndian.Uint16(body[n-2:])
	if port == 0 || a.IsUnspecified() {
		return fmt.Errorf("turn: record: unusable address %v:%d", a, port)
	}
	r.Iteration, r.Addr = it, netip.AddrPortFrom(a, port)
	return nil
}
