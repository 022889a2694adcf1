package wire

import (
	"encoding"
	"fmt"
)

// Error is a codec error. Code is the RELOAD error code an ErrorResponse
// for the offending message should carry (RFC 6940 §6.3.3.1).
type Error struct {
	Code ErrorCode
	Op   string // what was being decoded, e.g. "forwarding header"
	Err  error  // underlying cause, may be nil
	Msg  string
}

func (e *Error) Error() string {
	s := "wire: " + e.Op + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (" + e.Code.String() + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorResponse returns the ErrorResponse body to send for this error.
func (e *Error) ErrorResponse() *ErrorResponse {
	p := e.Msg
	if len(p) > 255 {
		p = p[:255]
	}
	return &ErrorResponse{Code: e.Code, Phrase: p}
}

func errorf(code ErrorCode, op, format string, a ...any) *Error {
	return &Error{Code: code, Op: op, Msg: fmt.Sprintf(format, a...)}
}

// Body is implemented by every method body type.
type Body interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// KindModels resolves a Kind-ID to its data model. Needed to decode
// StoredData values (RFC 6940 §7: the model is not on the wire).
type KindModels interface {
	DataModel(KindID) (DataModel, bool)
}

// SetBody encodes b and sets m.Code and m.Body.
func (m *Message) SetBody(code MessageCode, b encoding.BinaryMarshaler) error {
	raw, err := b.MarshalBinary()
	if err != nil {
		return fmt.Errorf("wire: encode %v body: %w", code, err)
	}
	m.Code, m.Body = code, raw
	return nil
}

// Encode serialises m (RFC 6940 §6.3). It fills in Length, and Version and
// Fragment when zero.
func Encode(m *Message) ([]byte, error) { return nil, errTODO }

// Decode parses a complete message of at most maxSize bytes (0 = no limit
// beyond the length field). Unknown critical extensions and forwarding
// options yield *Error with the matching code.
func Decode(b []byte, maxSize int) (*Message, error) { return nil, errTODO }

// DecodeHeader parses only the forwarding header and returns it with the
// number of bytes it occupied, so a peer can forward without decoding the
// contents (RFC 6940 §6.3.2).
func DecodeHeader(b []byte) (*ForwardingHeader, int, error) { return nil, 0, errTODO }

// ParseBody decodes m.Body into the typed body for m.Code, e.g. *StoreReq.
// kinds may be nil (DefaultKindModels is used).
func ParseBody(m *Message, kinds KindModels) (any, error) { return nil, errTODO }
