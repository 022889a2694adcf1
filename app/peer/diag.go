package peer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chordphone/chordphone/app/version"
	"github.com/chordphone/chordphone/overlay/diag"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/wire"
)

// serveDiagnostics answers RFC 7851 Inspect and PathTrack for this peer (the policy of who
// sees what is diag.Policy: host facts only to this node itself).
func (p *Peer) serveDiagnostics() {
	diag.Serve(p.node, diag.Sources{
		Version:          "chordphone " + version.Version,
		RoutingTableSize: p.routingTableSize,
		StoredBytes:      func() int64 { return int64(p.storage.Engine().Stats().Bytes) },
		Instances:        p.storage.Engine().KindCounts,
		NextHop:          p.chord.NextHop,
		Responsible:      p.chord.Responsible,
	})
}

// routingTableSize counts the distinct peers in the Chord routing table: predecessors,
// successors and fingers (RFC 7851 §5.3 ROUTING_TABLE_SIZE).
func (p *Peer) routingTableSize() int {
	st := p.chord.Status()
	var ids []wire.NodeID
	for _, l := range [][]wire.NodeID{st.Predecessors, st.Successors, st.Fingers} {
		for _, id := range l {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return len(ids)
}

// ResolveNode turns a diagnostics target into a Node-ID: a Node-ID in hex, or a user name
// whose registration (RFC 7904) names the device's Node-ID (the first device when the
// user has several).
func (p *Peer) ResolveNode(ctx context.Context, target string) (wire.NodeID, error) {
	if id, err := wire.ParseNodeID(target); err == nil {
		return id, nil
	}
	regs, err := p.Lookup(ctx, target)
	if err != nil {
		return wire.NodeID{}, fmt.Errorf("%q is neither a Node-ID nor a registered user: %w", target, err)
	}
	return regs[0].Target(), nil
}

// Inspect asks the node for its diagnostics (RFC 7851 §4.1).
func (p *Peer) Inspect(ctx context.Context, id wire.NodeID) (*diag.Hop, error) {
	return diag.Inspect(ctx, p.node, id, diag.AllKinds...)
}

// PathTrack traces the overlay path to the node (RFC 7851 §4.2).
func (p *Peer) PathTrack(ctx context.Context, id wire.NodeID) ([]diag.Hop, error) {
	return diag.PathTrack(ctx, p.node, id, diag.AllKinds...)
}

// LinkInfo is one link as the ring picture shows it.
type LinkInfo struct {
	// Type is the overlay link protocol (RFC 6940 §6.6): "DTLS" (over ICE), "DTLS (no ICE)"
	// or "TLS".
	Type string `json:"type"`
	// RTT is the link's smoothed round-trip time, 0 before the first sample.
	RTT time.Duration `json:"rtt_ns"`
}

var linkTypeNames = map[wire.OverlayLinkType]string{
	wire.LinkDTLSUDPSR: "DTLS", wire.LinkDTLSUDPSRNoICE: "DTLS (no ICE)", wire.LinkTLSTCPFHNoICE: "TLS",
}

// linkInfo describes the links to the Node-IDs of the lists.
func (p *Peer) linkInfo(lists ...[]string) map[string]LinkInfo {
	out := map[string]LinkInfo{}
	for _, l := range lists {
		for _, s := range l {
			id, err := wire.ParseNodeID(s)
			if err != nil {
				continue
			}
			if ln, ok := p.node.LinkTo(id).(*link.Link); ok {
				out[s] = LinkInfo{Type: linkTypeNames[ln.Protocol()], RTT: ln.Stats().SRTT}
			}
		}
	}
	return out
}
