package phone

import "time"

// EventKind names an event; the names are the headless interface's (README "Headless interface").
type EventKind string

// Event kinds.
const (
	EventStarted     EventKind = "started"
	EventJoined      EventKind = "joined"
	EventRegistered  EventKind = "registered"
	EventCalling     EventKind = "calling"
	EventRinging     EventKind = "ringing"
	EventIncoming    EventKind = "incoming"
	EventAnswered    EventKind = "answered"
	EventHeld        EventKind = "held"
	EventReconnected EventKind = "reconnected" // a call moved to a new connection (address change)
	EventResumed     EventKind = "resumed"
	EventHangup      EventKind = "hangup"
	EventDTMF        EventKind = "dtmf"
	EventStatus      EventKind = "status"
	EventError       EventKind = "error"
	EventWarning     EventKind = "warning" // trouble the phone works around (e.g. no sound device)
	EventLeft        EventKind = "left"
	EventLookup      EventKind = "lookup"
	EventMessage     EventKind = "message"   // a text message arrived (messages.go)
	EventSent        EventKind = "sent"      // a text message is on its way: its id
	EventDelivered   EventKind = "delivered" // the recipient's phone has the message
)

// Event is one thing that happened to the phone. The headless mode writes it as one JSON line;
// the GUI turns it into view updates. Fields not relevant to a kind are empty.
type Event struct {
	Kind    EventKind `json:"event"`
	Time    time.Time `json:"time"`
	Version string    `json:"version,omitempty"`
	NodeID  string    `json:"node_id,omitempty"`
	First   *bool     `json:"first,omitempty"`
	Role    string    `json:"role,omitempty"` // joined: "peer" or "client"
	AoR     string    `json:"aor,omitempty"`
	CallID  string    `json:"call_id,omitempty"`
	Peer    string    `json:"peer,omitempty"`
	From    string    `json:"from,omitempty"`
	SetupMs *int64    `json:"setup_ms,omitempty"`
	// DownMs: reconnected, how long the call's connection was down (from noticing it).
	DownMs *int64    `json:"down_ms,omitempty"`
	Reason string    `json:"reason,omitempty"`
	RTP    *RTPStats `json:"rtp,omitempty"`
	Digits string    `json:"digits,omitempty"`
	// ID is a text message's identity (message, sent, delivered; message_failed errors).
	ID   string `json:"id,omitempty"`
	Text string `json:"text,omitempty"`
	// File and DurationMs: a voice message's WAV file in the profile and its length.
	File       string   `json:"file,omitempty"`
	DurationMs *int64   `json:"duration_ms,omitempty"`
	Presence   string   `json:"presence,omitempty"` // presence: online, offline, in a call
	Devices    []string `json:"devices,omitempty"`
	// Code is a stable machine-readable name of an error or warning (snake_case, e.g.
	// "no_capture_device"); Message is the sentence a person reads.
	Code    string  `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`
	Status  *Status `json:"-"`
}

// RTPStats summarises a call's media (RTP/RTCP) statistics.
type RTPStats struct {
	Sent        uint64  `json:"sent"`
	Received    uint64  `json:"received"`
	Lost        int64   `json:"lost"`
	JitterMs    float64 `json:"jitter_ms"`
	RTTMs       float64 `json:"rtt_ms"`
	Codec       string  `json:"codec,omitempty"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	Relayed     bool    `json:"relayed"`
}

// Warn reports the trouble of a part that runs beside the phone (the SIP adapter,
// app/sipadapter) as a warning event: code is snake_case, message a sentence a person can
// act on.
func (p *Phone) Warn(code, message string) {
	p.emit(Event{Kind: EventWarning, Code: code, Message: message})
}
