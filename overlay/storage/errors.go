package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Error is a refused storage operation. Code is the RELOAD error code the
// ErrorResponse carries; Info its error_info (RFC 6940 §6.3.3.1), e.g. the
// StoreAns of Error_Generation_Counter_Too_Low (§7.4.1.2) or the Kind list
// of Error_Unknown_Kind.
type Error struct {
	Code wire.ErrorCode
	Msg  string
	Info []byte
	Err  error
}

func (e *Error) Error() string {
	s := "storage: " + e.Msg + " (" + e.Code.String() + ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause and a *wire.Error with the same code, so that
// wire.CodeOf (which node handlers use to build the ErrorResponse) finds it.
func (e *Error) Unwrap() []error {
	w := &wire.Error{Code: e.Code, Op: "request", Msg: e.Msg}
	if e.Err != nil {
		return []error{w, e.Err}
	}
	return []error{w}
}

// ErrorResponse returns the body to answer with.
func (e *Error) ErrorResponse() *wire.ErrorResponse {
	p := e.Msg
	if len(p) > 255 {
		p = p[:255]
	}
	return &wire.ErrorResponse{Code: e.Code, Phrase: p, Info: e.Info}
}

func errorf(code wire.ErrorCode, format string, a ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// CodeOf returns the RELOAD error code of err: that of a *Error or
// *wire.Error it wraps, or Error_Invalid_Message.
func CodeOf(err error) wire.ErrorCode {
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	return wire.CodeOf(err)
}

// unknownKinds builds Error_Unknown_Kind with error_info
// KindId unknown_kinds<0..2^8-1> (RFC 6940 §7.4.1.2).
func unknownKinds(ids []wire.KindID) *Error {
	if len(ids) > 63 {
		ids = ids[:63]
	}
	info := make([]byte, 1, 1+4*len(ids))
	info[0] = byte(4 * len(ids))
	for _, k := range ids {
		info = binary.BigEndian.AppendUint32(info, uint32(k))
	}
	return &Error{Code: wire.ErrUnknownKind, Msg: fmt.Sprintf("unknown kinds %v", ids), Info: info}
}

// UnknownKindsInfo decodes the error_info of Error_Unknown_Kind.
func UnknownKindsInfo(info []byte) ([]wire.KindID, error) {
	if len(info) < 1 || int(info[0]) != len(info)-1 || info[0]%4 != 0 {
		return nil, errors.New("storage: malformed unknown_kinds")
	}
	var out []wire.KindID
	for b := info[1:]; len(b) >= 4; b = b[4:] {
		out = append(out, wire.KindID(binary.BigEndian.Uint32(b)))
	}
	return out, nil
}
