package wire

import (
	"net/netip"
	"unicode/utf8"
)

// decodeAll runs f over b and requires all input consumed.
func decodeAll(b []byte, op string, f func(d *dec)) error {
	d := newOwnDec(b, op)
	f(d)
	return d.done(op)
}

func encodeWith(f func(e *enc)) ([]byte, error) {
	return encodeSized(128, f)
}

// encodeSized is encodeWith with an initial buffer capacity hint.
func encodeSized(hint int, f func(e *enc)) ([]byte, error) {
	e := &enc{b: make([]byte, 0, hint)}
	f(e)
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// ---- ErrorResponse, RFC 6940 §6.3.3.1

// MarshalBinary encodes the ErrorResponse: error_code, error_info (Info, or
// Phrase if Info is empty).
func (x *ErrorResponse) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.u16(uint16(x.Code))
		info := x.Info
		if len(info) == 0 {
			info = []byte(x.Phrase)
		}
		e.vec16(info, "error_info")
	})
}

// binaryErrorInfo reports error codes whose error_info is a structure, not text.
func binaryErrorInfo(c ErrorCode) bool {
	return c == ErrUnknownKind || c == ErrGenerationCounterTooLow
}

// UnmarshalBinary decodes an ErrorResponse.
func (x *ErrorResponse) UnmarshalBinary(b []byte) error {
	*x = ErrorResponse{}
	return decodeAll(b, "ErrorResponse", func(d *dec) {
		x.Code = ErrorCode(d.u16("error_code"))
		x.Info = d.vec(2, "error_info")
		if !binaryErrorInfo(x.Code) && utf8.Valid(x.Info) {
			x.Phrase = string(x.Info)
		}
	})
}

// UnknownKindsInfo encodes the error_info of Error_Unknown_Kind:
// KindId unknown_kinds<0..2^8-1> (RFC 6940 §7.4.1.2).
func UnknownKindsInfo(kinds []KindID) ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(1)
		for _, k := range kinds {
			e.u32(uint32(k))
		}
		e.end(1, s, "unknown_kinds")
	})
}

// ParseUnknownKinds decodes the error_info of Error_Unknown_Kind.
func ParseUnknownKinds(info []byte) ([]KindID, error) {
	var out []KindID
	err := decodeAll(info, "unknown_kinds", func(d *dec) {
		l := d.sub(1, "unknown_kinds")
		for !l.empty() {
			out = append(out, KindID(l.u32("kind")))
		}
		d.join(l, "unknown_kinds")
	})
	return out, err
}

// ---- Probe, RFC 6940 §6.4.2.5

// MarshalBinary encodes the ProbeReq.
func (x *ProbeReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(1)
		for _, t := range x.RequestedInfo {
			e.u8(uint8(t))
		}
		e.end(1, s, "requested_info")
	})
}

// UnmarshalBinary decodes a ProbeReq.
func (x *ProbeReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "ProbeReq", func(d *dec) {
		p := d.vecRaw(1, "requested_info")
		x.RequestedInfo = make([]ProbeInformationType, len(p))
		for i, v := range p {
			x.RequestedInfo[i] = ProbeInformationType(v)
		}
	})
}

// MarshalBinary encodes the ProbeAns.
func (x *ProbeAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		s := e.begin(2)
		for _, pi := range x.ProbeInfo {
			e.u8(uint8(pi.Type))
			switch pi.Type {
			case ProbeResponsibleSet, ProbeNumResources, ProbeUptime:
				e.u8(4)
				e.u32(pi.Value)
			default:
				e.vec8(pi.Raw, "probe information")
			}
		}
		e.end(2, s, "probe_info")
	})
}

// UnmarshalBinary decodes a ProbeAns.
func (x *ProbeAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "ProbeAns", func(d *dec) {
		l := d.sub(2, "probe_info")
		x.ProbeInfo = nil
		for !l.empty() {
			var pi ProbeInformation
			pi.Type = ProbeInformationType(l.u8("probe type"))
			v := l.sub(1, "probe information")
			switch pi.Type {
			case ProbeResponsibleSet, ProbeNumResources, ProbeUptime:
				pi.Value = v.u32("probe value")
			default: // "This type may be extended": keep unknown values
				pi.Raw = append([]byte{}, v.take(v.remain(), "probe value")...)
			}
			l.join(v, "probe information")
			x.ProbeInfo = append(x.ProbeInfo, pi)
		}
		d.join(l, "probe_info")
	})
}

// ---- IpAddressPort, RFC 6940 §6.3.1.1

func appendAddrPort(e *enc, ap netip.AddrPort) {
	a := ap.Addr().Unmap()
	switch {
	case a.Is4():
		e.u8(uint8(AddressIPv4))
		e.u8(6)
		b := a.As4()
		e.raw(b[:])
	case a.Is6():
		e.u8(uint8(AddressIPv6))
		e.u8(18)
		b := a.As16()
		e.raw(b[:])
	default:
		e.fail("invalid IP address %v", ap)
		return
	}
	e.u16(ap.Port())
}

func decodeAddrPort(d *dec) netip.AddrPort {
	t := AddressType(d.u8("address type"))
	s := d.sub(1, "IpAddressPort")
	var ap netip.AddrPort
	switch t {
	case AddressIPv4:
		p := s.take(4, "ipv4 address")
		port := s.u16("port")
		if s.ok() {
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(p)), port)
		}
	case AddressIPv6:
		p := s.take(16, "ipv6 address")
		port := s.u16("port")
		if s.ok() {
			ap = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p)), port)
		}
	default:
		s.fail("unknown address type %d", t)
	}
	d.join(s, "IpAddressPort")
	return ap
}

// ---- IceCandidate, RFC 6940 §6.5.1.1

func appendCandidate(e *enc, c *IceCandidate) {
	appendAddrPort(e, c.AddrPort)
	e.u8(uint8(c.OverlayLink))
	e.vec8(c.Foundation, "foundation")
	e.u32(c.Priority)
	e.u8(uint8(c.Type))
	switch c.Type {
	case CandHost:
	case CandSrflx, CandRelay:
		appendAddrPort(e, c.RelAddrPort)
	default:
		e.fail("candidate type %d", c.Type)
	}
	s := e.begin(2)
	for _, x := range c.Extensions {
		e.vec16(x.Name, "ice extension name")
		e.vec16(x.Value, "ice extension value")
	}
	e.end(2, s, "ice extensions")
}

func decodeCandidate(d *dec) IceCandidate {
	var c IceCandidate
	c.AddrPort = decodeAddrPort(d)
	c.OverlayLink = OverlayLinkType(d.u8("overlay_link"))
	c.Foundation = d.vec(1, "foundation")
	c.Priority = d.u32("priority")
	c.Type = CandType(d.u8("cand type"))
	switch c.Type {
	case CandHost:
	case CandSrflx, CandRelay:
		c.RelAddrPort = decodeAddrPort(d)
	default:
		d.fail("unknown candidate type %d", c.Type)
	}
	l := d.sub(2, "ice extensions")
	for !l.empty() {
		var x IceExtension
		x.Name = l.vec(2, "ice extension name")
		x.Value = l.vec(2, "ice extension value")
		c.Extensions = append(c.Extensions, x)
	}
	d.join(l, "ice extensions")
	return c
}

func appendCandidates(e *enc, cs []IceCandidate) {
	s := e.begin(2)
	for i := range cs {
		appendCandidate(e, &cs[i])
	}
	e.end(2, s, "candidates")
}

func decodeCandidates(d *dec) []IceCandidate {
	l := d.sub(2, "candidates")
	var out []IceCandidate
	for !l.empty() {
		out = append(out, decodeCandidate(l))
	}
	d.join(l, "candidates")
	return out
}

// MarshalBinary encodes the AttachReqAns (RFC 6940 §6.5.1.1).
func (x *AttachReqAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.vec8(x.Ufrag, "ufrag")
		e.vec8(x.Password, "password")
		e.vec8(x.Role, "role")
		appendCandidates(e, x.Candidates)
		e.boolean(x.SendUpdate)
	})
}

// UnmarshalBinary decodes an AttachReqAns.
func (x *AttachReqAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "AttachReqAns", func(d *dec) {
		x.Ufrag = d.vec(1, "ufrag")
		x.Password = d.vec(1, "password")
		x.Role = d.vec(1, "role")
		x.Candidates = decodeCandidates(d)
		x.SendUpdate = d.boolean("send_update")
	})
}

// MarshalBinary encodes the AppAttachReq/Ans (RFC 6940 §6.5.2).
func (x *AppAttachReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.vec8(x.Ufrag, "ufrag")
		e.vec8(x.Password, "password")
		e.u16(x.Application)
		e.vec8(x.Role, "role")
		appendCandidates(e, x.Candidates)
	})
}

// UnmarshalBinary decodes an AppAttachReq/Ans.
func (x *AppAttachReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "AppAttach", func(d *dec) {
		x.Ufrag = d.vec(1, "ufrag")
		x.Password = d.vec(1, "password")
		x.Application = d.u16("application")
		x.Role = d.vec(1, "role")
		x.Candidates = decodeCandidates(d)
	})
}

// ---- Ping, RFC 6940 §6.5.3

// MarshalBinary encodes the PingReq.
func (x *PingReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) { e.vec16(x.Padding, "padding") })
}

// UnmarshalBinary decodes a PingReq.
func (x *PingReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "PingReq", func(d *dec) { x.Padding = d.vec(2, "padding") })
}

// MarshalBinary encodes the PingAns.
func (x *PingAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) { e.u64(x.ResponseID); e.u64(x.Time) })
}

// UnmarshalBinary decodes a PingAns.
func (x *PingAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "PingAns", func(d *dec) {
		x.ResponseID = d.u64("response_id")
		x.Time = d.u64("time")
	})
}

// ---- ConfigUpdate, RFC 6940 §6.5.4

// MarshalBinary encodes the ConfigUpdateReq.
func (x *ConfigUpdateReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.u8(uint8(x.Type))
		s := e.begin(4)
		switch x.Type {
		case ConfigUpdateConfig:
			e.vec(3, x.ConfigData, "config_data")
		case ConfigUpdateKind:
			k := e.begin(3)
			for _, kd := range x.Kinds {
				e.vec16(kd, "KindDescription")
			}
			e.end(3, k, "kinds")
		default:
			e.fail("config update type %d", x.Type)
		}
		e.end(4, s, "ConfigUpdateReq")
	})
}

// UnmarshalBinary decodes a ConfigUpdateReq.
func (x *ConfigUpdateReq) UnmarshalBinary(b []byte) error {
	*x = ConfigUpdateReq{}
	return decodeAll(b, "ConfigUpdateReq", func(d *dec) {
		x.Type = ConfigUpdateType(d.u8("type"))
		s := d.sub(4, "ConfigUpdateReq")
		switch x.Type {
		case ConfigUpdateConfig:
			x.ConfigData = s.vec(3, "config_data")
		case ConfigUpdateKind:
			l := s.sub(3, "kinds")
			for !l.empty() {
				x.Kinds = append(x.Kinds, l.vec(2, "KindDescription"))
			}
			s.join(l, "kinds")
		default:
			s.fail("unknown config update type %d", x.Type)
		}
		d.join(s, "ConfigUpdateReq")
	})
}

// MarshalBinary encodes the (empty) ConfigUpdateAns.
func (x *ConfigUpdateAns) MarshalBinary() ([]byte, error) { return []byte{}, nil }

// UnmarshalBinary decodes a ConfigUpdateAns.
func (x *ConfigUpdateAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "ConfigUpdateAns", func(*dec) {})
}

// ---- Join / Leave, RFC 6940 §6.4.2.1, §6.4.2.2

// MarshalBinary encodes the JoinReq.
func (x *JoinReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.raw(x.JoiningPeerID[:])
		e.vec16(x.OverlaySpecificData, "overlay_specific_data")
	})
}

// UnmarshalBinary decodes a JoinReq.
func (x *JoinReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "JoinReq", func(d *dec) {
		x.JoiningPeerID = decodeNodeID(d)
		x.OverlaySpecificData = d.vec(2, "overlay_specific_data")
	})
}

// MarshalBinary encodes the JoinAns.
func (x *JoinAns) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) { e.vec16(x.OverlaySpecificData, "overlay_specific_data") })
}

// UnmarshalBinary decodes a JoinAns.
func (x *JoinAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "JoinAns", func(d *dec) { x.OverlaySpecificData = d.vec(2, "overlay_specific_data") })
}

// MarshalBinary encodes the LeaveReq.
func (x *LeaveReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.raw(x.LeavingPeerID[:])
		e.vec16(x.OverlaySpecificData, "overlay_specific_data")
	})
}

// UnmarshalBinary decodes a LeaveReq.
func (x *LeaveReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "LeaveReq", func(d *dec) {
		x.LeavingPeerID = decodeNodeID(d)
		x.OverlaySpecificData = d.vec(2, "overlay_specific_data")
	})
}

// MarshalBinary encodes the (empty) LeaveAns.
func (x *LeaveAns) MarshalBinary() ([]byte, error) { return []byte{}, nil }

// UnmarshalBinary decodes a LeaveAns.
func (x *LeaveAns) UnmarshalBinary(b []byte) error { return decodeAll(b, "LeaveAns", func(*dec) {}) }

// MarshalBinary encodes the (empty) UpdateAns.
func (x *UpdateAns) MarshalBinary() ([]byte, error) { return []byte{}, nil }

// UnmarshalBinary decodes an UpdateAns.
func (x *UpdateAns) UnmarshalBinary(b []byte) error { return decodeAll(b, "UpdateAns", func(*dec) {}) }

func decodeNodeID(d *dec) NodeID {
	var n NodeID
	if p := d.take(NodeIDSize, "node id"); p != nil {
		copy(n[:], p)
	}
	return n
}

func appendNodeIDs(e *enc, ids []NodeID, what string) {
	s := e.begin(2)
	for i := range ids {
		e.raw(ids[i][:])
	}
	e.end(2, s, what)
}

func decodeNodeIDs(d *dec, what string) []NodeID {
	p := d.vecRaw(2, what)
	if d.err != nil {
		return nil
	}
	if len(p)%NodeIDSize != 0 {
		d.fail("%s: %d bytes is not a multiple of %d", what, len(p), NodeIDSize)
		return nil
	}
	out := make([]NodeID, len(p)/NodeIDSize)
	for i := range out {
		copy(out[i][:], p[i*NodeIDSize:])
	}
	return out
}

// ---- CHORD-RELOAD, RFC 6940 §10.7, §10.8, §10.9

// MarshalBinary encodes the ChordUpdate (RFC 6940 §10.7).
func (x *ChordUpdate) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.u32(x.Uptime)
		e.u8(uint8(x.Type))
		switch x.Type {
		case ChordPeerReady:
		case ChordNeighbors:
			appendNodeIDs(e, x.Predecessors, "predecessors")
			appendNodeIDs(e, x.Successors, "successors")
		case ChordFull:
			appendNodeIDs(e, x.Predecessors, "predecessors")
			appendNodeIDs(e, x.Successors, "successors")
			appendNodeIDs(e, x.Fingers, "fingers")
		default:
			e.fail("chord update type %d", x.Type)
		}
	})
}

// UnmarshalBinary decodes a ChordUpdate.
func (x *ChordUpdate) UnmarshalBinary(b []byte) error {
	*x = ChordUpdate{}
	return decodeAll(b, "ChordUpdate", func(d *dec) {
		x.Uptime = d.u32("uptime")
		x.Type = ChordUpdateType(d.u8("type"))
		switch x.Type {
		case ChordPeerReady:
		case ChordNeighbors:
			x.Predecessors = decodeNodeIDs(d, "predecessors")
			x.Successors = decodeNodeIDs(d, "successors")
		case ChordFull:
			x.Predecessors = decodeNodeIDs(d, "predecessors")
			x.Successors = decodeNodeIDs(d, "successors")
			x.Fingers = decodeNodeIDs(d, "fingers")
		default:
			d.fail("unknown chord update type %d", x.Type)
		}
	})
}

// MarshalBinary encodes the ChordRouteQueryAns (RFC 6940 §10.8).
func (x *ChordRouteQueryAns) MarshalBinary() ([]byte, error) {
	return append([]byte(nil), x.NextPeer[:]...), nil
}

// UnmarshalBinary decodes a ChordRouteQueryAns.
func (x *ChordRouteQueryAns) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "ChordRouteQueryAns", func(d *dec) { x.NextPeer = decodeNodeID(d) })
}

// MarshalBinary encodes the ChordLeaveData (RFC 6940 §10.9).
func (x *ChordLeaveData) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.u8(uint8(x.Type))
		switch x.Type {
		case ChordLeaveFromSucc:
			appendNodeIDs(e, x.Successors, "successors")
		case ChordLeaveFromPred:
			appendNodeIDs(e, x.Predecessors, "predecessors")
		default:
			e.fail("chord leave type %d", x.Type)
		}
	})
}

// UnmarshalBinary decodes a ChordLeaveData.
func (x *ChordLeaveData) UnmarshalBinary(b []byte) error {
	*x = ChordLeaveData{}
	return decodeAll(b, "ChordLeaveData", func(d *dec) {
		x.Type = ChordLeaveType(d.u8("type"))
		switch x.Type {
		case ChordLeaveFromSucc:
			x.Successors = decodeNodeIDs(d, "successors")
		case ChordLeaveFromPred:
			x.Predecessors = decodeNodeIDs(d, "predecessors")
		default:
			d.fail("unknown chord leave type %d", x.Type)
		}
	})
}

// ---- RouteQuery, RFC 6940 §6.4.2.4

// MarshalBinary encodes the RouteQueryReq.
func (x *RouteQueryReq) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.boolean(x.SendUpdate)
		encodeDestination(e, &x.Destination)
		e.vec16(x.OverlaySpecificData, "overlay_specific_data")
	})
}

// UnmarshalBinary decodes a RouteQueryReq.
func (x *RouteQueryReq) UnmarshalBinary(b []byte) error {
	return decodeAll(b, "RouteQueryReq", func(d *dec) {
		x.SendUpdate = d.boolean("send_update")
		x.Destination = decodeDestination(d)
		x.OverlaySpecificData = d.vec(2, "overlay_specific_data")
	})
}

// ---- SIP-REGISTRATION, RFC 7904 §3.2

// MarshalBinary encodes the SipRegistration.
func (x *SipRegistration) MarshalBinary() ([]byte, error) {
	return encodeWith(func(e *enc) {
		e.u8(uint8(x.Type))
		s := e.begin(2)
		switch x.Type {
		case SipRegistrationURI:
			e.vec16([]byte(x.URI), "uri")
		case SipRegistrationRoute:
			e.vec16(x.ContactPrefs, "contact_prefs")
			l := e.begin(2)
			encodeDestinations(e, x.DestinationList)
			e.end(2, l, "destination_list")
		default:
			e.raw(x.Raw) // "This type can be extended"
		}
		e.end(2, s, "SipRegistration")
	})
}

// UnmarshalBinary decodes a SipRegistration. Unknown types are kept in Raw.
func (x *SipRegistration) UnmarshalBinary(b []byte) error {
	*x = SipRegistration{}
	return decodeAll(b, "SipRegistration", func(d *dec) {
		x.Type = SipRegistrationType(d.u8("type"))
		s := d.sub(2, "SipRegistration")
		switch x.Type {
		case SipRegistrationURI:
			x.URI = string(s.vecRaw(2, "uri"))
		case SipRegistrationRoute:
			x.ContactPrefs = s.vec(2, "contact_prefs")
			l := s.sub(2, "destination_list")
			x.DestinationList = decodeDestinations(l)
			s.join(l, "destination_list")
		default:
			x.Raw = append([]byte{}, s.take(s.remain(), "data")...)
		}
		d.join(s, "SipRegistration")
	})
}
