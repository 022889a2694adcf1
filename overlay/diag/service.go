package diag

import (
	"context"
	"encoding/binary"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ErrMessageExpired is Error_Message_Expired (RFC 7851 §9.3): the answer to a request whose
// expiration time has passed.
const ErrMessageExpired wire.ErrorCode = 0x17

// Sources are what the service reports; nil functions leave their kinds out.
type Sources struct {
	// Version is SOFTWARE_VERSION.
	Version string
	// RoutingTableSize is ROUTING_TABLE_SIZE: the peers in the routing table.
	RoutingTableSize func() int
	// StoredBytes is DATASIZE_STORED: the bytes stored for the overlay.
	StoredBytes func() int64
	// Instances is INSTANCES_STORED: the values stored, by Kind-ID.
	Instances func() map[wire.KindID]int
	// NextHop and Responsible route PathTrack: the peer a message for a Node-ID goes to
	// next, and whether this node is where it ends (RFC 6940 §6.1).
	NextHop     func(wire.NodeID) (wire.NodeID, bool)
	Responsible func(wire.NodeID) bool
	// Privileged reports whether a request signed by these Node-IDs may see the host kinds
	// (see Policy); nil: only this node itself.
	Privileged func(signer []wire.NodeID) bool
}

// Policy is the access control of RFC 7851 §7 ("the diagnostic information ... may be
// used to attack ... it is RECOMMENDED that a node only return it to authorized nodes"):
//   - every member of the overlay (a request that passed the node's signature check,
//     RFC 6940 §13) may see how the node serves the overlay: the Overlay kinds;
//   - only privileged requesters (this node itself, and whom Sources.Privileged names)
//     see the facts about the machine it runs on: the Host kinds.
//
// Kinds this node does not measure (STATUS_INFO, PROCESS_POWER, BANDWIDTH, UNDERLAY_HOP,
// BATTERY_STATUS) are left out of every answer, as §5.2
// allows.
var (
	OverlayKinds = []Kind{RoutingTableSize, SoftwareVersion, AppUptime, DatasizeStored, InstancesStored, MessagesSentRcvd, EWMABytesSent, EWMABytesRcvd}
	HostKinds    = []Kind{MachineUptime, MemoryFootprint}
)

// Service answers Inspect and PathTrack for one node.
type Service struct {
	n    *node.Node
	src  Sources
	rate ewma
}

// Serve registers the Inspect and PathTrack handlers on n.
func Serve(n *node.Node, src Sources) *Service {
	s := &Service{n: n, src: src}
	n.Handle(CodeInspectReq, node.HandlerFunc(s.serveInspect))
	n.Handle(CodePathTrackReq, node.HandlerFunc(s.servePathTrack))
	n.Go(func(ctx context.Context) { s.rate.run(ctx, n) }) // owner: the node; ends when it closes
	return s
}

func (s *Service) serveInspect(_ context.Context, req *node.Request) (wire.Body, error) {
	var r Request
	if err := r.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, node.Errorf(wire.ErrInvalidMessage, "%v", err)
	}
	return s.answer(req, &r)
}

func (s *Service) servePathTrack(_ context.Context, req *node.Request) (wire.Body, error) {
	var r PathTrackReq
	if err := r.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, node.Errorf(wire.ErrInvalidMessage, "%v", err)
	}
	next := s.n.ID() // the path ends here (RFC 7851 §4.2: the responsible node answers itself)
	if r.Destination != s.n.ID() && (s.src.Responsible == nil || !s.src.Responsible(r.Destination)) {
		hop, ok := s.nextHop(r.Destination)
		if !ok {
			return nil, node.Errorf(wire.ErrNotFound, "no route towards %v", r.Destination)
		}
		next = hop
	}
	a, err := s.answer(req, &r.Request)
	if err != nil {
		return nil, err
	}
	return &PathTrackAns{NextHop: next, Response: *a}, nil
}

func (s *Service) nextHop(id wire.NodeID) (wire.NodeID, bool) {
	if s.n.Connected(id) {
		return id, true
	}
	if s.src.NextHop == nil {
		return wire.NodeID{}, false
	}
	return s.src.NextHop(id)
}

// answer builds the DiagnosticsResponse (RFC 7851 §5.2) for r as the policy allows.
func (s *Service) answer(req *node.Request, r *Request) (*Answer, error) {
	now := time.Now()
	if !r.Expiration.IsZero() && now.After(r.Expiration) {
		return nil, node.Errorf(ErrMessageExpired, "diagnostics request expired at %v", r.Expiration.Format(time.RFC3339))
	}
	a := &Answer{Expiration: r.Expiration, Initiated: r.Initiated, Received: now, HopCounter: uint8(min(req.Hops, 255))}
	allowed := OverlayKinds
	if s.privileged(req) {
		allowed = append(append([]Kind{}, OverlayKinds...), HostKinds...)
	}
	for _, k := range allowed {
		if r.Flags&k.Flag() == 0 {
			continue
		}
		if v, ok := s.value(k); ok {
			a.Infos = append(a.Infos, Info{Kind: k, Contents: v})
		}
	}
	return a, nil
}

func (s *Service) privileged(req *node.Request) bool {
	if req.SignedBy(s.n.ID()) {
		return true
	}
	return s.src.Privileged != nil && req.Signer != nil && s.src.Privileged(req.Signer)
}

// value encodes kind k as RFC 7851 §5.3 defines it.
func (s *Service) value(k Kind) ([]byte, bool) {
	switch k {
	case RoutingTableSize:
		if s.src.RoutingTableSize != nil {
			return binary.BigEndian.AppendUint32(nil, uint32(s.src.RoutingTableSize())), true
		}
	case SoftwareVersion:
		return []byte(s.src.Version), s.src.Version != ""
	case AppUptime:
		return binary.BigEndian.AppendUint64(nil, uint64(s.n.Uptime()/time.Second)), true
	case MachineUptime:
		if up, ok := machineUptime(); ok {
			return binary.BigEndian.AppendUint64(nil, uint64(up/time.Second)), true
		}
	case MemoryFootprint:
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return binary.BigEndian.AppendUint32(nil, uint32(m.Sys/1024)), true
	case EWMABytesSent, EWMABytesRcvd:
		sent, rcvd := s.rate.rates()
		if k == EWMABytesRcvd {
			sent = rcvd
		}
		return binary.BigEndian.AppendUint32(nil, sent), true
	case MessagesSentRcvd:
		return encodeMessages(s.n.MessageCounts()), true
	case InstancesStored:
		if s.src.Instances != nil {
			return encodeInstances(s.src.Instances()), true
		}
	case DatasizeStored:
		if s.src.StoredBytes != nil {
			return binary.BigEndian.AppendUint64(nil, uint64(max(s.src.StoredBytes(), 0))), true
		}
	}
	return nil, false
}

// machineUptime reads /proc/uptime (Linux); elsewhere the kind is left out.
func machineUptime() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	sec, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(sec * float64(time.Second)), true
}

// encodeInstances is INSTANCES_STORED: {KindId kind; uint64 instances} per kind, in Kind-ID
// order (RFC 7851 §5.3).
func encodeInstances(m map[wire.KindID]int) []byte {
	var b []byte
	for _, id := range slices.Sorted(maps.Keys(m)) {
		b = binary.BigEndian.AppendUint32(b, uint32(id))
		b = binary.BigEndian.AppendUint64(b, uint64(m[id]))
	}
	return b
}

// encodeMessages is MESSAGES_SENT_RCVD: {uint16 message_code; uint64 sent; uint64 received}
// per code, in code order (RFC 7851 §5.3).
func encodeMessages(m map[wire.MessageCode]node.MessageCount) []byte {
	var b []byte
	for _, c := range slices.Sorted(maps.Keys(m)) {
		b = binary.BigEndian.AppendUint16(b, uint16(c))
		b = binary.BigEndian.AppendUint64(b, m[c].Sent)
		b = binary.BigEndian.AppendUint64(b, m[c].Received)
	}
	return b
}
