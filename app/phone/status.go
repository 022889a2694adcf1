package phone

import (
	"time"

	"github.com/chordphone/chordphone/app/peer"
)

// PeerState is how far the phone is in the overlay.
type PeerState string

// Peer states, as the status line shows them.
const (
	NotJoined  PeerState = "not joined"
	Joined     PeerState = "joined"
	Registered PeerState = "registered"
)

// Status is a snapshot of the phone as a peer and as a phone.
type Status struct {
	Version string    `json:"version"`
	User    string    `json:"user,omitempty"`
	AoR     string    `json:"aor,omitempty"`
	Overlay string    `json:"overlay,omitempty"`
	State   PeerState `json:"state"`
	// Role is "peer" (storing for others) or "client" (RFC 6940 §4.2: stores and routes
	// nothing; setting "peer.store_for_others" false, or --client).
	Role string `json:"role"`
	// ClientPeer is a client's peer: the Node-ID of the peer responsible for its own
	// (RFC 6940 §4.2.1), "" while detached and for a peer.
	ClientPeer    string   `json:"client_peer,omitempty"`
	NodeID        string   `json:"node_id,omitempty"`
	Listen        string   `json:"listen,omitempty"`
	Predecessors  []string `json:"predecessors"`
	Successors    []string `json:"successors"`
	Fingers       []string `json:"fingers"`
	StoredRecords int      `json:"stored_records"`
	// Links are the links to those peers: type and round-trip time, by Node-ID.
	Links map[string]peer.LinkInfo `json:"links,omitempty"`
	// Relay is what this peer serves as a TURN relay and which relays it uses (RFC 6940 §9).
	Relay *peer.RelayStatus `json:"relay,omitempty"`
	Calls []CallInfo        `json:"calls"`
}

// CallState is where a call is in its life.
type CallState string

// Call states.
const (
	CallDialing  CallState = "dialing"  // looking up the callee and connecting
	CallRinging  CallState = "ringing"  // the callee's phone rings (180)
	CallIncoming CallState = "incoming" // someone calls us; not answered yet
	CallActive   CallState = "active"
	CallHeld     CallState = "held"
	CallEnded    CallState = "ended"
)

// Direction of a call.
type Direction string

// Directions.
const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// CallInfo describes one call.
type CallInfo struct {
	ID        string    `json:"id"`
	Peer      string    `json:"peer"`
	Direction Direction `json:"direction"`
	State     CallState `json:"state"`
	Muted     bool      `json:"muted"`
	Started   time.Time `json:"started"`
	Answered  time.Time `json:"answered,omitzero"`
	Stats     *RTPStats `json:"stats,omitempty"`
	// AudioWarning says what is wrong with the call's sound devices (no microphone: silence
	// is sent; no speaker: the sound is dropped); "" when they work as chosen.
	AudioWarning string `json:"audio_warning,omitempty"`
	// Reconnecting: the call's connection died and it is being moved to a new one.
	Reconnecting bool `json:"reconnecting,omitempty"`
}
