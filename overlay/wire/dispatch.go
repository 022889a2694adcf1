package wire

import "fmt"

// NewBody returns a new zero body for code, e.g. *StoreReq for CodeStoreReq,
// *ErrorResponse for CodeError (CHORD-RELOAD bodies for Update and
// RouteQuery answers). It returns nil for unknown codes.
func NewBody(code MessageCode) Body {
	switch code {
	case CodeProbeReq:
		return &ProbeReq{}
	case CodeProbeAns:
		return &ProbeAns{}
	case CodeAttachReq, CodeAttachAns:
		return &AttachReqAns{}
	case CodeStoreReq:
		return &StoreReq{}
	case CodeStoreAns:
		return &StoreAns{}
	case CodeFetchReq, CodeStatReq:
		return &FetchReq{}
	case CodeFetchAns:
		return &FetchAns{}
	case CodeStatAns:
		return &StatAns{}
	case CodeFindReq:
		return &FindReq{}
	case CodeFindAns:
		return &FindAns{}
	case CodeJoinReq:
		return &JoinReq{}
	case CodeJoinAns:
		return &JoinAns{}
	case CodeLeaveReq:
		return &LeaveReq{}
	case CodeLeaveAns:
		return &LeaveAns{}
	case CodeUpdateReq:
		return &ChordUpdate{}
	case CodeUpdateAns:
		return &UpdateAns{}
	case CodeRouteQueryReq:
		return &RouteQueryReq{}
	case CodeRouteQueryAns:
		return &ChordRouteQueryAns{}
	case CodePingReq:
		return &PingReq{}
	case CodePingAns:
		return &PingAns{}
	case CodeAppAttachReq, CodeAppAttachAns:
		return &AppAttachReq{}
	case CodeConfigUpdateReq:
		return &ConfigUpdateReq{}
	case CodeConfigUpdateAns:
		return &ConfigUpdateAns{}
	case CodeError:
		return &ErrorResponse{}
	}
	return nil
}

type kindsUnmarshaler interface {
	UnmarshalKinds([]byte, KindModels) error
}

// ParseBody decodes m.Body into the typed body for m.Code (see NewBody).
// kinds resolves data models for Store/Fetch/Stat (nil = DefaultKindModels).
// Unknown codes and malformed bodies yield a *Error (Error_Invalid_Message;
// Error_Unknown_Kind for a Kind without a known data model).
func ParseBody(m *Message, kinds KindModels) (Body, error) {
	b := NewBody(m.Code)
	if b == nil {
		return nil, errorf(ErrInvalidMessage, "message contents", "unknown message code %d", uint16(m.Code))
	}
	var err error
	if ku, ok := b.(kindsUnmarshaler); ok {
		err = ku.UnmarshalKinds(m.Body, kinds)
	} else {
		err = b.UnmarshalBinary(m.Body)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// NewMessage returns a request/answer Message with code and encoded body,
// TTL DefaultTTL and the given header fields zero.
func NewMessage(code MessageCode, body Body) (*Message, error) {
	m := &Message{Header: ForwardingHeader{TTL: DefaultTTL, Version: Version, Fragment: FragmentUnfragmented}}
	if body != nil {
		if err := m.SetBody(code, body); err != nil {
			return nil, err
		}
	} else {
		m.Code, m.Body = code, []byte{}
	}
	return m, nil
}

// NewErrorMessage returns an error answer (RFC 6940 §6.3.3.1) for req with
// the given code and phrase. The via list of the request becomes the
// destination list of the answer in reverse order (RFC 6940 §6.2.2).
func NewErrorMessage(req *Message, code ErrorCode, phrase string) (*Message, error) {
	if len(phrase) > 0xffff {
		phrase = phrase[:0xffff]
	}
	m, err := NewMessage(CodeError, &ErrorResponse{Code: code, Phrase: phrase})
	if err != nil {
		return nil, fmt.Errorf("wire: error response: %w", err)
	}
	if req != nil {
		m.Header.OverlayHash = req.Header.OverlayHash
		m.Header.ConfigurationSequence = req.Header.ConfigurationSequence
		m.Header.TransactionID = req.Header.TransactionID
		m.Header.DestinationList = ReverseDestinations(req.Header.ViaList)
	}
	return m, nil
}

// ReverseDestinations returns a reversed copy of a via list, the
// destination list of a response (RFC 6940 §6.2.2).
func ReverseDestinations(via []Destination) []Destination {
	out := make([]Destination, len(via))
	for i, d := range via {
		out[len(via)-1-i] = d
	}
	return out
}
