package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Envelope is one part of one message as it is stored (all integers big-endian):
//
//	"CPM1"                              magic and version
//	from      u8 length, user@overlay   the sender (the value's signer)
//	to        u8 length, user@overlay   the recipient (the Resource-ID's user)
//	id        16 bytes                  the message's random identity
//	created   u64                       Unix milliseconds, the sender's clock
//	part, parts u8, u8                  this part's index and the number of parts
//	wraps     u8 count (1..MaxWraps), each:
//	            key id  8 bytes         SHA-256 of the recipient certificate's SubjectPublicKeyInfo
//	            alg     u8              WrapECDH or WrapRSA
//	            data    u16 length      the content key wrapped for that certificate
//	nonce     12 bytes
//	sealed    u16 length                AES-256-GCM of the content under the content key,
//	                                    with everything above (to the wraps) as additional data
//
// The content (after opening) is a type byte (ContentText, ContentVoice) and the payload.
type Envelope struct {
	From, To    string
	ID          [16]byte
	Created     time.Time
	Part, Parts int
	Wraps       []Wrap
	Nonce       [12]byte
	Sealed      []byte

	header []byte // the bytes the seal authenticates (set by Parse and Marshal)
}

// Wrap is the content key wrapped for one recipient certificate.
type Wrap struct {
	KeyID [8]byte
	Alg   uint8
	Data  []byte
}

// Wrap algorithms.
const (
	WrapECDH uint8 = 1 // ephemeral ECDH P-256, HKDF-SHA256, AES-256-GCM (ECDSA P-256 certificates)
	WrapRSA  uint8 = 2 // RSA-OAEP with SHA-256 (RSA certificates)
)

// Content types.
const (
	ContentText  uint8 = 1 // UTF-8 text
	ContentVoice uint8 = 2 // voice message: Opus packets (app/voicemail)
)

// Bounds of the format.
const (
	MaxWraps    = 4 // CERTIFICATE_BY_USER keeps up to 4 certificates (RFC 6940 §8)
	maxName     = 255
	maxWrapData = 512
	gcmTag      = 16
)

var magic = []byte("CPM1")

// ErrMalformed is wrapped by every refusal of Parse.
var ErrMalformed = errors.New("malformed mailbox envelope")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Marshal encodes e (its header is what Seal authenticates).
func (e *Envelope) Marshal() ([]byte, error) {
	h, err := e.marshalHeader()
	if err != nil {
		return nil, err
	}
	if len(e.Sealed) < gcmTag || len(e.Sealed) > 0xffff {
		return nil, fmt.Errorf("mailbox: sealed content of %d bytes", len(e.Sealed))
	}
	b := append(append([]byte(nil), h...), e.Nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Sealed)))
	return append(b, e.Sealed...), nil
}

func (e *Envelope) marshalHeader() ([]byte, error) {
	switch {
	case e.From == "" || len(e.From) > maxName || e.To == "" || len(e.To) > maxName:
		return nil, errors.New("mailbox: sender and recipient names must be 1-255 bytes")
	case e.Parts < 1 || e.Parts > 255 || e.Part < 0 || e.Part >= e.Parts:
		return nil, fmt.Errorf("mailbox: part %d of %d", e.Part, e.Parts)
	case len(e.Wraps) < 1 || len(e.Wraps) > MaxWraps:
		return nil, fmt.Errorf("mailbox: %d recipient keys (1-%d)", len(e.Wraps), MaxWraps)
	}
	b := append([]byte(nil), magic...)
	b = append(append(b, byte(len(e.From))), e.From...)
	b = append(append(b, byte(len(e.To))), e.To...)
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Created.UnixMilli()))
	b = append(b, byte(e.Part), byte(e.Parts), byte(len(e.Wraps)))
	for _, w := range e.Wraps {
		if len(w.Data) == 0 || len(w.Data) > maxWrapData {
			return nil, fmt.Errorf("mailbox: wrapped key of %d bytes", len(w.Data))
		}
		b = append(append(b, w.KeyID[:]...), w.Alg)
		b = binary.BigEndian.AppendUint16(b, uint16(len(w.Data)))
		b = append(b, w.Data...)
	}
	e.header = b
	return b, nil
}

// reader takes fields off a byte slice; the first shortfall sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = malformed("%s: %d bytes needed, %d left", what, n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8(what string) int {
	if b := r.take(1, what); b != nil {
		return int(b[0])
	}
	return 0
}

func (r *reader) u16(what string) int {
	if b := r.take(2, what); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

// Parse decodes an Envelope and checks its structure (not its seal). Anything else is an
// error wrapping ErrMalformed: a storing peer refuses it (overlay/storage answers
// Error_Forbidden), a recipient drops it.
func Parse(b []byte) (*Envelope, error) {
	r := &reader{b: b}
	if m := r.take(len(magic), "magic"); r.err == nil && string(m) != string(magic) {
		return nil, malformed("not a mailbox envelope (magic %q)", m)
	}
	e := &Envelope{}
	e.From = string(r.take(r.u8("from length"), "from"))
	e.To = string(r.take(r.u8("to length"), "to"))
	copy(e.ID[:], r.take(16, "id"))
	if t := r.take(8, "created"); t != nil {
		e.Created = time.UnixMilli(int64(binary.BigEndian.Uint64(t)))
	}
	e.Part, e.Parts = r.u8("part"), r.u8("parts")
	n := r.u8("wrap count")
	for i := 0; i < n && r.err == nil; i++ {
		var w Wrap
		copy(w.KeyID[:], r.take(8, "key id"))
		w.Alg = uint8(r.u8("wrap algorithm"))
		w.Data = r.take(r.u16("wrap length"), "wrapped key")
		e.Wraps = append(e.Wraps, w)
	}
	if r.err != nil {
		return nil, r.err
	}
	e.header = b[:len(b)-len(r.b)]
	copy(e.Nonce[:], r.take(12, "nonce"))
	e.Sealed = r.take(r.u16("sealed length"), "sealed content")
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) != 0:
		return nil, malformed("%d bytes after the sealed content", len(r.b))
	case e.From == "" || e.To == "":
		return nil, malformed("empty sender or recipient")
	case e.Parts < 1 || e.Part >= e.Parts:
		return nil, malformed("part %d of %d", e.Part, e.Parts)
	case n < 1 || n > MaxWraps:
		return nil, malformed("%d recipient keys (1-%d)", n, MaxWraps)
	case len(e.Sealed) < gcmTag:
		return nil, malformed("sealed content of %d bytes", len(e.Sealed))
	}
	for _, w := range e.Wraps {
		if (w.Alg != WrapECDH && w.Alg != WrapRSA) || len(w.Data) == 0 || len(w.Data) > maxWrapData {
			return nil, malformed("wrapped key: algorithm %d, %d bytes", w.Alg, len(w.Data))
		}
	}
	return e, nil
}
