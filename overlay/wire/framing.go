package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// FrameType is the FramedMessageType (RFC 6940 §6.6.2).
type FrameType uint8

// Frame types (RFC 6940 §6.6.2).
const (
	FrameData FrameType = 128
	FrameAck  FrameType = 129
)

// MaxFramePayload is the largest message a data frame can carry (opaque<0..2^24-1>).
const MaxFramePayload = 1<<24 - 1

// Frame is a FramedMessage (RFC 6940 §6.6.2). For data frames Sequence and
// Message are set; for ack frames Sequence is the ack_sequence and Received
// the bitmask of the 32 sequence numbers before it.
type Frame struct {
	Type     FrameType
	Sequence uint32
	Message  []byte
	Received uint32
}

// AppendFrame appends the encoding of f to dst.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	switch f.Type {
	case FrameData:
		if len(f.Message) > MaxFramePayload {
			return nil, fmt.Errorf("wire: frame: message of %d bytes exceeds 2^24-1", len(f.Message))
		}
		dst = append(dst, byte(FrameData))
		dst = binary.BigEndian.AppendUint32(dst, f.Sequence)
		n := len(f.Message)
		dst = append(dst, byte(n>>16), byte(n>>8), byte(n))
		return append(dst, f.Message...), nil
	case FrameAck:
		dst = append(dst, byte(FrameAck))
		dst = binary.BigEndian.AppendUint32(dst, f.Sequence)
		return binary.BigEndian.AppendUint32(dst, f.Received), nil
	}
	return nil, fmt.Errorf("wire: frame: unknown type %d", f.Type)
}

// MarshalBinary encodes the frame.
func (f *Frame) MarshalBinary() ([]byte, error) { return AppendFrame(nil, f) }

// DataFrame frames msg as a data frame with sequence seq.
func DataFrame(seq uint32, msg []byte) ([]byte, error) {
	return AppendFrame(make([]byte, 0, 8+len(msg)), &Frame{Type: FrameData, Sequence: seq, Message: msg})
}

// AckFrame encodes an ack frame.
func AckFrame(ackSeq, received uint32) []byte {
	b, _ := AppendFrame(make([]byte, 0, 9), &Frame{Type: FrameAck, Sequence: ackSeq, Received: received})
	return b
}

// FrameSize returns the size of the frame at the start of b, or ok=false if
// b does not yet hold a complete frame header. It is for splitting a
// stream (TLS/TCP) into frames. A bad type yields an error.
func FrameSize(b []byte) (n int, ok bool, err error) {
	if len(b) < 1 {
		return 0, false, nil
	}
	switch FrameType(b[0]) {
	case FrameData:
		if len(b) < 8 {
			return 0, false, nil
		}
		return 8 + (int(b[5])<<16 | int(b[6])<<8 | int(b[7])), true, nil
	case FrameAck:
		return 9, true, nil
	}
	return 0, false, errorf(ErrInvalidMessage, "frame", "unknown frame type %d", b[0])
}

// ParseFrame decodes exactly one frame occupying all of b. The data
// frame's Message aliases b.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) < 1 {
		return f, errorf(ErrInvalidMessage, "frame", "empty")
	}
	f.Type = FrameType(b[0])
	switch f.Type {
	case FrameData:
		if len(b) < 8 {
			return f, errorf(ErrInvalidMessage, "frame", "data frame header truncated (%d bytes)", len(b))
		}
		f.Sequence = binary.BigEndian.Uint32(b[1:5])
		n := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if n != len(b)-8 {
			return f, errorf(ErrInvalidMessage, "frame", "data frame length %d, %d bytes follow", n, len(b)-8)
		}
		f.Message = b[8:len(b):len(b)]
	case FrameAck:
		if len(b) != 9 {
			return f, errorf(ErrInvalidMessage, "frame", "ack frame of %d bytes, want 9", len(b))
		}
		f.Sequence = binary.BigEndian.Uint32(b[1:5])
		f.Received = binary.BigEndian.Uint32(b[5:9])
	default:
		return f, errorf(ErrInvalidMessage, "frame", "unknown frame type %d", b[0])
	}
	return f, nil
}

// ReadFrame reads one frame from a stream transport. Data frames larger
// than maxMessage bytes (0 = 2^24-1) yield Error_Message_Too_Large before
// their payload is read; memory is allocated only after that check.
func ReadFrame(r io.Reader, maxMessage int) (Frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return Frame{}, err
	}
	switch FrameType(hdr[0]) {
	case FrameData:
		if _, err := io.ReadFull(r, hdr[1:8]); err != nil {
			return Frame{}, fmt.Errorf("wire: read data frame header: %w", io.ErrUnexpectedEOF)
		}
		n := int(hdr[5])<<16 | int(hdr[6])<<8 | int(hdr[7])
		if maxMessage > 0 && n > maxMessage {
			return Frame{}, errorf(ErrMessageTooLarge, "frame", "data frame of %d bytes exceeds %d", n, maxMessage)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return Frame{}, fmt.Errorf("wire: read data frame: %w", io.ErrUnexpectedEOF)
		}
		return Frame{Type: FrameData, Sequence: binary.BigEndian.Uint32(hdr[1:5]), Message: msg}, nil
	case FrameAck:
		if _, err := io.ReadFull(r, hdr[1:9]); err != nil {
			return Frame{}, fmt.Errorf("wire: read ack frame: %w", io.ErrUnexpectedEOF)
		}
		return ParseFrame(hdr[:])
	}
	return Frame{}, errorf(ErrInvalidMessage, "frame", "unknown frame type %d", hdr[0])
}

// AckWindow tracks the sequence numbers of the 32 most recently received
// data frames of a connection to build ack frames (RFC 6940 §6.6.2).
// The zero value is ready to use. Not safe for concurrent use.
type AckWindow struct {
	recent [32]uint32
	n      int // number of valid entries (<= 32)
	next   int // ring position
}

// Receive records data frame seq N and returns the ack_sequence and received
// bitmask to send. RFC 6940 §6.6.2: for each of the 32 previously received
// packets M with N-32 < M < N, the N-M bit is set; bits are numbered from
// the least significant (bit k is 1<<k), so bit 0 is never set.
func (w *AckWindow) Receive(seq uint32) (ackSeq, received uint32) {
	for i := 0; i < w.n; i++ {
		m := w.recent[i]
		d := seq - m // modular distance
		if m != seq && d >= 1 && d <= 31 {
			received |= 1 << d
		}
	}
	w.recent[w.next] = seq
	w.next = (w.next + 1) % len(w.recent)
	if w.n < len(w.recent) {
		w.n++
	}
	return seq, received
}

// AckedBefore reports, for an ack (ackSeq, received), whether sequence
// number seq is positively acknowledged.
func AckedBefore(ackSeq, received, seq uint32) bool {
	if seq == ackSeq {
		return true
	}
	d := ackSeq - seq
	return d >= 1 && d <= 31 && received&(1<<d) != 0
}
