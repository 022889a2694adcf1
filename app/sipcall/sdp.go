package sipcall

import (
	"errors"
	"fmt"

	"github.com/pion/sdp/v3"
)

// maxSDP bounds an SDP body; a SIP message is at most 65535 bytes anyway.
const maxSDP = 60000

// CheckSDP checks an SDP offer or answer before it goes to the media engine: it must parse
// as a session description (RFC 4566 §5, with pion/sdp, the parser the media engine uses)
// and offer at least one media stream (an m= line). The phone answers an offer that fails
// it with Reject(488).
func CheckSDP(b []byte) error {
	if len(b) == 0 {
		return errors.New("sdp: empty")
	}
	if len(b) > maxSDP {
		return fmt.Errorf("sdp: %d bytes is too long", len(b))
	}
	var d sdp.SessionDescription
	if err := d.Unmarshal(b); err != nil {
		return fmt.Errorf("sdp: %w", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return errors.New("sdp: no m= line")
	}
	return nil
}
