package wire

import "net/netip"

// ErrorResponse is the body of an error message (RFC 6940 §6.3.3.1). On
// the wire it is error_code and error_info<0..2^16-1> only. error_info is
// a UTF-8 text unless the error code defines otherwise (Error_Unknown_Kind:
// a KindId list; Error_Generation_Counter_Too_Low: a StoreAns).
//
// Encoding sends Info if it is non-empty, else Phrase as the text.
// Decoding sets Info to error_info and, when it is valid UTF-8 text for a
// code that does not define a binary error_info, also Phrase.
type ErrorResponse struct {
	Code   ErrorCode
	Phrase string // textual error_info (convenience; not a separate wire field)
	Info   []byte // error_info<0..2^16-1>
}

// ProbeInformationType selects probe information (RFC 6940 §6.4.2.5.1, §14.13).
type ProbeInformationType uint8

// Probe information types (RFC 6940 §14.13).
const (
	ProbeResponsibleSet ProbeInformationType = 1
	ProbeNumResources   ProbeInformationType = 2
	ProbeUptime         ProbeInformationType = 3
)

// ProbeReq (RFC 6940 §6.4.2.5.1).
type ProbeReq struct {
	RequestedInfo []ProbeInformationType
}

// ProbeInformation is one answer item; every defined type carries a uint32
// (RFC 6940 §6.4.2.5.2). Unknown types keep their raw bytes in Raw.
type ProbeInformation struct {
	Type  ProbeInformationType
	Value uint32
	Raw   []byte
}

// ProbeAns (RFC 6940 §6.4.2.5.2).
type ProbeAns struct {
	ProbeInfo []ProbeInformation
}

// AddressType (RFC 6940 §6.5.1.1 / §6.3.2.1 IpAddressPort).
type AddressType uint8

// Address types.
const (
	AddressIPv4 AddressType = 1
	AddressIPv6 AddressType = 2
)

// OverlayLinkType (RFC 6940 §6.5.1.1, §14.10).
type OverlayLinkType uint8

// Overlay link types (RFC 6940 §14.10).
const (
	LinkDTLSUDPSR      OverlayLinkType = 1
	LinkDTLSUDPSRNoICE OverlayLinkType = 3
	LinkTLSTCPFHNoICE  OverlayLinkType = 4
)

// CandType is an ICE candidate type (RFC 6940 §6.5.1.1).
type CandType uint8

// Candidate types (RFC 6940 §6.5.1.1).
const (
	CandHost  CandType = 1
	CandSrflx CandType = 2
	CandRelay CandType = 4
)

// IceExtension is a name/value ICE extension (RFC 6940 §6.5.1.1).
type IceExtension struct {
	Name  []byte
	Value []byte
}

// IceCandidate is one ICE candidate (RFC 6940 §6.5.1.1).
// RelAddrPort is present for srflx and relay only.
type IceCandidate struct {
	AddrPort    netip.AddrPort
	OverlayLink OverlayLinkType
	Foundation  []byte
	Priority    uint32
	Type        CandType
	RelAddrPort netip.AddrPort
	Extensions  []IceExtension
}

// AttachReqAns is the body of both AttachReq and AttachAns (RFC 6940 §6.5.1.1).
type AttachReqAns struct {
	Ufrag      []byte
	Password   []byte
	Role       []byte // "active" / "passive"
	Candidates []IceCandidate
	SendUpdate bool
}

// AttachReq and AttachAns share one structure (RFC 6940 §6.5.1.1).
type (
	AttachReq = AttachReqAns
	AttachAns = AttachReqAns
)

// AppAttachReq (RFC 6940 §6.5.2.1).
type AppAttachReq struct {
	Ufrag       []byte
	Password    []byte
	Application uint16 // e.g. 5060 for SIP
	Role        []byte
	Candidates  []IceCandidate
}

// AppAttachAns has the same layout as AppAttachReq (RFC 6940 §6.5.2.2).
type AppAttachAns = AppAttachReq

// PingReq (RFC 6940 §6.5.3.1).
type PingReq struct {
	Padding []byte
}

// PingAns (RFC 6940 §6.5.3.2).
type PingAns struct {
	ResponseID uint64
	Time       uint64 // milliseconds since the Unix epoch
}

// ConfigUpdateType (RFC 6940 §6.5.4.1).
type ConfigUpdateType uint8

// Config update types.
const (
	ConfigUpdateConfig ConfigUpdateType = 1
	ConfigUpdateKind   ConfigUpdateType = 2
)

// ConfigUpdateReq (RFC 6940 §6.5.4.1). ConfigData for type config; Kinds for type kind.
type ConfigUpdateReq struct {
	Type       ConfigUpdateType
	ConfigData []byte
	Kinds      [][]byte // KindDescription<0..2^16-1> each
}

// ConfigUpdateAns is empty (RFC 6940 §6.5.4.2).
type ConfigUpdateAns struct{}

// DataValue (RFC 6940 §7.2.1).
type DataValue struct {
	Exists bool
	Value  []byte
}

// ArrayEntry (RFC 6940 §7.2.2).
type ArrayEntry struct {
	Index uint32
	Value DataValue
}

// DictionaryEntry (RFC 6940 §7.2.3).
type DictionaryEntry struct {
	Key   []byte // DictionaryKey<0..2^16-1>
	Value DataValue
}

// StoredDataValue is a value under one of the three data models (RFC 6940 §7.2).
// Model selects which of Single, Array, Dictionary is used.
type StoredDataValue struct {
	Model      DataModel
	Single     DataValue
	Array      ArrayEntry
	Dictionary DictionaryEntry
}

// SingleValue returns a single-value StoredDataValue.
func SingleValue(v []byte) StoredDataValue {
	return StoredDataValue{Model: DataModelSingle, Single: DataValue{Exists: true, Value: v}}
}

// ArrayValue returns an array StoredDataValue.
func ArrayValue(index uint32, v []byte) StoredDataValue {
	return StoredDataValue{Model: DataModelArray, Array: ArrayEntry{Index: index, Value: DataValue{Exists: true, Value: v}}}
}

// DictionaryValue returns a dictionary StoredDataValue.
func DictionaryValue(key, v []byte) StoredDataValue {
	return StoredDataValue{Model: DataModelDictionary, Dictionary: DictionaryEntry{Key: key, Value: DataValue{Exists: true, Value: v}}}
}

// Data returns the DataValue whatever the model.
func (v *StoredDataValue) Data() DataValue {
	switch v.Model {
	case DataModelArray:
		return v.Array.Value
	case DataModelDictionary:
		return v.Dictionary.Value
	}
	return v.Single
}

// StoredData is one stored value with its signature (RFC 6940 §7).
type StoredData struct {
	StorageTime uint64 // ms since the Unix epoch
	Lifetime    uint32 // seconds
	Value       StoredDataValue
	Signature   Signature
}

// StoreKindData (RFC 6940 §7.4.1.1).
type StoreKindData struct {
	Kind              KindID
	GenerationCounter uint64
	Values            []StoredData
}

// StoreReq (RFC 6940 §7.4.1.1).
type StoreReq struct {
	Resource      ResourceID
	ReplicaNumber uint8
	KindData      []StoreKindData
}

// StoreKindResponse (RFC 6940 §7.4.1.2).
type StoreKindResponse struct {
	Kind              KindID
	GenerationCounter uint64
	Replicas          []NodeID
}

// StoreAns (RFC 6940 §7.4.1.2).
type StoreAns struct {
	KindResponses []StoreKindResponse
}

// ArrayRange (RFC 6940 §7.4.2.1).
type ArrayRange struct {
	First uint32
	Last  uint32
}

// StoredDataSpecifier (RFC 6940 §7.4.2.1). Indices for array Kinds, Keys for
// dictionary Kinds (empty Keys = all keys); neither for single-value Kinds.
type StoredDataSpecifier struct {
	Kind       KindID
	Generation uint64
	Model      DataModel
	Indices    []ArrayRange
	Keys       [][]byte
}

// FetchReq (RFC 6940 §7.4.2.1).
type FetchReq struct {
	Resource   ResourceID
	Specifiers []StoredDataSpecifier
}

// FetchKindResponse (RFC 6940 §7.4.2.2).
type FetchKindResponse struct {
	Kind       KindID
	Generation uint64
	Values     []StoredData
}

// FetchAns (RFC 6940 §7.4.2.2).
type FetchAns struct {
	KindResponses []FetchKindResponse
}

// StatReq has the layout of FetchReq (RFC 6940 §7.4.3.1).
type StatReq = FetchReq

// MetaData (RFC 6940 §7.4.3.2).
type MetaData struct {
	Exists        bool
	ValueLength   uint32
	HashAlgorithm HashAlgorithm
	HashValue     []byte
}

// StoredMetaDataValue is MetaData under a data model (RFC 6940 §7.4.3.2).
type StoredMetaDataValue struct {
	Model    DataModel
	Index    uint32 // array
	Key      []byte // dictionary
	MetaData MetaData
}

// StoredMetaData (RFC 6940 §7.4.3.2).
type StoredMetaData struct {
	StorageTime uint64
	Lifetime    uint32
	MetaData    StoredMetaDataValue
}

// StatKindResponse (RFC 6940 §7.4.3.2).
type StatKindResponse struct {
	Kind       KindID
	Generation uint64
	Values     []StoredMetaData
}

// StatAns (RFC 6940 §7.4.3.2).
type StatAns struct {
	KindResponses []StatKindResponse
}

// FindReq (RFC 6940 §7.4.4.1).
type FindReq struct {
	Resource ResourceID
	Kinds    []KindID
}

// FindKindData (RFC 6940 §7.4.4.2).
type FindKindData struct {
	Kind    KindID
	Closest ResourceID
}

// FindAns (RFC 6940 §7.4.4.2).
type FindAns struct {
	Results []FindKindData
}

// JoinReq (RFC 6940 §6.4.2.1).
type JoinReq struct {
	JoiningPeerID       NodeID
	OverlaySpecificData []byte
}

// JoinAns (RFC 6940 §6.4.2.1).
type JoinAns struct {
	OverlaySpecificData []byte
}

// LeaveReq (RFC 6940 §6.4.2.2).
type LeaveReq struct {
	LeavingPeerID       NodeID
	OverlaySpecificData []byte
}

// LeaveAns is empty (RFC 6940 §6.4.2.2).
type LeaveAns struct{}

// ChordUpdateType (RFC 6940 §10.7).
type ChordUpdateType uint8

// Chord update types (RFC 6940 §10.7).
const (
	ChordPeerReady ChordUpdateType = 1
	ChordNeighbors ChordUpdateType = 2
	ChordFull      ChordUpdateType = 3
)

// ChordUpdate is the CHORD-RELOAD UpdateReq body (RFC 6940 §10.7).
type ChordUpdate struct {
	Uptime       uint32
	Type         ChordUpdateType
	Predecessors []NodeID
	Successors   []NodeID
	Fingers      []NodeID
}

// UpdateReq in CHORD-RELOAD is a ChordUpdate (RFC 6940 §6.4.2.3, §10.7).
type UpdateReq = ChordUpdate

// UpdateAns is empty in CHORD-RELOAD (RFC 6940 §6.4.2.3: success or error).
type UpdateAns struct{}

// RouteQueryReq (RFC 6940 §6.4.2.4).
type RouteQueryReq struct {
	SendUpdate          bool
	Destination         Destination
	OverlaySpecificData []byte
}

// ChordRouteQueryAns is the CHORD-RELOAD RouteQueryAns body (RFC 6940 §10.8).
type ChordRouteQueryAns struct {
	NextPeer NodeID
}

// RouteQueryAns in CHORD-RELOAD is a ChordRouteQueryAns.
type RouteQueryAns = ChordRouteQueryAns

// SipRegistrationType (RFC 7904 §3.2).
type SipRegistrationType uint8

// SIP registration types (RFC 7904 §3.2).
const (
	SipRegistrationURI   SipRegistrationType = 1
	SipRegistrationRoute SipRegistrationType = 2
)

// SipRegistration is the SIP-REGISTRATION Kind value (RFC 7904 §3.2).
// URI for type uri; ContactPrefs and DestinationList for type route.
type SipRegistration struct {
	Type            SipRegistrationType
	URI             string
	ContactPrefs    []byte
	DestinationList []Destination
	Raw             []byte // data of unknown types
}

// ChordLeaveType (RFC 6940 §10.9).
type ChordLeaveType uint8

// Chord leave types (RFC 6940 §10.9).
const (
	ChordLeaveFromSucc ChordLeaveType = 1
	ChordLeaveFromPred ChordLeaveType = 2
)

// ChordLeaveData is the overlay_specific_data of a CHORD-RELOAD LeaveReq (RFC 6940 §10.9).
type ChordLeaveData struct {
	Type         ChordLeaveType
	Successors   []NodeID // from_succ
	Predecessors []NodeID // from_pred
}
