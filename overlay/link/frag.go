package link

import (
	"encoding/binary"
	"fmt"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Forwarding header layout (RFC 6940 §6.3.2): fixed part of 38 bytes, fragment field at 12,
// length at 16, transaction id at 20, list lengths at 32, 34, 36.
const (
	hdrFixed    = 38
	offFragment = 12
	offLength   = 16
	offTxID     = 20
)

func protoName(p wire.OverlayLinkType) string {
	switch p {
	case wire.LinkDTLSUDPSR:
		return "DTLS-UDP-SR"
	case wire.LinkDTLSUDPSRNoICE:
		return "DTLS-UDP-SR-NO-ICE"
	case wire.LinkTLSTCPFHNoICE:
		return "TLS-TCP-FH-NO-ICE"
	}
	return fmt.Sprintf("link-type-%d", p)
}

// headerLen returns the forwarding header length of msg, or 0 if msg has no valid header.
func headerLen(msg []byte) int {
	if len(msg) < hdrFixed || binary.BigEndian.Uint32(msg) != wire.Token {
		return 0
	}
	n := hdrFixed + int(binary.BigEndian.Uint16(msg[32:])) + int(binary.BigEndian.Uint16(msg[34:])) + int(binary.BigEndian.Uint16(msg[36:]))
	if n > len(msg) {
		return 0
	}
	return n
}

// fragment splits msg into RELOAD fragments of at most max bytes (RFC 6940 §6.7, done by
// wire.Fragment). The results never alias msg.
func fragment(msg []byte, max int) ([][]byte, error) {
	if len(msg) <= max {
		return [][]byte{append([]byte(nil), msg...)}, nil
	}
	parts, err := wire.Fragment(msg, max)
	if err != nil {
		return nil, err
	}
	if len(parts) == 1 {
		parts[0] = append([]byte(nil), parts[0]...)
	}
	return parts, nil
}
