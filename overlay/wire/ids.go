// Package wire is the RFC 6940 (RELOAD) message codec used by Chordphone:
// forwarding header, message contents, security block, every method body,
// CHORD-RELOAD (§10) overlay-specific bodies, SIP-REGISTRATION values
// (RFC 7904 §3.2), link framing (§6.6.2) and fragmentation (§6.7).
//
// The package knows nothing of sockets. Decoding is strict: every length is
// checked against the remaining input before anything is allocated, and all
// failures are *Error values that carry the ErrorCode an ErrorResponse
// should use.
package wire

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
)

// NodeIDSize is the CHORD-RELOAD Node-ID length in bytes (RFC 6940 §10: 128 bits).
const NodeIDSize = 16

// NodeID is a CHORD-RELOAD Node-ID (RFC 6940 §6.3.2.1, §10).
type NodeID [NodeIDSize]byte

// String returns the Node-ID in lower-case hex.
func (n NodeID) String() string { return hex.EncodeToString(n[:]) }

// ParseNodeID parses 32 hex digits into a NodeID.
func ParseNodeID(s string) (NodeID, error) {
	var n NodeID
	b, err := hex.DecodeString(s)
	if err != nil {
		return n, fmt.Errorf("wire: parse node id %q: %w", s, err)
	}
	if len(b) != NodeIDSize {
		return n, fmt.Errorf("wire: parse node id %q: need %d bytes, got %d", s, NodeIDSize, len(b))
	}
	copy(n[:], b)
	return n, nil
}

// Compare orders Node-IDs as unsigned 128-bit big-endian integers.
func (n NodeID) Compare(o NodeID) int { return bytes.Compare(n[:], o[:]) }

// Less reports whether n < o as unsigned 128-bit integers.
func (n NodeID) Less(o NodeID) bool { return n.Compare(o) < 0 }

// IsZero reports whether n is all zeros.
func (n NodeID) IsZero() bool { return n == NodeID{} }

// ResourceID is a Resource-ID (RFC 6940 §6.3.2.1: opaque<0..2^8-1>).
type ResourceID []byte

// String returns the Resource-ID in hex.
func (r ResourceID) String() string { return hex.EncodeToString(r) }

// NodeID returns the Resource-ID as a point on the CHORD-RELOAD ring. The
// Resource-ID is truncated or zero-padded to 128 bits.
func (r ResourceID) NodeID() NodeID {
	var n NodeID
	copy(n[:], r)
	return n
}

// ResourceIDFromName maps a resource name to its Resource-ID: the first 128
// bits of SHA-1 over the name (RFC 6940 §10.2, CHORD-RELOAD hash).
func ResourceIDFromName(name string) ResourceID {
	h := sha1.Sum([]byte(name))
	r := make(ResourceID, NodeIDSize)
	copy(r, h[:NodeIDSize])
	return r
}

// OpaqueID is an opaque destination (RFC 6940 §6.3.2.2: opaque<0..2^8-1>).
type OpaqueID []byte

// KindID identifies a Kind (RFC 6940 §7, uint32).
type KindID uint32

// Kind-IDs registered by RFC 6940 §14.6 and RFC 7904 §7.
const (
	KindInvalid           KindID = 0
	KindSIPRegistration   KindID = 1   // RFC 7904, dictionary
	KindTURNService       KindID = 2   // RFC 6940 §6.4.2.3, single value
	KindCertificateByNode KindID = 3   // RFC 6940 §8.3, array
	KindRedir             KindID = 104 // RFC 7374 (ReDiR), dictionary
	KindCertificateByUser KindID = 16  // RFC 6940 §8.3, array
)

// DataModel is a Kind's data model (RFC 6940 §7.2). It is not on the wire:
// it is fixed by the Kind definition / overlay configuration.
type DataModel uint8

// Data models (RFC 6940 §7.2).
const (
	DataModelInvalid    DataModel = 0
	DataModelSingle     DataModel = 1
	DataModelArray      DataModel = 2
	DataModelDictionary DataModel = 3
)

func (d DataModel) String() string {
	switch d {
	case DataModelSingle:
		return "SINGLE"
	case DataModelArray:
		return "ARRAY"
	case DataModelDictionary:
		return "DICTIONARY"
	}
	return fmt.Sprintf("DataModel(%d)", uint8(d))
}
