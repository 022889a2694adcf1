package diag

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// AllKinds are the kinds this package knows how to report.
var AllKinds = append(append([]Kind{}, OverlayKinds...), HostKinds...)

// Lifetime is how long a request stays answerable (its expiration, RFC 7851 §5.1).
const Lifetime = 30 * time.Second

func newRequest(kinds []Kind) Request {
	now := time.Now()
	return Request{Expiration: now.Add(Lifetime), Initiated: now, Flags: Flags(kinds...)}
}

// Hop is a node's answer: one node on the path PathTrack found, or the node Inspect asked.
type Hop struct {
	Node wire.NodeID
	RTT  time.Duration // round trip from the initiator to this node (along the path)
	Hops int           // links the answer crossed
	Answer
}

// Inspect asks target for the kinds (RFC 7851 §4.1) and returns its answer.
func Inspect(ctx context.Context, n *node.Node, target wire.NodeID, kinds ...Kind) (*Hop, error) {
	req := newRequest(kinds)
	h := &Hop{Node: target}
	start := time.Now()
	r, err := n.Call(ctx, []wire.Destination{wire.NodeDestination(target)}, CodeInspectReq, &req, &h.Answer)
	if err != nil {
		return nil, fmt.Errorf("diag: inspect %v: %w", target, err)
	}
	h.RTT, h.Hops = time.Since(start), r.Hops
	return h, nil
}

// MaxHops bounds a PathTrack walk.
const MaxHops = 32

// PathTrack walks the overlay path from n towards target (RFC 7851 §4.2): it asks each node
// on the path, reached by source routing along the hops found so far, for its next hop and
// its diagnostics, until a node says the path ends with it.
func PathTrack(ctx context.Context, n *node.Node, target wire.NodeID, kinds ...Kind) ([]Hop, error) {
	var hops []Hop
	var route []wire.Destination
	seen := map[wire.NodeID]bool{n.ID(): true}
	cur := n.ID()
	for len(hops) < MaxHops {
		req := PathTrackReq{Destination: target, Request: newRequest(kinds)}
		var a PathTrackAns
		dests := route
		if len(dests) == 0 {
			dests = []wire.Destination{wire.NodeDestination(cur)}
		}
		start := time.Now()
		r, err := n.Call(ctx, dests, CodePathTrackReq, &req, &a)
		if err != nil {
			return hops, fmt.Errorf("diag: path track at %v: %w", cur, err)
		}
		if cur != n.ID() {
			hops = append(hops, Hop{Node: cur, RTT: time.Since(start), Hops: r.Hops, Answer: a.Response})
		}
		if a.NextHop == cur {
			return hops, nil
		}
		if seen[a.NextHop] {
			return hops, fmt.Errorf("diag: path track: %v routes back to %v (a loop)", cur, a.NextHop)
		}
		seen[a.NextHop] = true
		cur = a.NextHop
		route = append(route, wire.NodeDestination(cur))
	}
	return hops, fmt.Errorf("diag: path track: more than %d hops", MaxHops)
}

// Print writes the answer's kinds as "NAME: value" lines.
func (a *Answer) Print(w io.Writer) {
	for _, in := range a.Infos {
		fmt.Fprintf(w, "  %-20s %s\n", in.Kind.String()+":", Format(in))
	}
}

// Format renders one DiagnosticInfo's value (RFC 7851 §5.3 encodings).
func Format(in Info) string {
	c := in.Contents
	switch in.Kind {
	case SoftwareVersion:
		return fmt.Sprintf("%q", c)
	case RoutingTableSize, ProcessPower, Bandwidth, MemoryFootprint, EWMABytesSent, EWMABytesRcvd:
		if len(c) == 4 {
			v := binary.BigEndian.Uint32(c)
			switch in.Kind {
			case MemoryFootprint:
				return fmt.Sprintf("%d KiB", v)
			case EWMABytesSent, EWMABytesRcvd:
				return fmt.Sprintf("%d B/s", v)
			}
			return fmt.Sprint(v)
		}
	case MachineUptime, AppUptime:
		if len(c) == 8 {
			return (time.Duration(binary.BigEndian.Uint64(c)) * time.Second).String()
		}
	case MessagesSentRcvd, InstancesStored:
		if len(c) == 0 {
			return "none"
		}
	}
	switch in.Kind {
	case MessagesSentRcvd:
		if len(c)%18 == 0 {
			var parts []string
			for ; len(c) > 0; c = c[18:] {
				parts = append(parts, fmt.Sprintf("%s %d/%d", codeName(wire.MessageCode(binary.BigEndian.Uint16(c))),
					binary.BigEndian.Uint64(c[2:]), binary.BigEndian.Uint64(c[10:])))
			}
			return "(sent/received) " + strings.Join(parts, ", ")
		}
	case InstancesStored:
		if len(c)%12 == 0 {
			var parts []string
			for ; len(c) > 0; c = c[12:] {
				parts = append(parts, fmt.Sprintf("kind %d: %d", binary.BigEndian.Uint32(c), binary.BigEndian.Uint64(c[4:])))
			}
			return strings.Join(parts, ", ")
		}
	case DatasizeStored:
		if len(c) == 8 {
			return fmt.Sprintf("%d bytes", binary.BigEndian.Uint64(c))
		}
	}
	return fmt.Sprintf("%x", c)
}

// codeName names a message code, the diagnostics methods' too (RFC 7851 §9.1).
func codeName(c wire.MessageCode) string {
	switch c {
	case CodeInspectReq:
		return "inspect_req"
	case CodeInspectAns:
		return "inspect_ans"
	case CodePathTrackReq:
		return "path_track_req"
	case CodePathTrackAns:
		return "path_track_ans"
	}
	return c.String()
}
