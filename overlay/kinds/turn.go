package kinds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/chordphone/chordphone/overlay/wire"
)

// TurnServer is the TURN-SERVICE value (RFC 6940 §9): the iteration d whose
// H(Node-ID || d) is the Resource-ID, and the server's address
// (IpAddressPort, §6.3.1.1).
type TurnServer struct {
	Iteration uint8
	Addr      netip.AddrPort
}

// MarshalBinary encodes the TurnServer.
func (t *TurnServer) MarshalBinary() ([]byte, error) {
	a := t.Addr.Addr().Unmap()
	b := []byte{t.Iteration}
	switch {
	case a.Is4():
		v := a.As4()
		b = append(append(b, byte(wire.AddressIPv4), 6), v[:]...)
	case a.Is6():
		v := a.As16()
		b = append(append(b, byte(wire.AddressIPv6), 18), v[:]...)
	default:
		return nil, fmt.Errorf("kinds: TurnServer address %v", t.Addr)
	}
	return binary.BigEndian.AppendUint16(b, t.Addr.Port()), nil
}

// ParseTurnServer decodes a TURN-SERVICE value.
func ParseTurnServer(b []byte) (*TurnServer, error) {
	if len(b) < 3 {
		return nil, errors.New("TurnServer: too short")
	}
	t := &TurnServer{Iteration: b[0]}
	typ, l, rest := wire.AddressType(b[1]), int(b[2]), b[3:]
	if len(rest) != l {
		return nil, fmt.Errorf("TurnServer: address length %d, %d bytes follow", l, len(rest))
	}
	switch {
	case typ == wire.AddressIPv4 && l == 6:
		t.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), binary.BigEndian.Uint16(rest[4:]))
	case typ == wire.AddressIPv6 && l == 18:
		t.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[:16])), binary.BigEndian.Uint16(rest[16:]))
	default:
		return nil, fmt.Errorf("TurnServer: address type %d with length %d", typ, l)
	}
	return t, nil
}

// RFC 6940 §9: the value is a TurnServer whose iteration is the d that
// places it at this Resource-ID for the signer's Node-ID.
func validateTurn(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
	t, err := ParseTurnServer(v.Data().Value)
	if err != nil {
		return err
	}
	for _, n := range s.candidates() {
		if same(NodeMultipleResourceID(n, int(t.Iteration)), resource) {
			return nil
		}
	}
	return fmt.Errorf("TurnServer iteration %d does not give this Resource-ID", t.Iteration)
}
