package node

import (
	"github.com/chordphone/chordphone/overlay/wire"
)

// ResponderChecker is an optional Topology extension for the second answer check of RFC
// 6940 §6.3.4: PlausibleResponder reports whether responder is at least as close to
// target as every node of this node's Neighbor Table.
type ResponderChecker interface {
	PlausibleResponder(target, responder wire.NodeID) bool
}

// hopError reports whether an answer is an ErrorResponse that a forwarding peer, not
// the destination, sends (RFC 6940 §6.3.2, §6.3.2.3, §6.6): those may come from any
// node on the path. A node this request was source-routed through (onRoute) may also
// refuse to forward it with Error_Forbidden (a client, §4.2).
func hopError(m *wire.Message, onRoute bool) bool {
	if m.Code != wire.CodeError {
		return false
	}
	var er wire.ErrorResponse
	if er.UnmarshalBinary(m.Body) != nil {
		return false
	}
	switch er.Code {
	case wire.ErrTTLExceeded, wire.ErrMessageTooLarge, wire.ErrUnsupportedForwardingOption:
		return true
	case wire.ErrForbidden:
		return onRoute
	}
	return false
}

// checkAnswer verifies an answer that reached this node from neighbour fromID and
// returns its responder: the signer (RFC 6940 §6.3.4), not the via list, which nobody is
// required to fill on answers. Under NoSecurity, where nothing is signed, the responder
// is the first via-list entry, else fromID. An answer is dropped when its signature
// fails, when it answers no pending request, or when it fails the two checks of §6.3.4:
// an answer to a Node-ID comes from that node (unless the wildcard), an answer to a
// Resource-ID from a node at least as close to it as this node's neighbours.
func (n *Node) checkAnswer(fromID wire.NodeID, m *wire.Message) (wire.NodeID, bool) {
	claimed := fromID
	if v := m.Header.ViaList; len(v) > 0 && v[0].Type == wire.DestinationNode {
		claimed = v[0].Node
	}
	if fromID == n.id {
		return claimed, true // answered by this node itself
	}
	// An answer nobody waits for (a late copy of one already taken) is dropped before its
	// signature is checked: on a busy node those are many, and each check is costly.
	n.mu.Lock()
	var target wire.Destination
	var route []wire.NodeID
	t := n.pending[m.Header.TransactionID]
	if t != nil {
		target, route = t.target, t.route
	}
	n.mu.Unlock()
	if t == nil {
		n.drop("answer without transaction", nil)
		return wire.NodeID{}, false
	}
	signer, err := n.s.Security.Verify(m)
	if err != nil {
		n.drop("answer signature", err)
		return wire.NodeID{}, false
	}
	if signer == nil {
		return claimed, true // NoSecurity: nothing to bind the responder to
	}
	responder := pickSigner(signer, target, claimed)
	if hopError(m, contains(route, responder)) {
		return responder, true
	}
	switch target.Type {
	case wire.DestinationNode:
		if target.Node != WildcardNodeID && responder != target.Node {
			n.drop("answer not signed by the destination node", nil)
			return wire.NodeID{}, false
		}
	case wire.DestinationResource:
		if rc, ok := n.topo.(ResponderChecker); ok && !rc.PlausibleResponder(target.Resource.NodeID(), responder) {
			n.drop("answer from a node farther than a neighbour", nil)
			return wire.NodeID{}, false
		}
	}
	return responder, true
}

// pickSigner chooses the responder among the Node-IDs of the signer's certificate: the
// only one, else the destination node, else the one the via list names.
func pickSigner(signer []wire.NodeID, target wire.Destination, claimed wire.NodeID) wire.NodeID {
	if len(signer) == 1 {
		return signer[0]
	}
	if target.Type == wire.DestinationNode && contains(signer, target.Node) {
		return target.Node
	}
	if contains(signer, claimed) {
		return claimed
	}
	return signer[0]
}
