package wire

import "fmt"

// Token is the relo_token that starts every RELOAD message: "RELO" with the
// high bit set (RFC 6940 §6.3.2).
const Token uint32 = 0xd2454c4f

// Version is the RELOAD protocol version of RFC 6940 (§6.3.2: 0x0a = 1.0).
const Version uint8 = 0x0a

// DefaultTTL is the initial TTL suggested by RFC 6940 §6.3.2 / §11.1 (initial-ttl).
const DefaultTTL uint8 = 100

// DefaultMaxMessageSize is the default overlay max-message-size (RFC 6940 §11.1).
const DefaultMaxMessageSize = 5000

// Fragment field bits (RFC 6940 §6.3.2, §6.7).
const (
	FragmentHighBit    uint32 = 0x80000000 // MUST be set
	FragmentLastBit    uint32 = 0x40000000 // last (or only) fragment
	FragmentOffsetMask uint32 = 0x00ffffff
	// FragmentUnfragmented is the field value of a complete, unfragmented message.
	FragmentUnfragmented = FragmentHighBit | FragmentLastBit
)

// DestinationType is the type of a Destination (RFC 6940 §6.3.2.2).
type DestinationType uint8

// Destination types (RFC 6940 §6.3.2.2).
const (
	DestinationInvalid  DestinationType = 0
	DestinationNode     DestinationType = 1
	DestinationResource DestinationType = 2
	DestinationOpaque   DestinationType = 3
	// DestinationCompressed marks the compressed 16-bit form (first bit set
	// on the wire); the value lives in Destination.Compressed. It is not a
	// wire DestinationType value.
	DestinationCompressed DestinationType = 0x80
)

// Destination is one entry of a via or destination list (RFC 6940 §6.3.2.2).
// Exactly one of Node, Resource, Opaque or Compressed is meaningful, per Type.
type Destination struct {
	Type       DestinationType
	Node       NodeID
	Resource   ResourceID
	Opaque     OpaqueID
	Compressed uint16 // 0x8000..0xffff: the high bit is part of the value
}

// NodeDestination returns a node Destination.
func NodeDestination(n NodeID) Destination { return Destination{Type: DestinationNode, Node: n} }

// ResourceDestination returns a resource Destination.
func ResourceDestination(r ResourceID) Destination {
	return Destination{Type: DestinationResource, Resource: r}
}

// OpaqueDestination returns an opaque-id Destination.
func OpaqueDestination(o OpaqueID) Destination {
	return Destination{Type: DestinationOpaque, Opaque: o}
}

// CompressedDestination returns a compressed 16-bit Destination; v must have
// its high bit set (RFC 6940 §6.3.2.2).
func CompressedDestination(v uint16) Destination {
	return Destination{Type: DestinationCompressed, Compressed: v | 0x8000}
}

func (d Destination) String() string {
	switch d.Type {
	case DestinationNode:
		return "node:" + d.Node.String()
	case DestinationResource:
		return "resource:" + d.Resource.String()
	case DestinationOpaque:
		return fmt.Sprintf("opaque:%x", []byte(d.Opaque))
	case DestinationCompressed:
		return fmt.Sprintf("compressed:%04x", d.Compressed)
	}
	return fmt.Sprintf("destination(%d)", uint8(d.Type))
}

// ForwardingOptionType identifies a forwarding option (RFC 6940 §6.3.2.3, §14.12).
type ForwardingOptionType uint8

// Forwarding option flags (RFC 6940 §6.3.2.3).
const (
	ForwardCritical     uint8 = 0x01
	DestinationCritical uint8 = 0x02
	ResponseCopy        uint8 = 0x04
)

// ForwardingOption is one forwarding option (RFC 6940 §6.3.2.3). No option
// types are defined by RFC 6940; Data holds the opaque option body.
type ForwardingOption struct {
	Type  ForwardingOptionType
	Flags uint8
	Data  []byte
}

// ForwardingHeader is the RELOAD forwarding header (RFC 6940 §6.3.2).
// The token is implicit (always Token).
type ForwardingHeader struct {
	OverlayHash           uint32 // overlay: low 32 bits of SHA-1(overlay name)
	ConfigurationSequence uint16
	Version               uint8 // 0x0a; Encode fills 0 with Version
	TTL                   uint8
	Fragment              uint32 // Encode fills 0 with FragmentUnfragmented
	Length                uint32 // whole message length; set by Encode
	TransactionID         uint64
	MaxResponseLength     uint32
	ViaList               []Destination
	DestinationList       []Destination
	Options               []ForwardingOption
}

// IsLastFragment reports whether the fragment field has the last-fragment bit.
func (h *ForwardingHeader) IsLastFragment() bool { return h.Fragment&FragmentLastBit != 0 }

// FragmentOffset returns the fragment offset (RFC 6940 §6.7).
func (h *ForwardingHeader) FragmentOffset() uint32 { return h.Fragment & FragmentOffsetMask }

// IsFragment reports whether the message is a fragment of a larger one.
func (h *ForwardingHeader) IsFragment() bool {
	return !h.IsLastFragment() || h.FragmentOffset() != 0
}

// MessageCode is the message_code of MessageContents (RFC 6940 §6.3.3, §14.8).
type MessageCode uint16

// Message codes (RFC 6940 §14.8). Requests are odd, answers even.
// Note: RFC 6940 numbers find 13/14 … stat 25/26 (not stat 13/14).
const (
	CodeInvalid         MessageCode = 0x00
	CodeProbeReq        MessageCode = 0x01
	CodeProbeAns        MessageCode = 0x02
	CodeAttachReq       MessageCode = 0x03
	CodeAttachAns       MessageCode = 0x04
	CodeStoreReq        MessageCode = 0x07
	CodeStoreAns        MessageCode = 0x08
	CodeFetchReq        MessageCode = 0x09
	CodeFetchAns        MessageCode = 0x0a
	CodeFindReq         MessageCode = 0x0d
	CodeFindAns         MessageCode = 0x0e
	CodeJoinReq         MessageCode = 0x0f
	CodeJoinAns         MessageCode = 0x10
	CodeLeaveReq        MessageCode = 0x11
	CodeLeaveAns        MessageCode = 0x12
	CodeUpdateReq       MessageCode = 0x13
	CodeUpdateAns       MessageCode = 0x14
	CodeRouteQueryReq   MessageCode = 0x15
	CodeRouteQueryAns   MessageCode = 0x16
	CodePingReq         MessageCode = 0x17
	CodePingAns         MessageCode = 0x18
	CodeStatReq         MessageCode = 0x19
	CodeStatAns         MessageCode = 0x1a
	CodeAppAttachReq    MessageCode = 0x1d
	CodeAppAttachAns    MessageCode = 0x1e
	CodeConfigUpdateReq MessageCode = 0x21
	CodeConfigUpdateAns MessageCode = 0x22
	CodeExpAReq         MessageCode = 0x23 // experimental, no body type
	CodeExpAAns         MessageCode = 0x24
	CodeExpBReq         MessageCode = 0x25
	CodeExpBAns         MessageCode = 0x26
	CodeError           MessageCode = 0xffff
)

var codeNames = map[MessageCode]string{
	CodeProbeReq: "probe_req", CodeProbeAns: "probe_ans",
	CodeAttachReq: "attach_req", CodeAttachAns: "attach_ans",
	CodeStoreReq: "store_req", CodeStoreAns: "store_ans",
	CodeFetchReq: "fetch_req", CodeFetchAns: "fetch_ans",
	CodeStatReq: "stat_req", CodeStatAns: "stat_ans",
	CodeFindReq: "find_req", CodeFindAns: "find_ans",
	CodeJoinReq: "join_req", CodeJoinAns: "join_ans",
	CodeLeaveReq: "leave_req", CodeLeaveAns: "leave_ans",
	CodeUpdateReq: "update_req", CodeUpdateAns: "update_ans",
	CodeRouteQueryReq: "route_query_req", CodeRouteQueryAns: "route_query_ans",
	CodePingReq: "ping_req", CodePingAns: "ping_ans",
	CodeAppAttachReq: "app_attach_req", CodeAppAttachAns: "app_attach_ans",
	CodeConfigUpdateReq: "config_update_req", CodeConfigUpdateAns: "config_update_ans",
	CodeExpAReq: "exp_a_req", CodeExpAAns: "exp_a_ans",
	CodeExpBReq: "exp_b_req", CodeExpBAns: "exp_b_ans",
	CodeError: "error",
}

func (c MessageCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("MessageCode(%d)", uint16(c))
}

// Known reports whether c is a message code defined by RFC 6940.
func (c MessageCode) Known() bool { _, ok := codeNames[c]; return ok }

// IsRequest reports whether c is a request code (odd, not error).
func (c MessageCode) IsRequest() bool { return c != CodeError && c&1 == 1 }

// IsAnswer reports whether c is an answer code (even and non-zero, or error).
func (c MessageCode) IsAnswer() bool { return c == CodeError || (c != 0 && c&1 == 0) }

// Answer returns the answer code for request code c (c+1).
func (c MessageCode) Answer() MessageCode {
	if c.IsRequest() {
		return c + 1
	}
	return c
}

// Request returns the request code for answer code c (c-1).
func (c MessageCode) Request() MessageCode {
	if c.IsAnswer() && c != CodeError {
		return c - 1
	}
	return c
}

// ErrorCode is a RELOAD error code (RFC 6940 §6.3.3.1, §14.9).
type ErrorCode uint16

// Error codes (RFC 6940 §14.9).
const (
	ErrInvalidErrorCode            ErrorCode = 0x0
	ErrForbidden                   ErrorCode = 0x2
	ErrNotFound                    ErrorCode = 0x3
	ErrRequestTimeout              ErrorCode = 0x4
	ErrGenerationCounterTooLow     ErrorCode = 0x5
	ErrIncompatibleWithOverlay     ErrorCode = 0x6
	ErrUnsupportedForwardingOption ErrorCode = 0x7
	ErrDataTooLarge                ErrorCode = 0x8
	ErrDataTooOld                  ErrorCode = 0x9
	ErrTTLExceeded                 ErrorCode = 0xa
	ErrMessageTooLarge             ErrorCode = 0xb
	ErrUnknownKind                 ErrorCode = 0xc
	ErrUnknownExtension            ErrorCode = 0xd
	ErrResponseTooLarge            ErrorCode = 0xe
	ErrConfigTooOld                ErrorCode = 0xf
	ErrConfigTooNew                ErrorCode = 0x10
	ErrInProgress                  ErrorCode = 0x11
	ErrExpA                        ErrorCode = 0x12
	ErrExpB                        ErrorCode = 0x13
	ErrInvalidMessage              ErrorCode = 0x14
)

var errorNames = map[ErrorCode]string{
	ErrInvalidErrorCode: "invalidErrorCode",
	ErrForbidden:        "Error_Forbidden", ErrNotFound: "Error_Not_Found",
	ErrRequestTimeout: "Error_Request_Timeout", ErrGenerationCounterTooLow: "Error_Generation_Counter_Too_Low",
	ErrIncompatibleWithOverlay: "Error_Incompatible_with_Overlay", ErrUnsupportedForwardingOption: "Error_Unsupported_Forwarding_Option",
	ErrDataTooLarge: "Error_Data_Too_Large", ErrDataTooOld: "Error_Data_Too_Old",
	ErrTTLExceeded: "Error_TTL_Exceeded", ErrMessageTooLarge: "Error_Message_Too_Large",
	ErrUnknownKind: "Error_Unknown_Kind", ErrUnknownExtension: "Error_Unknown_Extension",
	ErrResponseTooLarge: "Error_Response_Too_Large", ErrConfigTooOld: "Error_Config_Too_Old",
	ErrConfigTooNew: "Error_Config_Too_New", ErrInProgress: "Error_In_Progress",
	ErrExpA: "Error_Exp_A", ErrExpB: "Error_Exp_B", ErrInvalidMessage: "Error_Invalid_Message",
}

func (e ErrorCode) String() string {
	if s, ok := errorNames[e]; ok {
		return s
	}
	return fmt.Sprintf("ErrorCode(%d)", uint16(e))
}

// MessageExtensionType identifies a message extension (RFC 6940 §6.3.3, §14.14).
type MessageExtensionType uint16

// ExtensionExp is the experimental extension type (RFC 6940 §14.14).
const ExtensionExp MessageExtensionType = 0xffff

// MessageExtension is one message extension (RFC 6940 §6.3.3).
type MessageExtension struct {
	Type     MessageExtensionType
	Critical bool
	Contents []byte
}

// Message is a complete RELOAD message (RFC 6940 §6.3.1): forwarding header,
// message contents (code, body, extensions) and security block.
// Body holds the encoded method body; use SetBody / ParseBody for typed bodies.
type Message struct {
	Header     ForwardingHeader
	Code       MessageCode
	Body       []byte
	Extensions []MessageExtension
	Security   SecurityBlock
}

// CertificateType is the type of a GenericCertificate (RFC 6940 §6.3.4).
type CertificateType uint8

// CertificateX509 is the only certificate type of RFC 6940 §6.3.4.
const CertificateX509 CertificateType = 0

// GenericCertificate is a certificate in the security block (RFC 6940 §6.3.4).
type GenericCertificate struct {
	Type        CertificateType
	Certificate []byte // DER for x509
}

// SecurityBlock carries certificates and the message signature (RFC 6940 §6.3.4).
type SecurityBlock struct {
	Certificates []GenericCertificate
	Signature    Signature
}

// HashAlgorithm is the TLS HashAlgorithm (RFC 5246 §7.4.1.4.1) used by RELOAD.
type HashAlgorithm uint8

// Hash algorithms (RFC 5246 §7.4.1.4.1).
const (
	HashNone   HashAlgorithm = 0
	HashMD5    HashAlgorithm = 1
	HashSHA1   HashAlgorithm = 2
	HashSHA224 HashAlgorithm = 3
	HashSHA256 HashAlgorithm = 4
	HashSHA384 HashAlgorithm = 5
	HashSHA512 HashAlgorithm = 6
)

// SignatureAlgorithm is the TLS SignatureAlgorithm (RFC 5246 §7.4.1.4.1).
type SignatureAlgorithm uint8

// Signature algorithms (RFC 5246 §7.4.1.4.1).
const (
	SignatureAnonymous SignatureAlgorithm = 0
	SignatureRSA       SignatureAlgorithm = 1
	SignatureDSA       SignatureAlgorithm = 2
	SignatureECDSA     SignatureAlgorithm = 3
)

// SignatureAndHashAlgorithm is the TLS structure of the same name (RFC 6940 §6.3.4).
type SignatureAndHashAlgorithm struct {
	Hash      HashAlgorithm
	Signature SignatureAlgorithm
}

// Common algorithm pairs.
var (
	AlgRSASHA256   = SignatureAndHashAlgorithm{HashSHA256, SignatureRSA}   // mandatory (§6.3.4)
	AlgECDSASHA256 = SignatureAndHashAlgorithm{HashSHA256, SignatureECDSA} // P-256
	AlgNone        = SignatureAndHashAlgorithm{HashNone, SignatureAnonymous}
)

// SignerIdentityType is the identity_type of a SignerIdentity (RFC 6940 §6.3.4).
type SignerIdentityType uint8

// Signer identity types (RFC 6940 §6.3.4).
const (
	IdentityInvalid        SignerIdentityType = 0
	IdentityCertHash       SignerIdentityType = 1
	IdentityCertHashNodeID SignerIdentityType = 2
	IdentityNone           SignerIdentityType = 3
)

// SignerIdentity names the certificate that made a signature (RFC 6940 §6.3.4).
// For cert_hash, Hash = H(certificate); for cert_hash_node_id,
// Hash = H(NodeId || certificate). For none, HashAlg and Hash are empty.
type SignerIdentity struct {
	Type    SignerIdentityType
	HashAlg HashAlgorithm
	Hash    []byte
}

// Signature is a RELOAD Signature (RFC 6940 §6.3.4).
type Signature struct {
	Algorithm SignatureAndHashAlgorithm
	Identity  SignerIdentity
	Value     []byte
}
