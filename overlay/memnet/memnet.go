// Package memnet is an in-memory link layer: node.Connector, node.Link and
// node.Attachment over Go channels, so that many overlay nodes (the same node and chord
// code as on a real network) run in one process. Each endpoint delivers its incoming
// messages in order from one goroutine; killing an endpoint kills all its links at once,
// as a crashed process would.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ErrClosed is returned for sends on dead links and by closed endpoints.
var ErrClosed = errors.New("memnet: closed")

// Network is one in-memory network of endpoints.
type Network struct {
	mu      sync.Mutex
	addrs   map[string]*Endpoint
	ufrags  map[string]*attachment
	waiting map[[2]string]any // unclaimed second end: *link or net.Conn
	seq     uint64

	messages atomic.Uint64
	bytes    atomic.Uint64
	drop     atomic.Pointer[DropFunc]
}

// DropFunc decides whether the message msg sent from one node to another is lost.
type DropFunc func(from, to wire.NodeID, msg []byte) bool

// SetDrop installs f (nil: lose nothing); for tests of retransmission.
func (nw *Network) SetDrop(f DropFunc) {
	if f == nil {
		nw.drop.Store(nil)
		return
	}
	nw.drop.Store(&f)
}

// New returns an empty network.
func New() *Network {
	return &Network{addrs: map[string]*Endpoint{}, ufrags: map[string]*attachment{}, waiting: map[[2]string]any{}}
}

// Counters returns the number of messages and bytes sent over all links so far.
func (nw *Network) Counters() (messages, bytes uint64) { return nw.messages.Load(), nw.bytes.Load() }

// Endpoint creates the endpoint of node id listening at addr (any unique string, e.g.
// "10.0.0.1:6084"); bootstrap links are made to addr. Call SetReceiver (node.New does)
// before traffic arrives.
func (nw *Network) Endpoint(id wire.NodeID, addr string) (*Endpoint, error) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if _, ok := nw.addrs[addr]; ok {
		return nil, fmt.Errorf("memnet: address %s in use", addr)
	}
	e := &Endpoint{nw: nw, id: id, addr: addr, links: map[*link]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	nw.addrs[addr] = e
	go e.run()
	return e, nil
}

type delivery struct {
	from *link
	msg  []byte
}

// Endpoint is one node's attachment to the network; it implements node.Connector.
type Endpoint struct {
	nw   *Network
	id   wire.NodeID
	addr string

	mu     sync.Mutex
	recv   node.Receiver
	queue  []delivery
	links  map[*link]struct{}
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

// ID returns the endpoint's Node-ID.
func (e *Endpoint) ID() wire.NodeID { return e.id }

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() string { return e.addr }

// SetReceiver sets where incoming messages go.
func (e *Endpoint) SetReceiver(r node.Receiver) {
	e.mu.Lock()
	e.recv = r
	e.mu.Unlock()
}

func (e *Endpoint) run() {
	for {
		select {
		case <-e.done:
			return
		case <-e.wake:
		}
		for {
			e.mu.Lock()
			if e.closed || len(e.queue) == 0 {
				e.queue = e.queue[:0:0]
				e.mu.Unlock()
				break
			}
			q := e.queue
			e.queue = nil
			r := e.recv
			e.mu.Unlock()
			for _, d := range q {
				if r != nil && !d.from.dead() {
					r.Receive(d.from, d.msg)
				}
			}
		}
	}
}

func (e *Endpoint) enqueue(d delivery) bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.queue = append(e.queue, d)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return true
}

// Close kills the endpoint: every link dies at once on both sides, queued messages are
// lost, and its address is freed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ls := make([]*link, 0, len(e.links))
	for l := range e.links {
		ls = append(ls, l)
	}
	e.links = nil
	e.queue = nil
	close(e.done)
	e.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	e.nw.mu.Lock()
	if e.nw.addrs[e.addr] == e {
		delete(e.nw.addrs, e.addr)
	}
	for u, a := range e.nw.ufrags {
		if a.e == e {
			delete(e.nw.ufrags, u)
		}
	}
	e.nw.mu.Unlock()
	return nil
}

// CutLinks kills every link of the endpoint but leaves it reachable for new links, as
// a network outage that ends would. The outage also fails the ICE checks under way: an
// attachment of this endpoint made before the cut never becomes a link (without this, an
// Attach answered just before the cut connected just after it, and the "isolated" peer
// was back in the ring).
func (e *Endpoint) CutLinks() {
	e.cancelAttachments()
	// Attachments made while the links were being cut (their signalling could still get
	// through) are cancelled after.
	defer e.cancelAttachments()
	e.mu.Lock()
	ls := make([]*link, 0, len(e.links))
	for l := range e.links {
		ls = append(ls, l)
	}
	e.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// cancelAttachments makes the endpoint's attachments fail to connect (rendezvous).
func (e *Endpoint) cancelAttachments() {
	e.nw.mu.Lock()
	defer e.nw.mu.Unlock()
	for u, a := range e.nw.ufrags {
		if a.e == e {
			delete(e.nw.ufrags, u)
		}
	}
}

func (e *Endpoint) track(l *link) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.links[l] = struct{}{}
	return true
}

func (e *Endpoint) untrack(l *link) {
	e.mu.Lock()
	if e.links != nil {
		delete(e.links, l)
	}
	e.mu.Unlock()
}

// pipe is the shared state of the two ends of one link.
type pipe struct {
	once sync.Once
	done chan struct{}
}

type link struct {
	local, remote *Endpoint
	peer          *link
	p             *pipe
}

func newLinkPair(a, b *Endpoint) (*link, *link, error) {
	p := &pipe{done: make(chan struct{})}
	la := &link{local: a, remote: b, p: p}
	lb := &link{local: b, remote: a, p: p}
	la.peer, lb.peer = lb, la
	if !a.track(la) {
		return nil, nil, ErrClosed
	}
	if !b.track(lb) {
		a.untrack(la)
		return nil, nil, ErrClosed
	}
	return la, lb, nil
}

func (l *link) RemoteNodeID() wire.NodeID { return l.remote.id }

func (l *link) dead() bool {
	select {
	case <-l.p.done:
		return true
	default:
		return false
	}
}

// Send delivers a copy of msg to the remote endpoint's receiver.
func (l *link) Send(ctx context.Context, msg []byte) error {
	if l.dead() {
		return ErrClosed
	}
	l.local.nw.messages.Add(1)
	l.local.nw.bytes.Add(uint64(len(msg)))
	if f := l.local.nw.drop.Load(); f != nil && (*f)(l.local.id, l.remote.id, msg) {
		return nil
	}
	c := make([]byte, len(msg))
	copy(c, msg)
	if !l.remote.enqueue(delivery{from: l.peer, msg: c}) {
		return ErrClosed
	}
	return nil
}

func (l *link) Done() <-chan struct{} { return l.p.done }

func (l *link) Close() error {
	l.p.once.Do(func() { close(l.p.done) })
	l.local.untrack(l)
	l.remote.untrack(l.peer)
	return nil
}

// Bootstrap makes a link to the endpoint at addr.
func (e *Endpoint) Bootstrap(ctx context.Context, addr string) (node.Link, error) {
	e.nw.mu.Lock()
	r := e.nw.addrs[addr]
	e.nw.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("memnet: bootstrap %s: connection refused", addr)
	}
	la, _, err := newLinkPair(e, r)
	if err != nil {
		return nil, fmt.Errorf("memnet: bootstrap %s: %w", addr, err)
	}
	return la, nil
}

type attachment struct {
	e     *Endpoint
	ufrag string
	app   uint16
	ctrl  bool
}

// NewAttachment starts a simulated ICE exchange: its parameters carry a unique ufrag by
// which the two sides find each other.
func (e *Endpoint) NewAttachment(ctx context.Context, remote wire.NodeID, app uint16, controlling bool) (node.Attachment, error) {
	e.nw.mu.Lock()
	defer e.nw.mu.Unlock()
	e.nw.seq++
	a := &attachment{e: e, ufrag: fmt.Sprintf("mem%d", e.nw.seq), app: app, ctrl: controlling}
	e.nw.ufrags[a.ufrag] = a
	return a, nil
}

func (a *attachment) Local() node.IceParams {
	role := "passive"
	if a.ctrl {
		role = "active"
	}
	ap, _ := netip.ParseAddrPort(a.e.addr)
	if !ap.IsValid() {
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 6084)
	}
	return node.IceParams{Ufrag: a.ufrag, Password: "memnet", Role: role, Candidates: []wire.IceCandidate{{
		AddrPort: ap, OverlayLink: wire.LinkDTLSUDPSR, Foundation: []byte("1"), Priority: 1, Type: wire.CandHost,
	}}}
}

func pairKey(a, b string) [2]string {
	if a < b {
		return [2]string{a, b}
	}
	return [2]string{b, a}
}

// rendezvous returns this side's end, creating both ends if the other side has not yet.
func (a *attachment) rendezvous(remote node.IceParams, mk func(self, other *Endpoint) (mine, theirs any, err error)) (any, error) {
	nw := a.e.nw
	nw.mu.Lock()
	defer nw.mu.Unlock()
	key := pairKey(a.ufrag, remote.Ufrag)
	if x, ok := nw.waiting[key]; ok {
		delete(nw.waiting, key)
		delete(nw.ufrags, a.ufrag)
		return x, nil
	}
	if nw.ufrags[a.ufrag] != a {
		return nil, errors.New("memnet: ICE failed: attachment cancelled (links cut)")
	}
	other := nw.ufrags[remote.Ufrag]
	if other == nil {
		return nil, errors.New("memnet: ICE failed: remote candidate unreachable")
	}
	mine, theirs, err := mk(a.e, other.e)
	if err != nil {
		return nil, err
	}
	nw.waiting[key] = theirs
	delete(nw.ufrags, a.ufrag)
	return mine, nil
}

func (a *attachment) ConnectLink(ctx context.Context, remote node.IceParams, dtlsServer bool) (node.Link, error) {
	x, err := a.rendezvous(remote, func(self, other *Endpoint) (any, any, error) {
		la, lb, err := newLinkPair(self, other)
		return la, lb, err
	})
	if err != nil {
		return nil, err
	}
	l, ok := x.(*link)
	if !ok {
		return nil, errors.New("memnet: attach/appattach mismatch")
	}
	return l, nil
}

func (a *attachment) ConnectApp(ctx context.Context, remote node.IceParams, dtlsServer bool) (net.Conn, error) {
	x, err := a.rendezvous(remote, func(self, other *Endpoint) (any, any, error) {
		c1, c2 := net.Pipe()
		return c1, c2, nil
	})
	if err != nil {
		return nil, err
	}
	c, ok := x.(net.Conn)
	if !ok {
		return nil, errors.New("memnet: attach/appattach mismatch")
	}
	return c, nil
}

func (a *attachment) Close() error {
	nw := a.e.nw
	nw.mu.Lock()
	delete(nw.ufrags, a.ufrag)
	var drop []any
	for k, x := range nw.waiting {
		if k[0] == a.ufrag || k[1] == a.ufrag {
			drop = append(drop, x)
			delete(nw.waiting, k)
		}
	}
	nw.mu.Unlock()
	for _, x := range drop {
		switch v := x.(type) {
		case *link:
			v.Close()
		case net.Conn:
			v.Close()
		}
	}
	return nil
}
