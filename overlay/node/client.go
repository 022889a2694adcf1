package node

// ClientTopology is implemented by a Topology that can make its node a RELOAD client
// (RFC 6940 §4.2): a node with a Node-ID and certificate but no routing or storage
// responsibilities. overlay/chord implements it (chord.Settings.Client).
type ClientTopology interface {
	// IsClient reports whether the node is a client.
	IsClient() bool
}

// IsClient reports whether this node is a RELOAD client (RFC 6940 §4.2): it originates
// requests and answers those addressed to it, and forwards nothing for other nodes.
func (n *Node) IsClient() bool {
	ct, ok := n.topo.(ClientTopology)
	return ok && ct.IsClient()
}
