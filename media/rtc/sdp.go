package rtc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// Direction is an SDP media direction (RFC 3264 §5.1, §8.4 for hold).
type Direction int

const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

func (d Direction) String() string {
	return [...]string{"sendrecv", "sendonly", "recvonly", "inactive"}[d]
}

// Sends reports whether d allows sending.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether d allows receiving.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

func directionOf(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// Reverse is the direction seen from the other side.
func (d Direction) Reverse() Direction { return directionOf(d.Receives(), d.Sends()) }

// ErrBadSDP wraps every error about an unusable session description.
var ErrBadSDP = errors.New("rtc: bad SDP")

// inspectSDP parses desc and returns the direction of its audio section
// (RFC 3264 §5.1: media-level attribute, else session-level, else sendrecv).
func inspectSDP(desc string) (Direction, error) {
	if strings.TrimSpace(desc) == "" {
		return 0, fmt.Errorf("%w: empty description", ErrBadSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	dir := SendRecv
	if d, ok := attrDirection(sd.Attributes); ok {
		dir = d
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			return 0, fmt.Errorf("%w: audio stream rejected (port 0)", ErrBadSDP)
		}
		if d, ok := attrDirection(m.Attributes); ok {
			dir = d
		}
		hasOpus := false
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "opus/48000") {
				hasOpus = true
			}
		}
		if !hasOpus {
			return 0, fmt.Errorf("%w: audio stream offers no Opus (RFC 7587)", ErrBadSDP)
		}
		return dir, nil
	}
	return 0, fmt.Errorf("%w: no audio stream", ErrBadSDP)
}

func attrDirection(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv":
			return SendRecv, true
		case "sendonly":
			return SendOnly, true
		case "recvonly":
			return RecvOnly, true
		case "inactive":
			return Inactive, true
		}
	}
	return 0, false
}

// setDirection rewrites every direction attribute of desc to d. pion keeps
// its transceiver sendrecv at all times; hold is expressed on the wire by
// rewriting the direction here and acted upon by the Session itself.
func setDirection(desc string, d Direction) string {
	lines := strings.SplitAfter(desc, "\n")
	for i, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		switch body {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
			lines[i] = "a=" + d.String() + l[len(body):]
		}
	}
	return strings.Join(lines, "")
}
