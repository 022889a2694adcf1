package wire

import (
	"crypto/sha1"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
)

// Error is a codec error. Code is the RELOAD error code an ErrorResponse
// for the offending message should carry (RFC 6940 §6.3.3.1).
type Error struct {
	Code ErrorCode
	Op   string // what was being decoded, e.g. "forwarding header"
	Msg  string
	Err  error // underlying cause, may be nil
}

func (e *Error) Error() string {
	s := "wire: " + e.Op + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (" + e.Code.String() + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorResponse returns the ErrorResponse body to send for this error
// (RFC 6940 §6.3.3.1).
func (e *Error) ErrorResponse() *ErrorResponse {
	return &ErrorResponse{Code: e.Code, Phrase: e.Error()}
}

func errorf(code ErrorCode, op, format string, a ...any) *Error {
	return &Error{Code: code, Op: op, Msg: fmt.Sprintf(format, a...)}
}

// CodeOf returns the ErrorCode carried by err if it is (or wraps) a *Error,
// and ErrInvalidMessage otherwise.
func CodeOf(err error) ErrorCode {
	var we *Error
	if errors.As(err, &we) {
		return we.Code
	}
	return ErrInvalidMessage
}

// ErrFragment is wrapped by the *Error that Decode returns for a message
// fragment (RFC 6940 §6.7): pass such input to a Reassembler first.
var ErrFragment = errors.New("message is a fragment")

// Body is implemented by every method body type.
type Body interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// OverlayHash returns the forwarding header overlay field for an overlay
// name: the low 32 bits of SHA-1(name) (RFC 6940 §6.3.2).
func OverlayHash(name string) uint32 {
	h := sha1.Sum([]byte(name))
	return binary.BigEndian.Uint32(h[16:20])
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

// headerFixedLen is the size of the fixed part of the forwarding header.
const headerFixedLen = 4 + 4 + 2 + 1 + 1 + 4 + 4 + 8 + 4 + 2 + 2 + 2

// Offsets of forwarding header fields (RFC 6940 §6.3.2).
const (
	offTTL      = 11
	offFragment = 12
	offLength   = 16
)

// RFC 6940 §6.3.2.2
func encodeDestination(e *enc, d *Destination) {
	switch d.Type {
	case DestinationCompressed:
		if d.Compressed&0x8000 == 0 {
			e.fail("compressed destination %#04x: top bit must be 1", d.Compressed)
			return
		}
		e.u16(d.Compressed)
	case DestinationNode:
		e.u8(uint8(d.Type))
		e.u8(NodeIDSize)
		e.raw(d.Node[:])
	case DestinationResource:
		e.u8(uint8(d.Type))
		s := e.begin(1)
		e.vec8(d.Resource, "resource id")
		e.end(1, s, "destination")
	case DestinationOpaque:
		e.u8(uint8(d.Type))
		s := e.begin(1)
		e.vec8(d.Opaque, "opaque id")
		e.end(1, s, "destination")
	default:
		e.fail("destination type %d", d.Type)
	}
}

// RFC 6940 §6.3.2.2
func decodeDestination(d *dec) Destination {
	if d.err != nil || len(d.b) == 0 {
		d.fail("destination: empty")
		return Destination{}
	}
	if d.b[0]&0x80 != 0 { // compressed 16-bit form
		return Destination{Type: DestinationCompressed, Compressed: d.u16("compressed destination")}
	}
	t := DestinationType(d.u8("destination type"))
	s := d.sub(1, "destination")
	var out Destination
	out.Type = t
	switch t {
	case DestinationNode:
		p := s.take(NodeIDSize, "node id")
		if p != nil {
			copy(out.Node[:], p)
		}
	case DestinationResource:
		out.Resource = ResourceID(s.vec(1, "resource id"))
	case DestinationOpaque:
		out.Opaque = OpaqueID(s.vec(1, "opaque id"))
	default:
		s.fail("unknown destination type %d", t)
	}
	d.join(s, "destination")
	return out
}

func encodeDestinations(e *enc, ds []Destination) {
	for i := range ds {
		encodeDestination(e, &ds[i])
	}
}

func decodeDestinations(d *dec) []Destination {
	var out []Destination
	for !d.empty() {
		out = append(out, decodeDestination(d))
	}
	return out
}

// appendHeader encodes h (RFC 6940 §6.3.2). Length is written as given.
func appendHeader(e *enc, h *ForwardingHeader) {
	e.u32(Token)
	e.u32(h.OverlayHash)
	e.u16(h.ConfigurationSequence)
	v := h.Version
	if v == 0 {
		v = Version
	}
	e.u8(v)
	e.u8(h.TTL)
	f := h.Fragment
	if f == 0 {
		f = FragmentUnfragmented
	}
	e.u32(f)
	e.u32(h.Length)
	e.u64(h.TransactionID)
	e.u32(h.MaxResponseLength)
	lens := len(e.b)
	e.u16(0)
	e.u16(0)
	e.u16(0)
	start := len(e.b)
	encodeDestinations(e, h.ViaList)
	via := len(e.b) - start
	start = len(e.b)
	encodeDestinations(e, h.DestinationList)
	dst := len(e.b) - start
	start = len(e.b)
	for i := range h.Options {
		o := &h.Options[i]
		e.u8(uint8(o.Type))
		e.u8(o.Flags)
		e.vec16(o.Data, "forwarding option") // RFC 6940 §6.3.2.3
	}
	opt := len(e.b) - start
	if via > 0xffff || dst > 0xffff || opt > 0xffff {
		e.fail("forwarding header lists too long (%d/%d/%d bytes)", via, dst, opt)
		return
	}
	binary.BigEndian.PutUint16(e.b[lens:], uint16(via))
	binary.BigEndian.PutUint16(e.b[lens+2:], uint16(dst))
	binary.BigEndian.PutUint16(e.b[lens+4:], uint16(opt))
}

// MarshalBinary encodes the forwarding header alone (Length as set).
func (h *ForwardingHeader) MarshalBinary() ([]byte, error) {
	e := &enc{}
	appendHeader(e, h)
	return e.b, e.err
}

// decodeHeader parses the forwarding header (RFC 6940 §6.3.2).
func decodeHeader(d *dec, h *ForwardingHeader) {
	if tok := d.u32("relo_token"); d.ok() && tok != Token {
		d.fail("relo_token %#08x, want %#08x", tok, Token)
		return
	}
	h.OverlayHash = d.u32("overlay")
	h.ConfigurationSequence = d.u16("configuration_sequence")
	h.Version = d.u8("version")
	if d.ok() && h.Version != Version {
		d.fail("version %#02x, want %#02x", h.Version, Version)
		return
	}
	h.TTL = d.u8("ttl")
	h.Fragment = d.u32("fragment")
	if d.ok() && h.Fragment&FragmentHighBit == 0 {
		// RFC 6940 §6.7: messages with the high bit clear SHOULD be discarded.
		d.fail("fragment field %#08x: high bit clear", h.Fragment)
		return
	}
	h.Length = d.u32("length")
	h.TransactionID = d.u64("transaction_id")
	h.MaxResponseLength = d.u32("max_response_length")
	viaLen := int(d.u16("via_list_length"))
	dstLen := int(d.u16("destination_list_length"))
	optLen := int(d.u16("options_length"))
	via := d.fixed(viaLen, "via list")
	h.ViaList = decodeDestinations(via)
	d.join(via, "via list")
	dst := d.fixed(dstLen, "destination list")
	h.DestinationList = decodeDestinations(dst)
	d.join(dst, "destination list")
	opts := d.fixed(optLen, "forwarding options")
	h.Options = nil
	for !opts.empty() {
		var o ForwardingOption
		o.Type = ForwardingOptionType(opts.u8("option type"))
		o.Flags = opts.u8("option flags")
		o.Data = opts.vec(2, "option")
		h.Options = append(h.Options, o)
	}
	d.join(opts, "forwarding options")
}

// DecodeHeader parses only the forwarding header of b and returns it with
// the number of bytes it occupies, so a peer can route and forward without
// decoding the contents (RFC 6940 §6.3.2). It checks token, version, the
// fragment high bit and that Length matches len(b).
func DecodeHeader(b []byte) (*ForwardingHeader, int, error) {
	d := newDec(b, "forwarding header")
	h := &ForwardingHeader{}
	decodeHeader(d, h)
	if d.err != nil {
		return nil, 0, d.err
	}
	if int64(h.Length) != int64(len(b)) {
		return nil, 0, errorf(ErrInvalidMessage, "forwarding header", "length field %d, message is %d bytes", h.Length, len(b))
	}
	return h, len(b) - len(d.b), nil
}

// CheckForwardingOptions applies the critical flags of RFC 6940 §6.3.2.3.
// forwarding is true at a peer that would forward the message (checks
// FORWARD_CRITICAL), false at the node that responds (DESTINATION_CRITICAL).
// known may be nil (no option types are understood: RFC 6940 defines none).
func (h *ForwardingHeader) CheckForwardingOptions(forwarding bool, known func(ForwardingOptionType) bool) error {
	flag := DestinationCritical
	if forwarding {
		flag = ForwardCritical
	}
	for _, o := range h.Options {
		if o.Flags&flag != 0 && (known == nil || !known(o.Type)) {
			return errorf(ErrUnsupportedForwardingOption, "forwarding header", "unsupported critical forwarding option %d (flags %#02x)", o.Type, o.Flags)
		}
	}
	return nil
}

// DecrementTTL decrements the TTL byte of an encoded message in place, as a
// forwarding peer does (RFC 6940 §6.3.2). It returns an Error_TTL_Exceeded
// *Error if the TTL is already zero.
func DecrementTTL(b []byte) error {
	if len(b) < headerFixedLen {
		return errorf(ErrInvalidMessage, "forwarding header", "message too short")
	}
	if b[offTTL] == 0 {
		return errorf(ErrTTLExceeded, "forwarding header", "ttl exhausted")
	}
	b[offTTL]--
	return nil
}

// RFC 6940 §6.3.3
func appendContents(e *enc, m *Message) {
	e.u16(uint16(m.Code))
	e.vec32(m.Body, "message body")
	s := e.begin(4)
	for i := range m.Extensions {
		x := &m.Extensions[i]
		e.u16(uint16(x.Type))
		e.boolean(x.Critical)
		e.vec32(x.Contents, "extension contents")
	}
	e.end(4, s, "extensions")
}

// RFC 6940 §6.3.4
func appendSecurityBlock(e *enc, sb *SecurityBlock) {
	s := e.begin(2)
	for i := range sb.Certificates {
		c := &sb.Certificates[i]
		e.u8(uint8(c.Type))
		e.vec16(c.Certificate, "certificate")
	}
	e.end(2, s, "certificates")
	appendSignature(e, &sb.Signature)
}

// RFC 6940 §6.3.4
func appendSignerIdentity(e *enc, id *SignerIdentity) {
	t := id.Type
	if t == IdentityInvalid {
		t = IdentityNone
	}
	e.u8(uint8(t))
	s := e.begin(2)
	switch t {
	case IdentityCertHash, IdentityCertHashNodeID:
		e.u8(uint8(id.HashAlg))
		e.vec8(id.Hash, "certificate hash")
	case IdentityNone:
	default:
		e.raw(id.Hash) // unknown identity types: opaque value kept in Hash
	}
	e.end(2, s, "signer identity")
}

// RFC 6940 §6.3.4
func decodeSignerIdentity(d *dec) SignerIdentity {
	var id SignerIdentity
	id.Type = SignerIdentityType(d.u8("identity_type"))
	s := d.sub(2, "signer identity")
	switch id.Type {
	case IdentityCertHash, IdentityCertHashNodeID:
		id.HashAlg = HashAlgorithm(s.u8("hash_alg"))
		id.Hash = s.vec(1, "certificate hash")
	case IdentityNone:
	default:
		s.fail("unknown signer identity type %d", id.Type)
	}
	d.join(s, "signer identity")
	return id
}

// RFC 6940 §6.3.4
func appendSignature(e *enc, sig *Signature) {
	e.u8(uint8(sig.Algorithm.Hash))
	e.u8(uint8(sig.Algorithm.Signature))
	appendSignerIdentity(e, &sig.Identity)
	e.vec16(sig.Value, "signature value")
}

// RFC 6940 §6.3.4
func decodeSignature(d *dec) Signature {
	var sig Signature
	sig.Algorithm.Hash = HashAlgorithm(d.u8("hash algorithm"))
	sig.Algorithm.Signature = SignatureAlgorithm(d.u8("signature algorithm"))
	sig.Identity = decodeSignerIdentity(d)
	sig.Value = d.vec(2, "signature value")
	return sig
}

// MarshalBinary encodes the Signature (RFC 6940 §6.3.4).
func (s *Signature) MarshalBinary() ([]byte, error) {
	e := &enc{}
	appendSignature(e, s)
	return e.b, e.err
}

// UnmarshalBinary decodes a Signature (RFC 6940 §6.3.4).
func (s *Signature) UnmarshalBinary(b []byte) error {
	d := newDec(b, "signature")
	*s = decodeSignature(d)
	return d.done("signature")
}

// MarshalBinary encodes the SignerIdentity (RFC 6940 §6.3.4).
func (id *SignerIdentity) MarshalBinary() ([]byte, error) {
	e := &enc{}
	appendSignerIdentity(e, id)
	return e.b, e.err
}

// UnmarshalBinary decodes a SignerIdentity (RFC 6940 §6.3.4).
func (id *SignerIdentity) UnmarshalBinary(b []byte) error {
	d := newDec(b, "signer identity")
	*id = decodeSignerIdentity(d)
	return d.done("signer identity")
}

// Encode serialises m (RFC 6940 §6.3). It sets m.Header.Length and fills a
// zero Version or Fragment with Version and FragmentUnfragmented.
func Encode(m *Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// AppendEncode is Encode appending to dst.
func AppendEncode(dst []byte, m *Message) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, sizeHint(m))
	}
	e := &enc{b: dst}
	base := len(dst)
	appendHeader(e, &m.Header)
	appendContents(e, m)
	appendSecurityBlock(e, &m.Security)
	if e.err != nil {
		return nil, e.err
	}
	n := len(e.b) - base
	if uint64(n) > 0xffffffff {
		return nil, fmt.Errorf("wire: encode: message of %d bytes", n)
	}
	m.Header.Length = uint32(n)
	binary.BigEndian.PutUint32(e.b[base+offLength:], uint32(n))
	if m.Header.Version == 0 {
		m.Header.Version = Version
	}
	if m.Header.Fragment == 0 {
		m.Header.Fragment = FragmentUnfragmented
	}
	return e.b, nil
}

// sizeHint estimates the encoded size of m to size the buffer once.
func sizeHint(m *Message) int {
	n := headerFixedLen + 19*(len(m.Header.ViaList)+len(m.Header.DestinationList)) + 16 + len(m.Body) + 4
	for _, o := range m.Header.Options {
		n += 4 + len(o.Data)
	}
	for _, x := range m.Extensions {
		n += 7 + len(x.Contents)
	}
	for _, c := range m.Security.Certificates {
		n += 3 + len(c.Certificate)
	}
	return n + 8 + len(m.Security.Signature.Identity.Hash) + len(m.Security.Signature.Value)
}

// Decoder decodes messages with overlay-specific limits. The zero value
// accepts any size and understands no forwarding options or extensions.
type Decoder struct {
	// MaxMessageSize is the overlay's max-message-size (RFC 6940 §11.1);
	// 0 means no limit. Larger messages yield Error_Message_Too_Large.
	MaxMessageSize int
	// KnownOption reports forwarding option types this node understands.
	KnownOption func(ForwardingOptionType) bool
	// KnownExtension reports message extension types this node understands.
	KnownExtension func(MessageExtensionType) bool
	// SkipOptionCheck disables the DESTINATION_CRITICAL check (for
	// inspection tools).
	SkipOptionCheck bool
}

// Decode parses a complete, unfragmented message of at most maxSize bytes
// (0 = no limit). See Decoder.Decode.
func Decode(b []byte, maxSize int) (*Message, error) {
	d := Decoder{MaxMessageSize: maxSize}
	return d.Decode(b)
}

// Decode parses a complete, unfragmented message. Errors are *Error:
// Error_Message_Too_Large for oversize input, Error_Unsupported_Forwarding_Option
// for an unknown DESTINATION_CRITICAL option, Error_Unknown_Extension for an
// unknown critical extension, Error_Invalid_Message for anything else
// malformed (bad token, version, lengths, trailing bytes). Fragments yield
// an Error_Invalid_Message wrapping ErrFragment.
func (dc *Decoder) Decode(b []byte) (*Message, error) {
	if dc.MaxMessageSize > 0 && len(b) > dc.MaxMessageSize {
		return nil, errorf(ErrMessageTooLarge, "message", "%d bytes exceed max-message-size %d", len(b), dc.MaxMessageSize)
	}
	if dc.MaxMessageSize > 0 && len(b) >= offLength+4 {
		if l := binary.BigEndian.Uint32(b[offLength:]); int64(l) > int64(dc.MaxMessageSize) {
			return nil, errorf(ErrMessageTooLarge, "message", "length field %d exceeds max-message-size %d", l, dc.MaxMessageSize)
		}
	}
	d := newOwnDec(b, "forwarding header")
	m := &Message{}
	decodeHeader(d, &m.Header)
	if d.err != nil {
		return nil, d.err
	}
	h := &m.Header
	if int64(h.Length) != int64(len(b)) {
		return nil, errorf(ErrInvalidMessage, "forwarding header", "length field %d, message is %d bytes", h.Length, len(b))
	}
	if h.IsFragment() {
		return nil, &Error{Code: ErrInvalidMessage, Op: "forwarding header", Msg: fmt.Sprintf("fragment offset %d last=%v", h.FragmentOffset(), h.IsLastFragment()), Err: ErrFragment}
	}
	if !dc.SkipOptionCheck {
		if err := h.CheckForwardingOptions(false, dc.KnownOption); err != nil {
			return nil, err
		}
	}
	d.op = "message contents"
	// RFC 6940 §6.3.3
	m.Code = MessageCode(d.u16("message_code"))
	m.Body = d.vec(4, "message_body")
	exts := d.sub(4, "extensions")
	for !exts.empty() {
		var x MessageExtension
		x.Type = MessageExtensionType(exts.u16("extension type"))
		x.Critical = exts.boolean("critical")
		x.Contents = exts.vec(4, "extension contents")
		if exts.ok() && x.Critical && (dc.KnownExtension == nil || !dc.KnownExtension(x.Type)) {
			exts.failCode(ErrUnknownExtension, "unknown critical extension %d", x.Type)
		}
		m.Extensions = append(m.Extensions, x)
	}
	d.join(exts, "extensions")
	if d.err != nil {
		return nil, d.err
	}
	// RFC 6940 §6.3.4
	d.op = "security block"
	certs := d.sub(2, "certificates")
	for !certs.empty() {
		var c GenericCertificate
		c.Type = CertificateType(certs.u8("certificate type"))
		c.Certificate = certs.vec(2, "certificate")
		m.Security.Certificates = append(m.Security.Certificates, c)
	}
	d.join(certs, "certificates")
	m.Security.Signature = decodeSignature(d)
	if err := d.done("message"); err != nil {
		return nil, err
	}
	return m, nil
}

// contentsBytes returns the encoded MessageContents (RFC 6940 §6.3.3).
func contentsBytes(m *Message) ([]byte, error) {
	e := &enc{}
	appendContents(e, m)
	return e.b, e.err
}

// CheckConfigSequence applies RFC 6940 §6.3.2.1 at a destination whose
// configuration sequence is local: a request with an older sequence (TCP-style
// modulo comparison) yields Error_Config_Too_Old, a newer one
// Error_Config_Too_New. Sequence 65535 on a ConfigUpdate is always accepted.
func (h *ForwardingHeader) CheckConfigSequence(local uint16, code MessageCode) error {
	seq := h.ConfigurationSequence
	if seq == local || (seq == 0xffff && code == CodeConfigUpdateReq) {
		return nil
	}
	if int16(seq-local) < 0 {
		return errorf(ErrConfigTooOld, "forwarding header", "configuration sequence %d older than %d", seq, local)
	}
	return errorf(ErrConfigTooNew, "forwarding header", "configuration sequence %d newer than %d", seq, local)
}

// CheckOverlay reports Error_Incompatible_with_Overlay if the message's
// overlay field is not overlayHash (RFC 6940 §6.3.2: detects messages of
// another overlay).
func (h *ForwardingHeader) CheckOverlay(overlayHash uint32) error {
	if h.OverlayHash != overlayHash {
		return errorf(ErrIncompatibleWithOverlay, "forwarding header", "overlay %#08x, this overlay is %#08x", h.OverlayHash, overlayHash)
	}
	return nil
}

// ReplaceHeader returns msg with its forwarding header replaced by h, the
// rest (contents and security block, or fragment data) kept byte for byte,
// as a forwarding peer does after editing the via and destination lists
// (RFC 6940 §6.3.2: peers forward without decoding the contents). The
// length field is recomputed; msg is not modified.
func ReplaceHeader(msg []byte, h *ForwardingHeader) ([]byte, error) {
	_, hl, err := DecodeHeader(msg)
	if err != nil {
		return nil, err
	}
	rest := msg[hl:]
	e := &enc{b: make([]byte, 0, len(msg)+64)}
	appendHeader(e, h)
	if e.err != nil {
		return nil, e.err
	}
	e.raw(rest)
	if uint64(len(e.b)) > 0xffffffff {
		return nil, fmt.Errorf("wire: replace header: message of %d bytes", len(e.b))
	}
	binary.BigEndian.PutUint32(e.b[offLength:], uint32(len(e.b)))
	return e.b, nil
}
