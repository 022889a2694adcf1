package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/chordphone/chordphone/overlay/wire"
)

// ErrOnlySelf is returned by Bootstrap when every bootstrap address leads to this node.
var ErrOnlySelf = errors.New("node: bootstrap: no bootstrap node other than this one")

// Bootstrap connects directly to bootstrap addresses (RFC 6940 §11.4) and returns the
// links that could be made; it fails only if none could.
func (n *Node) Bootstrap(ctx context.Context, addrs []string) ([]Link, error) {
	if n.s.Connector == nil {
		return nil, errors.New("node: bootstrap: no Connector")
	}
	var links []Link
	var errs []error
	for _, a := range addrs {
		l, err := n.s.Connector.Bootstrap(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap %s: %w", a, err))
			continue
		}
		if l.RemoteNodeID() == n.id {
			l.Close() // our own address in the bootstrap list
			continue
		}
		n.addLink(l, false)
		links = append(links, l)
	}
	if len(links) == 0 {
		if len(errs) == 0 {
			return nil, ErrOnlySelf
		}
		return nil, fmt.Errorf("node: no bootstrap node reachable: %w", errors.Join(errs...))
	}
	return links, nil
}

func iceToWire(p IceParams) (ufrag, pwd, role []byte, cands []wire.IceCandidate) {
	return []byte(p.Ufrag), []byte(p.Password), []byte(p.Role), p.Candidates
}

// Attach forms a link with the node that dests leads to (RFC 6940 §6.5.1): it sends an
// AttachReq with this side's ICE parameters and, on the answer, runs ICE and DTLS as the
// DTLS server (§6.5.1.13). target is the expected peer (zero when attaching to a
// Resource-ID). The link is entered into the link table.
func (n *Node) Attach(ctx context.Context, dests []wire.Destination, target wire.NodeID, sendUpdate bool) (Link, error) {
	if n.s.Connector == nil {
		return nil, errors.New("node: attach: no Connector")
	}
	att, err := n.s.Connector.NewAttachment(ctx, target, 0, true)
	if err != nil {
		return nil, fmt.Errorf("node: attach: %w", err)
	}
	u, p, r, c := iceToWire(att.Local())
	var ans wire.AttachReqAns
	actx, out, done := n.startOutAttach(ctx, target)
	resp, err := n.Call(actx, dests, wire.CodeAttachReq, &wire.AttachReqAns{Ufrag: u, Password: p, Role: r, Candidates: c, SendUpdate: sendUpdate}, &ans)
	n.mu.Lock()
	yielded := out != nil && out.yielded
	if out != nil && err == nil {
		out.answered = true
	}
	n.mu.Unlock()
	if yielded || !target.IsZero() && IsCode(err, wire.ErrInProgress) {
		// RFC 6940 §6.5.1.2: the target's own Attach makes the link (we yielded to it,
		// or it did not yield to us): wait for that link; the target is not gone.
		done()
		att.Close()
		if yielded {
			err = errYielded
		}
		return n.awaitLink(ctx, target, err)
	}
	defer done()
	if err != nil {
		att.Close()
		return nil, fmt.Errorf("node: attach: %w", err)
	}
	if !target.IsZero() && resp.From != target {
		att.Close()
		return nil, fmt.Errorf("node: attach: answered by %s, not %s", resp.From, target)
	}
	cctx, cancel := context.WithTimeout(ctx, n.s.AttachTimeout)
	defer cancel()
	l, err := att.ConnectLink(cctx, IceParams{Ufrag: string(ans.Ufrag), Password: string(ans.Password), Role: string(ans.Role), Candidates: ans.Candidates}, true)
	if err != nil {
		att.Close()
		return nil, fmt.Errorf("node: attach to %s: %w", resp.From, err)
	}
	if l.RemoteNodeID() != resp.From {
		// RFC 6940 §6.5.1.11, §6.5.1.13: the certificate must be that of the node that
		// answered (an Attach to a Resource-ID expected no particular one).
		l.Close()
		return nil, fmt.Errorf("node: attach: link to %s, but %s answered", l.RemoteNodeID(), resp.From)
	}
	n.addLink(l, false)
	return l, nil
}

// serveAttach answers an AttachReq with local ICE parameters and then connects as the
// DTLS client (RFC 6940 §6.5.1, §6.5.1.13).
func (n *Node) serveAttach(ctx context.Context, req *Request) (wire.Body, error) {
	if n.s.Connector == nil {
		return nil, Errorf(wire.ErrForbidden, "attach not possible: no link layer")
	}
	var a wire.AttachReqAns
	if err := a.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	if err := n.glare(req.Origin); err != nil {
		return nil, err
	}
	if err := n.reserveAttach(req.Origin); err != nil {
		return nil, err
	}
	att, err := n.s.Connector.NewAttachment(n.ctx, req.Origin, 0, false)
	if err != nil {
		n.releaseAttach(req.Origin)
		return nil, Errorf(wire.ErrInvalidMessage, "attach: %v", err)
	}
	remote := IceParams{Ufrag: string(a.Ufrag), Password: string(a.Password), Role: string(a.Role), Candidates: a.Candidates}
	u, p, r, c := iceToWire(att.Local())
	origin, sendUpdate := req.Origin, a.SendUpdate
	if !n.Go(func(ctx context.Context) {
		defer n.releaseAttach(origin)
		cctx, cancel := context.WithTimeout(ctx, n.s.AttachTimeout)
		defer cancel()
		l, err := att.ConnectLink(cctx, remote, false)
		if err != nil {
			att.Close()
			n.log.Debug("attach answer: connect", "peer", origin, "err", err)
			return
		}
		n.addLink(l, sendUpdate)
	}) {
		att.Close()
		n.releaseAttach(origin)
		return nil, ErrClosed
	}
	return &wire.AttachReqAns{Ufrag: u, Password: p, Role: r, Candidates: c}, nil
}

// AppAttach opens an application connection to node dest for application app, e.g. 5060
// for SIP (RFC 6940 §6.5.2): AppAttachReq through the overlay, then ICE and DTLS with
// this side as DTLS server.
func (n *Node) AppAttach(ctx context.Context, dest wire.NodeID, app uint16) (net.Conn, error) {
	return n.AppAttachVia(ctx, []wire.Destination{wire.NodeDestination(dest)}, dest, app)
}

// AppAttachVia is AppAttach with an explicit destination list (e.g. a route from a
// SIP-REGISTRATION, RFC 7904 §3.2), whose last entry is dest.
func (n *Node) AppAttachVia(ctx context.Context, dests []wire.Destination, dest wire.NodeID, app uint16) (net.Conn, error) {
	if n.s.Connector == nil {
		return nil, errors.New("node: appattach: no Connector")
	}
	att, err := n.s.Connector.NewAttachment(ctx, dest, app, true)
	if err != nil {
		return nil, fmt.Errorf("node: appattach: %w", err)
	}
	u, p, r, c := iceToWire(att.Local())
	var ans wire.AppAttachAns
	resp, err := n.Call(ctx, dests, wire.CodeAppAttachReq, &wire.AppAttachReq{Ufrag: u, Password: p, Application: app, Role: r, Candidates: c}, &ans)
	if err != nil {
		att.Close()
		return nil, fmt.Errorf("node: appattach to %s: %w", dest, err)
	}
	if resp.From != dest {
		att.Close()
		return nil, fmt.Errorf("node: appattach: answered by %s, not %s", resp.From, dest)
	}
	if ans.Application != app {
		att.Close()
		return nil, fmt.Errorf("node: appattach: answer for application %d, not %d", ans.Application, app)
	}
	cctx, cancel := context.WithTimeout(ctx, n.s.AttachTimeout)
	defer cancel()
	conn, err := att.ConnectApp(cctx, IceParams{Ufrag: string(ans.Ufrag), Password: string(ans.Password), Role: string(ans.Role), Candidates: ans.Candidates}, true)
	if err != nil {
		att.Close()
		return nil, fmt.Errorf("node: appattach to %s: %w", dest, err)
	}
	return conn, nil
}

// serveAppAttach answers an AppAttachReq for a registered application (else
// Error_Not_Found) and hands the connection to its AppHandler (RFC 6940 §6.5.2).
func (n *Node) serveAppAttach(ctx context.Context, req *Request) (wire.Body, error) {
	var a wire.AppAttachReq
	if err := a.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	n.mu.Lock()
	h := n.apps[a.Application]
	n.mu.Unlock()
	if h == nil {
		return nil, Errorf(wire.ErrNotFound, "no application %d on this node", a.Application)
	}
	if n.s.Connector == nil {
		return nil, Errorf(wire.ErrForbidden, "appattach not possible: no link layer")
	}
	if err := n.reserveAttach(req.Origin); err != nil {
		return nil, err
	}
	att, err := n.s.Connector.NewAttachment(n.ctx, req.Origin, a.Application, false)
	if err != nil {
		n.releaseAttach(req.Origin)
		return nil, Errorf(wire.ErrInvalidMessage, "appattach: %v", err)
	}
	remote := IceParams{Ufrag: string(a.Ufrag), Password: string(a.Password), Role: string(a.Role), Candidates: a.Candidates}
	u, p, r, c := iceToWire(att.Local())
	origin, app := req.Origin, a.Application
	if !n.Go(func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(ctx, n.s.AttachTimeout)
		conn, err := att.ConnectApp(cctx, remote, false)
		cancel()
		n.releaseAttach(origin)
		if err != nil {
			att.Close()
			n.log.Debug("appattach answer: connect", "peer", origin, "err", err)
			return
		}
		h(conn, origin)
	}) {
		att.Close()
		n.releaseAttach(origin)
		return nil, ErrClosed
	}
	return &wire.AppAttachAns{Ufrag: u, Password: p, Application: app, Role: r, Candidates: c}, nil
}
