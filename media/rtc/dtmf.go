package rtc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RFC 4733 §2.3: telephone-event payload, 4 bytes:
//
//	event (8) | E (1) | R (1) | volume (6) | duration (16)
type telephoneEvent struct {
	Event    uint8
	End      bool
	Volume   uint8 // -dBm0, 0..63
	Duration uint16
}

var errBadEvent = errors.New("rtc: bad telephone-event payload")

func (e telephoneEvent) marshal() []byte {
	b := make([]byte, 4)
	b[0] = e.Event
	b[1] = e.Volume & 0x3f
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.Duration)
	return b
}

func parseTelephoneEvent(b []byte) (telephoneEvent, error) {
	if len(b) < 4 {
		return telephoneEvent{}, fmt.Errorf("%w: %d bytes", errBadEvent, len(b))
	}
	return telephoneEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:]),
	}, nil
}

// RFC 4733 §3.2: events 0-9, * (10), # (11), A-D (12-15).
const dtmfDigits = "0123456789*#ABCD"

func digitToEvent(r rune) (uint8, error) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i, d := range dtmfDigits {
		if d == r {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("rtc: %q is not a DTMF digit (0-9, *, #, A-D)", r)
}

func eventToDigit(e uint8) (rune, bool) {
	if int(e) < len(dtmfDigits) {
		return rune(dtmfDigits[e]), true
	}
	return 0, false
}
