package sipcall

import (
	"bytes"
	"errors"
	"fmt"
)

// maxSDP bounds an SDP body; a SIP message is at most 65535 bytes anyway.
const maxSDP = 60000

// CheckSDP is a quick sanity check of an SDP offer or answer before it goes to the media
// engine (RFC 4566 §5): text lines "x=value", starting with v=0, with o=, s= and t= lines
// and at least one m= line. It does not validate the values; the phone answers an offer
// that fails it with Reject(488).
func CheckSDP(b []byte) error {
	if len(b) == 0 {
		return errors.New("sdp: empty")
	}
	if len(b) > maxSDP {
		return fmt.Errorf("sdp: %d bytes is too long", len(b))
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	var seen [26]int
	for i, l := range lines {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z' {
			return fmt.Errorf("sdp: line %d is not type=value", i+1)
		}
		for _, ch := range l[2:] {
			if ch < 0x20 && ch != '\t' || ch == 0x7f {
				return fmt.Errorf("sdp: line %d holds a control character", i+1)
			}
		}
		if i == 0 && string(l) != "v=0" {
			return errors.New("sdp: does not start with v=0")
		}
		seen[l[0]-'a']++
	}
	for _, t := range []byte("ostm") {
		if seen[t-'a'] == 0 {
			return fmt.Errorf("sdp: no %c= line", t)
		}
	}
	if seen['v'-'a'] != 1 {
		return errors.New("sdp: more than one v= line")
	}
	return nil
}
