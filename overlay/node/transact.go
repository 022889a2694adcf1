package node

import (
	"context"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/wire"
)

type answer struct {
	m    *wire.Message
	from wire.NodeID
	hops int
}

type transaction struct {
	id       uint64
	ch       chan answer
	linkDown chan wire.NodeID
	// newLink: another link to the first hop came up (the peer came back from another
	// address): send again at once, over it.
	newLink chan struct{}
	hop     wire.NodeID      // first hop of the latest transmission
	direct  wire.NodeID      // the destination when it is a single Node-ID
	target  wire.Destination // the last destination: who must answer (RFC 6940 §6.3.4)
	route   []wire.NodeID    // the Node-IDs of the destination list before the last
}

// Option changes one request.
type Option func(*reqOptions)

type reqOptions struct {
	transmissions int
	timer         time.Duration
	maxResponse   uint32
	ttl           uint8
	options       []wire.ForwardingOption
	seq           *uint16
}

// WithConfigurationSequence sets the configuration_sequence of this request instead of the
// node's own: 65535 on a ConfigUpdate, which every node accepts (RFC 6940 §6.3.2.1).
func WithConfigurationSequence(seq uint16) Option { return func(o *reqOptions) { o.seq = &seq } }

// WithTTL sets the initial TTL of this request (default initial-ttl).
func WithTTL(ttl uint8) Option { return func(o *reqOptions) { o.ttl = ttl } }

// WithForwardingOptions adds forwarding options to the request (RFC 6940 §6.3.2.3).
func WithForwardingOptions(opts ...wire.ForwardingOption) Option {
	return func(o *reqOptions) { o.options = append(o.options, opts...) }
}

// WithTransmissions sets how many times the request is sent (1 = no retransmission).
func WithTransmissions(k int) Option { return func(o *reqOptions) { o.transmissions = k } }

// WithReliabilityTimer overrides overlay-reliability-timer for this request.
func WithReliabilityTimer(d time.Duration) Option { return func(o *reqOptions) { o.timer = d } }

// WithMaxResponseLength sets max_response_length (RFC 6940 §6.3.2).
func WithMaxResponseLength(n uint32) Option { return func(o *reqOptions) { o.maxResponse = n } }

// Request sends a request with body to the destination list dests and waits for the
// answer (RFC 6940 §6.2.1): a random transaction ID, retransmission with the same ID
// every overlay-reliability-timer, up to 5 transmissions. An ErrorResponse answer is
// returned as a *RemoteError.
func (n *Node) Request(ctx context.Context, dests []wire.Destination, code wire.MessageCode, body wire.Body, opts ...Option) (*Response, error) {
	o := reqOptions{transmissions: n.s.Transmissions, timer: n.s.ReliabilityTimer, ttl: n.s.InitialTTL}
	for _, f := range opts {
		f(&o)
	}
	if len(dests) == 0 {
		return nil, fmt.Errorf("node: %v: empty destination list", code)
	}
	if !code.IsRequest() {
		return nil, fmt.Errorf("node: %v is not a request code", code)
	}
	if body == nil {
		body = emptyBody{}
	}
	n.counts.add(code, true)
	m, err := wire.NewMessage(code, body)
	if err != nil {
		return nil, err
	}
	t := &transaction{id: newTransactionID(), ch: make(chan answer, 1), linkDown: make(chan wire.NodeID, 1), newLink: make(chan struct{}, 1)}
	if len(dests) == 1 && dests[0].Type == wire.DestinationNode {
		t.direct = dests[0].Node
	}
	if last := dests[len(dests)-1]; last.Type == wire.DestinationNode || len(dests) == 1 {
		// §6.3.4 compares a Resource-ID's responder with our Neighbor Table: only
		// when our table routed it, not when it is source-routed through another
		// node first (the partition check of §10.7.4.4 expects a stranger there).
		t.target = last
	}
	for _, d := range dests[:len(dests)-1] {
		if d.Type == wire.DestinationNode {
			t.route = append(t.route, d.Node)
		}
	}
	m.Header.OverlayHash = n.s.OverlayHash
	m.Header.ConfigurationSequence = n.ConfigurationSequence()
	if o.seq != nil {
		m.Header.ConfigurationSequence = *o.seq
	}
	m.Header.TTL = o.ttl
	m.Header.Options = o.options
	m.Header.TransactionID = t.id
	m.Header.MaxResponseLength = o.maxResponse
	m.Header.DestinationList = append([]wire.Destination(nil), dests...)
	if err := n.s.Security.Sign(m); err != nil {
		return nil, fmt.Errorf("node: sign %v: %w", code, err)
	}
	b, err := wire.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("node: encode %v: %w", code, err)
	}
	if len(b) > n.s.MaxMessageSize {
		return nil, &wire.Error{Code: wire.ErrMessageTooLarge, Op: "request", Msg: fmt.Sprintf("%v of %d bytes exceeds max-message-size %d", code, len(b), n.s.MaxMessageSize)}
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	n.pending[t.id] = t
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.pending, t.id)
		n.mu.Unlock()
	}()
	n.st.originated.Add(1)
	timer := time.NewTimer(o.timer)
	defer timer.Stop()
	for tx := 1; ; tx++ {
		if tx > 1 {
			n.st.retrans.Add(1)
		}
		n.transmit(t, b)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(o.timer)
	wait:
		select {
		case a := <-t.ch:
			return n.result(a, tx)
		case <-timer.C:
			if tx >= o.transmissions {
				return nil, fmt.Errorf("%v to %v: %w", code, dests[len(dests)-1], ErrTimeout)
			}
		case <-t.newLink:
			if tx >= o.transmissions {
				goto wait
			}
		case id := <-t.linkDown:
			if id == t.direct {
				return nil, fmt.Errorf("%v to %v: %w", code, id, ErrLinkDown)
			}
			if tx >= o.transmissions {
				goto wait
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%v to %v: %w", code, dests[len(dests)-1], ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// transmit routes one transmission of the encoded request b.
func (n *Node) transmit(t *transaction, b []byte) {
	h, _, err := wire.DecodeHeader(b)
	if err != nil {
		return
	}
	var hop wire.NodeID
	if first := h.DestinationList[0]; first.Type == wire.DestinationNode && first.Node != n.id {
		hop = first.Node
		if n.link(first.Node) == nil {
			if next, ok := n.topo.NextHop(first.Node); ok {
				hop = next
			}
		}
	} else if first.Type == wire.DestinationResource {
		if next, ok := n.topo.NextHop(first.Resource.NodeID()); ok && !n.topo.Responsible(first.Resource.NodeID()) {
			hop = next
		}
	}
	n.mu.Lock()
	t.hop = hop
	n.mu.Unlock()
	n.process(nil, n.id, b)
}

func (n *Node) deliverAnswer(m *wire.Message, from wire.NodeID, hops int) {
	n.mu.Lock()
	t := n.pending[m.Header.TransactionID]
	n.mu.Unlock()
	if t == nil {
		n.drop("answer without transaction", nil)
		return
	}
	n.counts.add(m.Code, false)
	select {
	case t.ch <- answer{m, from, hops}:
	default:
	}
}

func (n *Node) result(a answer, tx int) (*Response, error) {
	if a.m.Code == wire.CodeError {
		var er wire.ErrorResponse
		if err := er.UnmarshalBinary(a.m.Body); err != nil {
			return nil, &RemoteError{Code: wire.ErrInvalidMessage, Phrase: "malformed ErrorResponse", From: a.from}
		}
		if er.Code == wire.ErrConfigTooNew {
			// The responder's configuration is older than ours (RFC 6940 §6.3.2.1).
			n.configStale([]wire.Destination{wire.NodeDestination(a.from)})
		}
		return nil, &RemoteError{Code: er.Code, Phrase: er.Phrase, Info: er.Info, From: a.from}
	}
	return &Response{Message: a.m, From: a.from, Hops: a.hops, Transmissions: tx}, nil
}

// Call is Request with typed bodies: it checks that the answer has code req+1 and
// parses it into ans (which may be nil).
func (n *Node) Call(ctx context.Context, dests []wire.Destination, code wire.MessageCode, req wire.Body, ans wire.Body, opts ...Option) (*Response, error) {
	r, err := n.Request(ctx, dests, code, req, opts...)
	if err != nil {
		return nil, err
	}
	if r.Message.Code != code.Answer() {
		return r, fmt.Errorf("node: %v answered with %v", code, r.Message.Code)
	}
	if ans != nil {
		if err := ans.UnmarshalBinary(r.Message.Body); err != nil {
			return r, fmt.Errorf("node: parse %v: %w", r.Message.Code, err)
		}
	}
	return r, nil
}

// Ping sends a Ping (RFC 6940 §6.5.3) to dests and returns the answer; Response.From is
// the responding node, e.g. the peer responsible for a Resource-ID.
func (n *Node) Ping(ctx context.Context, dests []wire.Destination, opts ...Option) (*Response, error) {
	return n.Call(ctx, dests, wire.CodePingReq, &wire.PingReq{}, nil, opts...)
}

// servePing answers Ping (RFC 6940 §6.5.3.2).
func (n *Node) servePing(ctx context.Context, req *Request) (wire.Body, error) {
	return &wire.PingAns{ResponseID: newTransactionID(), Time: uint64(time.Now().UnixMilli())}, nil
}

// configStale hands the route to a node with an older configuration to Settings.ConfigStale
// in a node goroutine.
func (n *Node) configStale(route []wire.Destination) {
	if n.s.ConfigStale == nil || len(route) == 0 {
		return
	}
	n.Go(func(ctx context.Context) { n.s.ConfigStale(ctx, route) })
}
