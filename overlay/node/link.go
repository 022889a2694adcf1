// Package node is the RELOAD message transport (RFC 6940 §6.2-§6.3): it receives messages
// from links, forwards them by the topology's routing decision, matches transactions,
// retransmits end to end, and dispatches local requests to handlers by method.
//
// This file is the seam between the node and the link layer (overlay/link for real
// DTLS/TLS/ICE links, overlay/memnet for the in-process simulation).
package node

import (
	"context"
	"net"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Link is one authenticated connection to a neighbouring peer that carries RELOAD messages
// and fragments (framed by the link layer, RFC 6940 §6.6; fragments are reassembled only by
// the final destination's node, §6.7).
type Link interface {
	// RemoteNodeID is the Node-ID the peer proved by its certificate.
	RemoteNodeID() wire.NodeID
	// Send sends one encoded RELOAD message. It returns an error if the link is dead.
	Send(ctx context.Context, msg []byte) error
	// Done is closed when the link has died (keepalive failure, close by either side).
	Done() <-chan struct{}
	// Close closes the link.
	Close() error
}

// Receiver is what a link layer delivers received messages and fragments to; *Node
// implements it.
// Receive must not block for long; msg is owned by the receiver.
type Receiver interface {
	Receive(from Link, msg []byte)
}

// Connector is the link layer as the node uses it.
type Connector interface {
	// Bootstrap connects directly, without ICE, to a configured bootstrap address
	// (RFC 6940 §11.4) and returns the authenticated link.
	Bootstrap(ctx context.Context, addr string) (Link, error)
	// NewAttachment starts ICE for one Attach (app == 0) or AppAttach (app != 0) exchange
	// with the peer remote (RFC 6940 §6.5.1, §6.5.2). controlling is true on the side
	// that sent the request.
	NewAttachment(ctx context.Context, remote wire.NodeID, app uint16, controlling bool) (Attachment, error)
}

// Attachment is one ICE exchange in progress.
type Attachment interface {
	// Local returns this side's ufrag, password, role and gathered candidates.
	Local() IceParams
	// Connect runs ICE checks against the remote parameters, then DTLS. The side that sent
	// the Attach request is the DTLS server (RFC 6940 §6.5.1.13): dtlsServer says which.
	// For an Attach (app == 0) the result is a Link already handed to the Receiver; for an
	// AppAttach it is the application's connection.
	ConnectLink(ctx context.Context, remote IceParams, dtlsServer bool) (Link, error)
	ConnectApp(ctx context.Context, remote IceParams, dtlsServer bool) (net.Conn, error)
	// Close abandons the attachment (and its ICE agent) if no connection was made.
	Close() error
}

// IceParams are the ICE parts of AttachReqAns / AppAttachReq (RFC 6940 §6.5.1.1).
type IceParams struct {
	Ufrag      string
	Password   string
	Role       string // "active" or "passive"
	Candidates []wire.IceCandidate
}
