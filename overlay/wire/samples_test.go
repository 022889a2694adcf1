package wire

import (
	"net/netip"
)

var dictKey = nid(0x40) // SIP-REGISTRATION dictionary key: the storing peer's Node-ID (RFC 7904 §3)

func nid(b byte) NodeID {
	var n NodeID
	for i := range n {
		n[i] = b + byte(i)
	}
	return n
}

func sampleCandidates() []IceCandidate {
	return []IceCandidate{
		{
			AddrPort:    netip.MustParseAddrPort("192.0.2.1:6084"),
			OverlayLink: LinkDTLSUDPSR,
			Foundation:  []byte("1"),
			Priority:    2130706431,
			Type:        CandHost,
			Extensions:  []IceExtension{{Name: []byte("n"), Value: []byte("v")}},
		},
		{
			AddrPort:    netip.MustParseAddrPort("[2001:db8::1]:40000"),
			OverlayLink: LinkDTLSUDPSR,
			Foundation:  []byte("2"),
			Priority:    1694498815,
			Type:        CandSrflx,
			RelAddrPort: netip.MustParseAddrPort("10.0.0.2:6084"),
		},
	}
}

func sampleSipReg() *SipRegistration {
	return &SipRegistration{Type: SipRegistrationURI, URI: "sip:alice@example.org"}
}

func sampleStoredData(model DataModel, v []byte) StoredData {
	var val StoredDataValue
	switch model {
	case DataModelSingle:
		val = SingleValue(v)
	case DataModelArray:
		val = ArrayValue(3, v)
	default:
		val = DictionaryValue(dictKey[:], v)
	}
	return StoredData{
		StorageTime: 1700000000000,
		Lifetime:    3600,
		Value:       val,
		Signature: Signature{
			Algorithm: AlgRSASHA256,
			Identity:  SignerIdentity{Type: IdentityCertHash, HashAlg: HashSHA256, Hash: make([]byte, 32)},
			Value:     []byte{1, 2, 3, 4},
		},
	}
}

type sample struct {
	code MessageCode
	body Body
}

// sampleBodies returns a populated body for every message code.
func sampleBodies() []sample {
	reg, _ := sampleSipReg().MarshalBinary()
	res := ResourceIDFromName("sip:alice@example.org")
	return []sample{
		{CodeProbeReq, &ProbeReq{RequestedInfo: []ProbeInformationType{ProbeResponsibleSet, ProbeNumResources, ProbeUptime}}},
		{CodeProbeAns, &ProbeAns{ProbeInfo: []ProbeInformation{{Type: ProbeResponsibleSet, Value: 1000}, {Type: ProbeNumResources, Value: 7}, {Type: ProbeUptime, Value: 99}}}},
		{CodeAttachReq, &AttachReqAns{Ufrag: []byte("ufrag"), Password: []byte("password"), Role: []byte("active"), Candidates: sampleCandidates(), SendUpdate: true}},
		{CodeAttachAns, &AttachReqAns{Ufrag: []byte("u2"), Password: []byte("p2"), Role: []byte("passive"), Candidates: sampleCandidates()[:1]}},
		{CodeStoreReq, &StoreReq{Resource: res, ReplicaNumber: 0, KindData: []StoreKindData{
			{Kind: KindSIPRegistration, GenerationCounter: 1, Values: []StoredData{sampleStoredData(DataModelDictionary, reg)}},
			{Kind: KindTURNService, GenerationCounter: 2, Values: []StoredData{sampleStoredData(DataModelSingle, []byte{9})}},
			{Kind: KindCertificateByNode, GenerationCounter: 3, Values: []StoredData{sampleStoredData(DataModelArray, []byte("cert"))}},
		}}},
		{CodeStoreAns, &StoreAns{KindResponses: []StoreKindResponse{{Kind: KindSIPRegistration, GenerationCounter: 2, Replicas: []NodeID{nid(1), nid(2)}}}}},
		{CodeFetchReq, &FetchReq{Resource: res, Specifiers: []StoredDataSpecifier{
			{Kind: KindSIPRegistration, Generation: 0, Model: DataModelDictionary, Keys: [][]byte{dictKey[:]}},
			{Kind: KindCertificateByNode, Model: DataModelArray, Indices: []ArrayRange{{First: 0, Last: 0xffffffff}}},
			{Kind: KindTURNService, Model: DataModelSingle},
		}}},
		{CodeFetchAns, &FetchAns{KindResponses: []FetchKindResponse{
			{Kind: KindSIPRegistration, Generation: 5, Values: []StoredData{sampleStoredData(DataModelDictionary, reg)}},
			{Kind: KindCertificateByNode, Generation: 6, Values: []StoredData{sampleStoredData(DataModelArray, []byte("c"))}},
		}}},
		{CodeStatReq, &FetchReq{Resource: res, Specifiers: []StoredDataSpecifier{{Kind: KindSIPRegistration, Model: DataModelDictionary}}}},
		{CodeStatAns, &StatAns{KindResponses: []StatKindResponse{
			{Kind: KindSIPRegistration, Generation: 5, Values: []StoredMetaData{{StorageTime: 1, Lifetime: 2, MetaData: StoredMetaDataValue{Model: DataModelDictionary, Key: dictKey[:], MetaData: MetaData{Exists: true, ValueLength: 10, HashAlgorithm: HashSHA1, HashValue: make([]byte, 20)}}}}},
			{Kind: KindTURNService, Generation: 1, Values: []StoredMetaData{{StorageTime: 3, Lifetime: 4, MetaData: StoredMetaDataValue{Model: DataModelSingle, MetaData: MetaData{Exists: false, HashValue: []byte{}}}}}},
			{Kind: KindCertificateByUser, Generation: 1, Values: []StoredMetaData{{StorageTime: 3, Lifetime: 4, MetaData: StoredMetaDataValue{Model: DataModelArray, Index: 7, MetaData: MetaData{Exists: true, ValueLength: 1, HashAlgorithm: HashSHA256, HashValue: make([]byte, 32)}}}}},
		}}},
		{CodeFindReq, &FindReq{Resource: res, Kinds: []KindID{KindSIPRegistration, KindTURNService}}},
		{CodeFindAns, &FindAns{Results: []FindKindData{{Kind: KindSIPRegistration, Closest: res}, {Kind: KindTURNService, Closest: ResourceID{}}}}},
		{CodeJoinReq, &JoinReq{JoiningPeerID: nid(0x10), OverlaySpecificData: []byte{}}},
		{CodeJoinAns, &JoinAns{OverlaySpecificData: []byte("x")}},
		{CodeLeaveReq, &LeaveReq{LeavingPeerID: nid(0x20), OverlaySpecificData: mustMarshal(&ChordLeaveData{Type: ChordLeaveFromSucc, Successors: []NodeID{nid(3)}})}},
		{CodeLeaveAns, &LeaveAns{}},
		{CodeUpdateReq, &ChordUpdate{Uptime: 42, Type: ChordFull, Predecessors: []NodeID{nid(1)}, Successors: []NodeID{nid(2), nid(3)}, Fingers: []NodeID{nid(4)}}},
		{CodeUpdateAns, &UpdateAns{}},
		{CodeRouteQueryReq, &RouteQueryReq{SendUpdate: true, Destination: ResourceDestination(res), OverlaySpecificData: []byte{}}},
		{CodeRouteQueryAns, &ChordRouteQueryAns{NextPeer: nid(0x30)}},
		{CodePingReq, &PingReq{Padding: make([]byte, 16)}},
		{CodePingAns, &PingAns{ResponseID: 0x0102030405060708, Time: 1700000000123}},
		{CodeAppAttachReq, &AppAttachReq{Ufrag: []byte("uf"), Password: []byte("pw"), Application: 5060, Role: []byte("active"), Candidates: sampleCandidates()}},
		{CodeAppAttachAns, &AppAttachReq{Ufrag: []byte("uf2"), Password: []byte("pw2"), Application: 5060, Role: []byte("passive"), Candidates: sampleCandidates()[1:]}},
		{CodeConfigUpdateReq, &ConfigUpdateReq{Type: ConfigUpdateConfig, ConfigData: []byte("<overlay/>")}},
		{CodeConfigUpdateAns, &ConfigUpdateAns{}},
		{CodeError, &ErrorResponse{Code: ErrNotFound, Phrase: "not found", Info: []byte("not found")}},
	}
}

func mustMarshal(b interface{ MarshalBinary() ([]byte, error) }) []byte {
	p, err := b.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return p
}

// sampleMessage wraps a body in a message with a full header.
func sampleMessage(s sample, txid uint64) *Message {
	m, err := NewMessage(s.code, s.body)
	if err != nil {
		panic(err)
	}
	m.Header.OverlayHash = OverlayHash("chordphone.example")
	m.Header.ConfigurationSequence = 7
	m.Header.TransactionID = txid
	m.Header.MaxResponseLength = 0
	m.Header.ViaList = []Destination{NodeDestination(nid(0xa0))}
	if s.code.IsRequest() {
		m.Header.DestinationList = []Destination{NodeDestination(nid(0xb0))}
	} else {
		m.Header.DestinationList = []Destination{NodeDestination(nid(0xa0))}
	}
	return m
}
