package wire

import "errors"

var errTODO = errors.New("wire: not implemented yet")

// MarshalBinary encodes the ErrorResponse.
func (x *ErrorResponse) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ErrorResponse.
func (x *ErrorResponse) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ProbeReq.
func (x *ProbeReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ProbeReq.
func (x *ProbeReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ProbeAns.
func (x *ProbeAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ProbeAns.
func (x *ProbeAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the AttachReqAns.
func (x *AttachReqAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the AttachReqAns.
func (x *AttachReqAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the AppAttachReq.
func (x *AppAttachReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the AppAttachReq.
func (x *AppAttachReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the PingReq.
func (x *PingReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the PingReq.
func (x *PingReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the PingAns.
func (x *PingAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the PingAns.
func (x *PingAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ConfigUpdateReq.
func (x *ConfigUpdateReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ConfigUpdateReq.
func (x *ConfigUpdateReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ConfigUpdateAns.
func (x *ConfigUpdateAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ConfigUpdateAns.
func (x *ConfigUpdateAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the StoreReq.
func (x *StoreReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the StoreReq.
func (x *StoreReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the StoreAns.
func (x *StoreAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the StoreAns.
func (x *StoreAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the FetchReq.
func (x *FetchReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the FetchReq.
func (x *FetchReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the FetchAns.
func (x *FetchAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the FetchAns.
func (x *FetchAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the StatAns.
func (x *StatAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the StatAns.
func (x *StatAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the FindReq.
func (x *FindReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the FindReq.
func (x *FindReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the FindAns.
func (x *FindAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the FindAns.
func (x *FindAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the JoinReq.
func (x *JoinReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the JoinReq.
func (x *JoinReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the JoinAns.
func (x *JoinAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the JoinAns.
func (x *JoinAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the LeaveReq.
func (x *LeaveReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the LeaveReq.
func (x *LeaveReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the LeaveAns.
func (x *LeaveAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the LeaveAns.
func (x *LeaveAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ChordUpdate.
func (x *ChordUpdate) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ChordUpdate.
func (x *ChordUpdate) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the UpdateAns.
func (x *UpdateAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the UpdateAns.
func (x *UpdateAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the RouteQueryReq.
func (x *RouteQueryReq) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the RouteQueryReq.
func (x *RouteQueryReq) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ChordRouteQueryAns.
func (x *ChordRouteQueryAns) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ChordRouteQueryAns.
func (x *ChordRouteQueryAns) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the SipRegistration.
func (x *SipRegistration) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the SipRegistration.
func (x *SipRegistration) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the ChordLeaveData.
func (x *ChordLeaveData) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the ChordLeaveData.
func (x *ChordLeaveData) UnmarshalBinary(b []byte) error { return errTODO }

// MarshalBinary encodes the StoredData.
func (x *StoredData) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes the StoredData.
func (x *StoredData) UnmarshalBinary(b []byte) error { return errTODO }
