// Package diag is RELOAD overlay diagnostics (RFC 7851): the Inspect and PathTrack methods,
// their bodies, and the service every peer runs to answer them.
package diag

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Message codes (RFC 7851 §9.1, IANA "RELOAD Message Codes").
const (
	CodeInspectReq   wire.MessageCode = 0x27
	CodeInspectAns   wire.MessageCode = 0x28
	CodePathTrackReq wire.MessageCode = 0x29
	CodePathTrackAns wire.MessageCode = 0x2a
)

// Kind is a DiagnosticKindId (RFC 7851 §5.3, IANA "Diagnostic Kind ID" registry, §9.2).
type Kind uint16

// Diagnostic kinds (RFC 7851 §9.2).
const (
	StatusInfo       Kind = 0x0001
	RoutingTableSize Kind = 0x0002
	ProcessPower     Kind = 0x0003
	Bandwidth        Kind = 0x0004
	SoftwareVersion  Kind = 0x0005
	MachineUptime    Kind = 0x0006
	AppUptime        Kind = 0x0007
	MemoryFootprint  Kind = 0x0008
	DatasizeStored   Kind = 0x0009
	InstancesStored  Kind = 0x000a
	MessagesSentRcvd Kind = 0x000b
	EWMABytesSent    Kind = 0x000c
	EWMABytesRcvd    Kind = 0x000d
	UnderlayHop      Kind = 0x000e
	BatteryStatus    Kind = 0x000f
)

var kindNames = map[Kind]string{
	StatusInfo: "STATUS_INFO", RoutingTableSize: "ROUTING_TABLE_SIZE", ProcessPower: "PROCESS_POWER",
	Bandwidth: "BANDWIDTH", SoftwareVersion: "SOFTWARE_VERSION", MachineUptime: "MACHINE_UPTIME",
	AppUptime: "APP_UPTIME", MemoryFootprint: "MEMORY_FOOTPRINT", DatasizeStored: "DATASIZE_STORED",
	InstancesStored: "INSTANCES_STORED", MessagesSentRcvd: "MESSAGES_SENT_RCVD",
	EWMABytesSent: "EWMA_BYTES_SENT", EWMABytesRcvd: "EWMA_BYTES_RCVD", UnderlayHop: "UNDERLAY_HOP",
	BatteryStatus: "BATTERY_STATUS",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("0x%04x", uint16(k))
}

// Flag is the kind's bit in dMFlags (RFC 7851 §5.1: STATUS_INFO is 0x1, ROUTING_TABLE_SIZE
// 0x2, ... one bit per kind in Kind-ID order).
func (k Kind) Flag() uint64 {
	if k == 0 || k > 64 {
		return 0
	}
	return 1 << (k - 1)
}

// Flags returns the dMFlags that ask for kinds.
func Flags(kinds ...Kind) uint64 {
	var f uint64
	for _, k := range kinds {
		f |= k.Flag()
	}
	return f
}

// Extension is a DiagnosticExtension (RFC 7851 §5.1).
type Extension struct {
	Type     uint16
	Contents []byte
}

// Request is a DiagnosticsRequest (RFC 7851 §5.1), the body of an Inspect request.
type Request struct {
	Expiration time.Time // the request is not answered after this
	Initiated  time.Time // when the initiator sent it
	Flags      uint64    // dMFlags: the kinds asked for
	Extensions []Extension
}

// Info is a DiagnosticInfo (RFC 7851 §5.2): one kind's value in its encoding of §5.3.
type Info struct {
	Kind     Kind
	Contents []byte
}

// Answer is a DiagnosticsResponse (RFC 7851 §5.2), the body of an Inspect answer.
type Answer struct {
	Expiration time.Time // copied from the request
	Initiated  time.Time // copied from the request
	Received   time.Time // when the answering node received the request
	HopCounter uint8     // links the request crossed
	Infos      []Info
}

// ErrMalformed is the error of every decoding failure; the service answers it with
// Error_Invalid_Message (RFC 6940 §6.3.3.1).
var ErrMalformed = errors.New("diag: malformed diagnostics body")

// ntpEpoch is 1900-01-01: timestamps are NTP format (RFC 7851 §5.1, RFC 5905).
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func ntp(t time.Time) uint64 {
	if t.IsZero() || t.Before(ntpEpoch) {
		return 0
	}
	d := t.Sub(ntpEpoch) // saturates at ~292 years: enough until 2192
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

func fromNTP(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	sec := time.Duration(v>>32) * time.Second
	frac := time.Duration(((v&0xffffffff)*uint64(time.Second) + 1<<31) >> 32) // rounded to the nanosecond
	return ntpEpoch.Add(sec).Add(frac).UTC()
}

// MarshalBinary encodes the request.
func (r *Request) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	r.build(&b)
	return b.Bytes()
}

func (r *Request) build(b *cryptobyte.Builder) {
	b.AddUint64(ntp(r.Expiration))
	b.AddUint64(ntp(r.Initiated))
	b.AddUint64(r.Flags)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range r.Extensions {
			b.AddUint16(e.Type)
			b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Contents) })
		}
	})
}

// UnmarshalBinary decodes a request; trailing bytes are an error.
func (r *Request) UnmarshalBinary(p []byte) error {
	s := cryptobyte.String(p)
	if !r.read(&s) || !s.Empty() {
		return ErrMalformed
	}
	return nil
}

func (r *Request) read(s *cryptobyte.String) bool {
	var exp, ini uint64
	var exts cryptobyte.String
	if !s.ReadUint64(&exp) || !s.ReadUint64(&ini) || !s.ReadUint64(&r.Flags) || !read32(s, &exts) {
		return false
	}
	r.Expiration, r.Initiated, r.Extensions = fromNTP(exp), fromNTP(ini), nil
	for !exts.Empty() {
		var e Extension
		var c cryptobyte.String
		if !exts.ReadUint16(&e.Type) || !read32(&exts, &c) {
			return false
		}
		e.Contents = append([]byte{}, c...)
		r.Extensions = append(r.Extensions, e)
	}
	return true
}

// MarshalBinary encodes the answer.
func (a *Answer) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	a.build(&b)
	return b.Bytes()
}

func (a *Answer) build(b *cryptobyte.Builder) {
	b.AddUint64(ntp(a.Expiration))
	b.AddUint64(ntp(a.Initiated))
	b.AddUint64(ntp(a.Received))
	b.AddUint8(a.HopCounter)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, in := range a.Infos {
			b.AddUint16(uint16(in.Kind))
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(in.Contents) })
		}
	})
}

// UnmarshalBinary decodes an answer; trailing bytes are an error.
func (a *Answer) UnmarshalBinary(p []byte) error {
	s := cryptobyte.String(p)
	if !a.read(&s) || !s.Empty() {
		return ErrMalformed
	}
	return nil
}

func (a *Answer) read(s *cryptobyte.String) bool {
	var exp, ini, rcv uint64
	var list cryptobyte.String
	if !s.ReadUint64(&exp) || !s.ReadUint64(&ini) || !s.ReadUint64(&rcv) || !s.ReadUint8(&a.HopCounter) ||
		!read32(s, &list) {
		return false
	}
	a.Expiration, a.Initiated, a.Received, a.Infos = fromNTP(exp), fromNTP(ini), fromNTP(rcv), nil
	for !list.Empty() {
		var k uint16
		var c cryptobyte.String
		if !list.ReadUint16(&k) || !list.ReadUint16LengthPrefixed(&c) {
			return false
		}
		a.Infos = append(a.Infos, Info{Kind: Kind(k), Contents: append([]byte{}, c...)})
	}
	return true
}

// Info returns the contents of kind k, if the answer has it.
func (a *Answer) Info(k Kind) ([]byte, bool) {
	for _, in := range a.Infos {
		if in.Kind == k {
			return in.Contents, true
		}
	}
	return nil, false
}

// PathTrackReq is the PathTrack request body (RFC 7851 §5.1): the destination whose path
// is traced and the diagnostics asked of the node that answers.
type PathTrackReq struct {
	Destination wire.NodeID
	Request     Request
}

// PathTrackAns is the PathTrack answer body (RFC 7851 §5.2): the node the answering node
// would forward a message for the destination to, and its diagnostics.
type PathTrackAns struct {
	NextHop  wire.NodeID
	Response Answer
}

// destinationNode is DestinationType node (RFC 6940 §6.3.2.2); the only type PathTrack
// destinations take here.
const destinationNode = 1

func addNode(b *cryptobyte.Builder, id wire.NodeID) {
	b.AddUint8(destinationNode)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(id[:]) })
}

func readNode(s *cryptobyte.String, id *wire.NodeID) bool {
	var t uint8
	var v cryptobyte.String
	if !s.ReadUint8(&t) || t != destinationNode || !s.ReadUint8LengthPrefixed(&v) || len(v) != len(id) {
		return false
	}
	copy(id[:], v)
	return true
}

// MarshalBinary encodes the request.
func (r *PathTrackReq) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	addNode(&b, r.Destination)
	r.Request.build(&b)
	return b.Bytes()
}

// UnmarshalBinary decodes the request; a destination that is not a Node-ID is malformed.
func (r *PathTrackReq) UnmarshalBinary(p []byte) error {
	s := cryptobyte.String(p)
	if !readNode(&s, &r.Destination) || !r.Request.read(&s) || !s.Empty() {
		return ErrMalformed
	}
	return nil
}

// MarshalBinary encodes the answer.
func (a *PathTrackAns) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	addNode(&b, a.NextHop)
	a.Response.build(&b)
	return b.Bytes()
}

// UnmarshalBinary decodes the answer.
func (a *PathTrackAns) UnmarshalBinary(p []byte) error {
	s := cryptobyte.String(p)
	if !readNode(&s, &a.NextHop) || !a.Response.read(&s) || !s.Empty() {
		return ErrMalformed
	}
	return nil
}

// read32 reads an opaque<0..2^32-1> (this x/crypto's cryptobyte reads no 32-bit prefix).
func read32(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !s.ReadUint32(&n) || uint64(n) > uint64(len(*s)) {
		return false
	}
	return s.ReadBytes((*[]byte)(out), int(n))
}
