package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Receive takes one message or fragment from a link (RFC 6940 §6.1, §6.7). It implements Receiver:
// it never blocks on the network; handlers run in node-owned goroutines.
func (n *Node) Receive(from Link, msg []byte) {
	n.mu.Lock()
	closed := n.closed
	// A new link to a peer already linked is entered too (and, being the newest, used):
	// the peer came back from another address, and the old link may lead nowhere now.
	// A stalled link stays out until it says it recovered (stall).
	_, stalled := n.stalled[from]
	known := stalled || slices.Contains(n.links[from.RemoteNodeID()], from)
	n.mu.Unlock()
	if closed {
		return
	}
	n.st.received.Add(1)
	n.st.bytesReceived.Add(uint64(len(msg)))
	if !known {
		n.addLink(from, false)
	}
	n.process(from, from.RemoteNodeID(), msg)
}

// codeAt returns the message code following the header (0 if absent).
func codeAt(b []byte, hl int) wire.MessageCode {
	if len(b) < hl+2 {
		return wire.CodeInvalid
	}
	return wire.MessageCode(binary.BigEndian.Uint16(b[hl:]))
}

// process handles a message received from neighbour fromID (fromID == n.id for messages
// this node originated or answered itself).
func (n *Node) process(from Link, fromID wire.NodeID, b []byte) {
	h, hl, err := wire.DecodeHeader(b)
	if err != nil {
		// RFC 6940 §6.1: malformed header: discard (no reliable way back).
		n.drop("bad header", err)
		return
	}
	// Only a message's first fragment carries its code (RFC 6940 §6.7). Fragments are
	// forwarded as they are, each as a request would be (via entry, TTL), so that every
	// fragment of a message is treated alike; only a known request is answered.
	frag := h.IsFragment()
	code := wire.CodeInvalid
	if !frag || h.FragmentOffset() == 0 {
		code = codeAt(b, hl)
	}
	isReq := code.IsRequest()
	fwd := route{req: isReq || frag, answerable: isReq}
	if h.OverlayHash != n.s.OverlayHash {
		n.drop("other overlay", nil) // RFC 6940 §6.3.2: overlay mismatch
		return
	}
	if len(b) > n.s.MaxMessageSize {
		// RFC 6940 §6.3.2, §11.1 max-message-size
		if isReq {
			n.replyError(from, fromID, h, wire.ErrMessageTooLarge, "message exceeds max-message-size")
		}
		n.drop("too large", nil)
		return
	}
	if fwd.req && h.TTL > n.s.InitialTTL {
		// RFC 6940 §6.3.2: TTL above initial-ttl.
		if isReq {
			n.replyError(from, fromID, h, wire.ErrTTLExceeded, "ttl above initial-ttl")
		}
		n.drop("ttl above initial-ttl", nil)
		return
	}
	hops := int(n.s.InitialTTL) - int(h.TTL) + 1
	if fromID == n.id {
		hops = 0
	}
	dl := h.DestinationList
	popped := false
	for {
		if len(dl) == 0 {
			n.drop("empty destination list", nil)
			return
		}
		d := dl[0]
		switch d.Type {
		case wire.DestinationNode:
			if d.Node == n.id {
				if len(dl) == 1 {
					n.local(from, fromID, h, b, hops)
					return
				}
				dl = dl[1:] // RFC 6940 §6.1.1: remove own entry, route on the next
				popped = true
				continue
			}
			if d.Node == WildcardNodeID {
				n.local(from, fromID, h, b, hops)
				return
			}
			if l := n.link(d.Node); l != nil {
				n.forward(l, fromID, h, hl, b, dl, popped, fwd)
				return
			}
			if !fwd.req {
				// Answers follow the reversed via list only (RFC 6940 §6.2.2).
				n.drop("answer: next node not connected", nil)
				return
			}
			if n.topo.Responsible(d.Node) {
				// RFC 6940 §6.1.1: a Node-ID we are responsible for but not connected to.
				n.drop("node destination not connected", nil)
				return
			}
			n.forwardTopo(fromID, h, hl, b, dl, popped, d.Node, fwd)
			return
		case wire.DestinationResource:
			if n.topo.Responsible(d.Resource.NodeID()) {
				if len(dl) != 1 {
					n.drop("resource not last destination", nil) // RFC 6940 §6.1.1
					return
				}
				n.local(from, fromID, h, b, hops)
				return
			}
			if !fwd.req {
				n.drop("answer to resource", nil)
				return
			}
			n.forwardTopo(fromID, h, hl, b, dl, popped, d.Resource.NodeID(), fwd)
			return
		default:
			// No list compression is used by this node (RFC 6940 §6.1.3): unknown opaque ids.
			if isReq {
				n.replyError(from, fromID, h, wire.ErrInvalidMessage, "unknown opaque destination")
			}
			n.drop("opaque destination", nil)
			return
		}
	}
}

func (n *Node) drop(why string, err error) {
	n.st.dropped.Add(1)
	n.mu.Lock()
	if n.dropWhy == nil {
		n.dropWhy = map[string]uint64{}
	}
	n.dropWhy[why]++
	n.mu.Unlock()
	if err != nil {
		n.log.Debug("drop message", "why", why, "err", err)
	} else {
		n.log.Debug("drop message", "why", why)
	}
}

// route says how a message is forwarded: req, as a request (via entry, TTL; a fragment
// too); answerable, a request whose errors are answered (its code is known).
type route struct{ req, answerable bool }

// local takes a message destined to this node. A fragment is reassembled here, at the final
// destination only (RFC 6940 §6.7: "Any node along the path can fragment the message, but
// only the final destination reassembles the fragments"), within the Reassembler's bounds
// (max-message-size, buffer, 15 s); the whole message is then processed as received (one
// over max-message-size, its head, is answered with Error_Message_Too_Large, §6.6).
func (n *Node) local(from Link, fromID wire.NodeID, h *wire.ForwardingHeader, b []byte, hops int) {
	if !h.IsFragment() {
		n.deliver(from, fromID, b, hops)
		return
	}
	whole, err := n.reasm.Add(b, time.Now())
	if err != nil {
		n.drop("fragment", err)
	}
	if whole != nil {
		n.process(from, fromID, whole)
	}
}

func (n *Node) forwardTopo(fromID wire.NodeID, h *wire.ForwardingHeader, hl int, b []byte, dl []wire.Destination, popped bool, target wire.NodeID, fwd route) {
	var l Link
	if next, ok := n.topo.NextHop(target); ok {
		l = n.link(next) // may be the sender itself: TTL bounds any loop
	}
	if l == nil {
		n.drop("no route", nil)
		return
	}
	n.forward(l, fromID, h, hl, b, dl, popped, fwd)
}

// forward sends b on l (RFC 6940 §6.1.2): a request gets the previous hop appended to
// its via list and its TTL checked and decremented; the destination list is the one
// left after removing this node's own entries.
func (n *Node) forward(l Link, fromID wire.NodeID, h *wire.ForwardingHeader, hl int, b []byte, dl []wire.Destination, popped bool, fwd route) {
	isReq := fwd.req
	if fromID != n.id && n.IsClient() {
		// RFC 6940 §4.2: a client has no routing responsibilities; it answers what is
		// addressed to it and forwards nothing for others.
		if fwd.answerable {
			n.replyError(nil, fromID, h, wire.ErrForbidden, "this node is a client (RFC 6940 §4.2): it routes no messages for others")
		}
		n.drop("client routes nothing for others", nil)
		return
	}
	share, flow := shareOf(fromID, dl, isReq), flowOf(fromID, h, dl, isReq)
	if fromID == n.id && !popped {
		// Originated here: send as it is.
		n.send(l, share, flow, b)
		return
	}
	if fromID != n.id {
		if isReq {
			if h.TTL == 0 {
				// RFC 6940 §6.3.2
				if fwd.answerable {
					n.replyError(nil, fromID, h, wire.ErrTTLExceeded, "ttl exceeded")
				}
				n.drop("ttl exceeded", nil)
				return
			}
			if err := h.CheckForwardingOptions(true, nil); err != nil {
				// RFC 6940 §6.3.2.3: unknown FORWARD_CRITICAL option.
				if fwd.answerable {
					n.replyError(nil, fromID, h, wire.ErrUnsupportedForwardingOption, "unsupported forwarding option")
				}
				n.drop("unsupported forwarding option", nil)
				return
			}
			h.ViaList = append(h.ViaList, wire.NodeDestination(fromID)) // RFC 6940 §6.1.2
		}
		if h.TTL > 0 {
			h.TTL--
		}
		n.st.forwarded.Add(1)
	}
	h.DestinationList = dl
	nb, err := reheader(h, b[hl:])
	if err != nil {
		n.drop("re-encode header", err)
		return
	}
	if len(nb) > n.s.MaxMessageSize {
		if fwd.answerable {
			n.replyError(nil, fromID, h, wire.ErrMessageTooLarge, "message exceeds max-message-size after via list")
		}
		n.drop("too large after via", nil)
		return
	}
	n.send(l, share, flow, nb)
}

// shareOf names the share of a link's send queue a message takes its turn in, before
// flowOf divides it (sendq.go): for a request, its previous hop, whose link
// authenticated it (this node for its own); for an answer, the node the next hop hands
// it to (RFC 6940 §6.2.2), so that the answers to a flooding neighbour wait behind
// each other, not behind others' answers.
func shareOf(fromID wire.NodeID, dl []wire.Destination, isReq bool) wire.NodeID {
	if !isReq && len(dl) > 1 && dl[1].Type == wire.DestinationNode {
		return dl[1].Node
	}
	return fromID
}

// flowOf names the end party a message travels for, to share a link's send queue
// fairly within the share of its previous hop (sendq.go): the originator of a request (the first via-list entry, RFC 6940
// §6.1.2, or the previous hop), the requester an answer goes back to (the last
// destination, §6.2.2).
func flowOf(fromID wire.NodeID, h *wire.ForwardingHeader, dl []wire.Destination, isReq bool) wire.NodeID {
	if isReq {
		if len(h.ViaList) > 0 && h.ViaList[0].Type == wire.DestinationNode {
			return h.ViaList[0].Node
		}
		return fromID
	}
	if k := len(dl); k > 0 && dl[k-1].Type == wire.DestinationNode {
		return dl[k-1].Node
	}
	return fromID
}

// reheader encodes h in front of rest (contents and security block).
func reheader(h *wire.ForwardingHeader, rest []byte) ([]byte, error) {
	h.Length = 0
	hb, err := h.MarshalBinary()
	if err != nil {
		return nil, err
	}
	total := len(hb) + len(rest)
	out := make([]byte, 0, total)
	out = append(out, hb...)
	out = append(out, rest...)
	binary.BigEndian.PutUint32(out[16:], uint32(total))
	h.Length = uint32(total)
	return out, nil
}

// replyError answers request header h, received from fromID, with an ErrorResponse
// (RFC 6940 §6.3.3.1) along the reversed via list.
func (n *Node) replyError(from Link, fromID wire.NodeID, h *wire.ForwardingHeader, code wire.ErrorCode, phrase string) {
	req := &wire.Message{Header: *h}
	m, err := wire.NewErrorMessage(req, code, phrase)
	if err != nil {
		return
	}
	n.sendAnswer(fromID, h, m)
}

// answerHeader fills the header of an answer to request header h received from fromID:
// destination list = fromID + reversed via list (RFC 6940 §6.1.2, §6.2.2); the via
// list names this node, the responder.
func (n *Node) answerHeader(fromID wire.NodeID, h *wire.ForwardingHeader, m *wire.Message) {
	m.Header.OverlayHash = n.s.OverlayHash
	m.Header.ConfigurationSequence = n.ConfigurationSequence()
	m.Header.TransactionID = h.TransactionID
	m.Header.TTL = n.s.InitialTTL
	m.Header.MaxResponseLength = 0
	m.Header.Options = responseOptions(h.Options)
	dl := wire.ReverseDestinations(h.ViaList)
	if fromID != n.id {
		dl = append([]wire.Destination{wire.NodeDestination(fromID)}, dl...)
	}
	m.Header.DestinationList = dl
	m.Header.ViaList = []wire.Destination{wire.NodeDestination(n.id)}
}

// responseOptions are the request's forwarding options flagged RESPONSE_COPY, copied
// with the three flags cleared (RFC 6940 §6.3.2.3: they MUST NOT be set in a response).
func responseOptions(req []wire.ForwardingOption) []wire.ForwardingOption {
	var out []wire.ForwardingOption
	for _, o := range req {
		if o.Flags&wire.ResponseCopy != 0 {
			o.Flags &^= wire.ResponseCopy | wire.ForwardCritical | wire.DestinationCritical
			o.Data = append([]byte(nil), o.Data...)
			out = append(out, o)
		}
	}
	return out
}

// sendAnswer signs, encodes and routes an answer to request header h. It returns the
// signed message (nil if signing or encoding failed).
func (n *Node) sendAnswer(fromID wire.NodeID, h *wire.ForwardingHeader, m *wire.Message) *wire.Message {
	m, b := n.prepareAnswer(fromID, h, m)
	if m != nil {
		n.routeAnswer(b, m)
	}
	return m
}

// prepareAnswer addresses, signs and encodes an answer to request header h (an
// ErrorResponse in its place when it does not fit); nil if signing or encoding failed.
func (n *Node) prepareAnswer(fromID wire.NodeID, h *wire.ForwardingHeader, m *wire.Message) (*wire.Message, []byte) {
	n.answerHeader(fromID, h, m)
	if err := n.s.Security.Sign(m); err != nil {
		n.log.Warn("sign answer", "err", err)
		return nil, nil
	}
	b, err := wire.Encode(m)
	if err != nil {
		n.log.Warn("encode answer", "err", err)
		return nil, nil
	}
	if m.Code != wire.CodeError {
		// An answer that does not fit is replaced by an ErrorResponse the requester
		// sees, rather than dropped on the way (RFC 6940 §6.3.2 max_response_length,
		// §6.6 max-message-size; Error_Response_Too_Large, §14.9).
		phrase := ""
		switch {
		case h.MaxResponseLength > 0 && len(b) > int(h.MaxResponseLength):
			phrase = fmt.Sprintf("answer of %d bytes exceeds max_response_length %d", len(b), h.MaxResponseLength)
		case len(b) > n.s.MaxMessageSize:
			phrase = fmt.Sprintf("answer of %d bytes exceeds max-message-size %d", len(b), n.s.MaxMessageSize)
		}
		if phrase != "" {
			n.log.Debug("answer too large", "code", m.Code, "size", len(b))
			em, err := wire.NewErrorMessage(nil, wire.ErrResponseTooLarge, phrase)
			if err != nil {
				return nil, nil
			}
			return n.prepareAnswer(fromID, h, em)
		}
	}
	return m, b
}

func (n *Node) routeAnswer(b []byte, m *wire.Message) {
	if len(m.Header.DestinationList) == 0 {
		// Answer to a request this node sent to itself.
		n.deliverAnswer(m, n.id, 0)
		return
	}
	n.process(nil, n.id, b)
}

// deliver handles a message destined to this node.
func (n *Node) deliver(from Link, fromID wire.NodeID, b []byte, hops int) {
	dec := wire.Decoder{MaxMessageSize: n.s.MaxMessageSize}
	m, err := dec.Decode(b)
	if err != nil {
		h, hl, herr := wire.DecodeHeader(b)
		if herr == nil && codeAt(b, hl).IsRequest() {
			n.replyError(from, fromID, h, wire.CodeOf(err), err.Error())
		}
		n.drop("decode", err)
		return
	}
	if m.Code.IsAnswer() {
		responder, ok := n.checkAnswer(fromID, m)
		if !ok {
			return
		}
		n.deliverAnswer(m, responder, hops)
		return
	}
	if !m.Code.IsRequest() {
		n.drop("invalid code", nil)
		return
	}
	n.serveRequest(fromID, m, hops)
}

func contains(ids []wire.NodeID, id wire.NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

type answerKey struct {
	tx     uint64
	origin wire.NodeID
}

type answerEntry struct {
	done    bool
	answer  *wire.Message
	expires time.Time
}

// serveRequest verifies and dispatches a request to its handler in a node goroutine.
func (n *Node) serveRequest(fromID wire.NodeID, m *wire.Message, hops int) {
	n.serveRequestFetch(fromID, m, hops, true)
}

// serveRequestFetch is serveRequest; mayFetch allows fetching a signer certificate the
// request lacks (once).
func (n *Node) serveRequestFetch(fromID wire.NodeID, m *wire.Message, hops int, mayFetch bool) {
	h := &m.Header
	origin := fromID
	if len(h.ViaList) > 0 && h.ViaList[0].Type == wire.DestinationNode {
		origin = h.ViaList[0].Node
	}
	var signer []wire.NodeID
	if fromID != n.id {
		var err error
		signer, err = n.s.Security.Verify(m) // RFC 6940 §6.1.1, §7.1
		var missing *CertificateMissingError
		if err != nil && mayFetch && errors.As(err, &missing) && n.fetchCertificateThen(origin, func() {
			n.serveRequestFetch(fromID, m, hops, false)
		}) {
			return
		}
		if err != nil {
			// RFC 6940 §6.3.4: a request whose signature fails SHOULD simply be
			// dropped, and MUST NOT be processed.
			n.drop("request signature", err)
			return
		}
		if signer != nil && !contains(signer, origin) {
			// The originator is the signer (§6.3.4): the via list is not signed, so a
			// first entry that is not the signer's is a forgery (a peer claiming to
			// relay another node's request); handlers act on Origin.
			n.drop("request origin is not its signer", nil)
			return
		}
		if n.checkConfigSequence(fromID, h, m.Code) {
			return
		}
	}
	key := answerKey{h.TransactionID, origin}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if e, ok := n.answered[key]; ok {
		// Retransmission (RFC 6940 §6.2.1): answer again, or drop while in progress.
		var ans *wire.Message
		if e.done {
			c := *e.answer
			ans = &c
		}
		n.mu.Unlock()
		if ans != nil {
			n.answerHeader(fromID, h, ans)
			if b, err := wire.Encode(ans); err == nil {
				n.routeAnswer(b, ans)
			}
		}
		return
	}
	n.answered[key] = &answerEntry{expires: time.Now().Add(n.s.RequestLifetime)}
	hd := n.handlers[m.Code]
	n.wg.Add(1)
	n.mu.Unlock()
	req := &Request{Message: m, From: fromID, Origin: origin, Signer: signer, Hops: hops, Direct: len(h.ViaList) == 0 && fromID != n.id, node: n}
	n.counts.add(m.Code, false)
	go func() {
		defer n.wg.Done()
		ans := n.runHandler(hd, req)
		if ans == nil {
			return
		}
		n.counts.add(ans.Code, true)
		c := *ans
		signed, b := n.prepareAnswer(fromID, h, &c)
		// Cache the signed answer for retransmissions (RFC 6940 §6.2.1) before it goes out,
		// so that a retransmission sent as soon as it arrives is answered from the cache:
		// the signature covers overlay, transaction id and contents (§7.1), not the
		// destination list, so the cached copy stays valid when re-addressed.
		n.mu.Lock()
		if e := n.answered[key]; e != nil {
			if signed != nil {
				e.done, e.answer = true, signed
			} else {
				delete(n.answered, key) // let a retransmission try again
			}
		}
		n.mu.Unlock()
		if signed != nil {
			n.routeAnswer(b, signed)
		}
	}()
}

func (n *Node) runHandler(hd Handler, req *Request) *wire.Message {
	m := req.Message
	if hd == nil {
		ans, _ := wire.NewErrorMessage(nil, wire.ErrInvalidMessage, "method "+m.Code.String()+" not supported")
		return ans
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.s.RequestLifetime)
	defer cancel()
	body, err := hd.ServeRELOAD(ctx, req)
	if n.ctx.Err() != nil {
		return nil
	}
	if err != nil {
		code := wire.CodeOf(err)
		if errors.Is(err, context.DeadlineExceeded) {
			code = wire.ErrRequestTimeout
		}
		phrase := err.Error()
		var we *wire.Error
		if errors.As(err, &we) && we.Op == "request" {
			phrase = we.Msg
		}
		ans, _ := wire.NewErrorMessage(nil, code, phrase)
		return ans
	}
	if body == nil {
		body = emptyBody{}
	}
	ans, err := wire.NewMessage(m.Code.Answer(), body)
	if err != nil {
		ans, _ = wire.NewErrorMessage(nil, wire.ErrInvalidMessage, "encode answer: "+err.Error())
		return ans
	}
	if max := m.Header.MaxResponseLength; max > 0 && len(ans.Body)+64 > int(max) {
		// RFC 6940 §6.3.2 max_response_length.
		ans, _ = wire.NewErrorMessage(nil, wire.ErrResponseTooLarge, "answer exceeds max_response_length")
	}
	return ans
}

type emptyBody struct{}

func (emptyBody) MarshalBinary() ([]byte, error) { return []byte{}, nil }
func (emptyBody) UnmarshalBinary([]byte) error   { return nil }

// checkConfigSequence applies RFC 6940 §6.3.2.1 to a request destined to this node: a
// configuration_sequence other than this node's (65535 on a ConfigUpdate excepted) is
// answered with Error_Config_Too_Old or Error_Config_Too_New, and a requester with an
// older one is sent a ConfigUpdate along the request's route. It reports whether the
// request was refused.
func (n *Node) checkConfigSequence(fromID wire.NodeID, h *wire.ForwardingHeader, code wire.MessageCode) bool {
	err := h.CheckConfigSequence(n.ConfigurationSequence(), code)
	if err == nil {
		return false
	}
	ec := wire.CodeOf(err)
	n.replyError(nil, fromID, h, ec, err.Error())
	if ec == wire.ErrConfigTooOld {
		route := wire.ReverseDestinations(h.ViaList)
		if fromID != n.id {
			route = append([]wire.Destination{wire.NodeDestination(fromID)}, route...)
		}
		n.configStale(route)
	}
	return true
}
