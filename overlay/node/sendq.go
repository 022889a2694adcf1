package node

import (
	"context"
	"slices"
	"sync"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Send queue bounds. RELOAD forwarding is best effort hop by hop; end-to-end
// retransmission (RFC 6940 §6.2.1) recovers a dropped message.
const (
	sendQueuePerSource = 64  // messages of one flow (share, end party) waiting for one link
	sendQueueLen       = 512 // messages waiting for one link
)

// sendQueue holds the messages waiting for one link, served round robin on two levels:
// first by share (shareOf: a request's previous hop, whose link authenticated it; the
// node an answer's next hop hands it to), then, within a share, by end party (flowOf).
// The end party is only what a neighbour claims (a via list is not signed, RFC 6940
// §6.3.4), so a neighbour naming many originators still gets one neighbour's share,
// and the messages of every other share go out after at most one of its messages. A
// full queue makes room by dropping the oldest message of the longest flow of the
// fullest share: a flood crowds out itself, never a newcomer.
type sendQueue struct {
	mu     sync.Mutex
	shares map[wire.NodeID]*shareQueue
	order  []wire.NodeID // shares with messages waiting, in service order
	n      int
	busy   bool // the worker is sending a popped message
	wake   chan struct{}
}

// shareQueue is the part of a sendQueue of one share (shareOf): a FIFO per
// end party, served round robin.
type shareQueue struct {
	fifo  map[wire.NodeID][][]byte
	order []wire.NodeID // end parties with messages waiting, in service order
	n     int
}

func newSendQueue() *sendQueue {
	return &sendQueue{shares: map[wire.NodeID]*shareQueue{}, wake: make(chan struct{}, 1)}
}

// push queues b, of share share and end party end; q.mu must be held. It
// refuses b when end's FIFO is full, and evicts another message (evicted) when the
// whole queue is.
func (q *sendQueue) push(share, end wire.NodeID, b []byte) (pushed, evicted bool) {
	h := q.shares[share]
	if h != nil && len(h.fifo[end]) >= sendQueuePerSource {
		return false, false
	}
	if q.n >= sendQueueLen {
		q.evict()
		evicted = true
	}
	if h = q.shares[share]; h == nil {
		h = &shareQueue{fifo: map[wire.NodeID][][]byte{}}
		q.shares[share] = h
	}
	if h.n == 0 {
		q.order = append(q.order, share)
	}
	if len(h.fifo[end]) == 0 {
		h.order = append(h.order, end)
	}
	h.fifo[end] = append(h.fifo[end], b)
	h.n++
	q.n++
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true, evicted
}

// evict drops the oldest message of the longest FIFO of the share with the most
// messages waiting; q.mu must be held.
func (q *sendQueue) evict() {
	var share, end wire.NodeID
	var h *shareQueue
	for id, x := range q.shares {
		if h == nil || x.n > h.n {
			share, h = id, x
		}
	}
	if h == nil {
		return
	}
	for id, f := range h.fifo {
		if len(f) > len(h.fifo[end]) {
			end = id
		}
	}
	q.take(share, h, end, false)
}

// take removes the oldest message of share's FIFO for end and returns it. served: share
// and end are first in their service orders, and go to the back. q.mu must be held.
func (q *sendQueue) take(share wire.NodeID, h *shareQueue, end wire.NodeID, served bool) []byte {
	f := h.fifo[end]
	b := f[0]
	f[0] = nil
	if h.fifo[end] = f[1:]; len(f) == 1 {
		delete(h.fifo, end)
	}
	h.n--
	q.n--
	h.order = requeue(h.order, end, served, len(f) > 1)
	q.order = requeue(q.order, share, served, h.n > 0)
	if h.n == 0 {
		delete(q.shares, share)
	}
	return b
}

// requeue updates a service order after id lost a message: when served (id was first)
// it goes to the back; it leaves the order when it has nothing left (left false).
func requeue(order []wire.NodeID, id wire.NodeID, served, left bool) []wire.NodeID {
	switch {
	case served && left:
		return append(order[1:], id)
	case served:
		return order[1:]
	case !left:
		return slices.DeleteFunc(order, func(x wire.NodeID) bool { return x == id })
	}
	return order
}

func (q *sendQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return nil, false
	}
	share := q.order[0]
	h := q.shares[share]
	b := q.take(share, h, h.order[0], true)
	q.busy = true
	return b, true
}

func (q *sendQueue) sent() {
	q.mu.Lock()
	q.busy = false
	q.mu.Unlock()
}

// trySender is a link whose Send may block while its own send queue is full
// (overlay/link); TrySend queues without waiting.
type trySender interface {
	TrySend(msg []byte) (bool, error)
}

// send hands b, of share share (shareOf) and end party end (flowOf), to l without
// blocking: messages are received, routed and forwarded on the
// link's read goroutine (Receive), which must keep reading (and acknowledging) even
// when the next hop is slow. b goes straight to the link when it has room and nothing
// is waiting, else into l's node-side queue (sendQueue), which drops what it cannot
// hold. A link without TrySend (the in-process memnet) is assumed to queue without
// blocking.
func (n *Node) send(l Link, share, end wire.NodeID, b []byte) {
	ts, ok := l.(trySender)
	if !ok {
		n.countSent(b)
		ctx, cancel := context.WithTimeout(n.ctx, n.s.ReliabilityTimer)
		defer cancel()
		if err := l.Send(ctx, b); err != nil {
			n.log.Debug("link send", "peer", l.RemoteNodeID(), "err", err)
		}
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	q, ok := n.sendqs[l]
	if !ok {
		if n.sendqs == nil {
			n.sendqs = map[Link]*sendQueue{}
		}
		q = newSendQueue()
		n.sendqs[l] = q
		n.wg.Add(1)
		go n.sendLoop(l, q)
	}
	n.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 && !q.busy {
		// Nothing waiting: keep the order of messages to different links.
		done, err := ts.TrySend(b)
		if err != nil {
			n.log.Debug("link send", "peer", l.RemoteNodeID(), "err", err)
			return
		}
		if done {
			n.countSent(b)
			return
		}
	}
	pushed, evicted := q.push(share, end, b)
	if evicted {
		n.drop("send queue full", nil)
	}
	if !pushed {
		n.drop("send queue full for one flow", nil)
	}
}

// sendLoop writes l's queued messages until l dies or the node closes.
func (n *Node) sendLoop(l Link, q *sendQueue) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		if n.sendqs[l] == q {
			delete(n.sendqs, l)
		}
		n.mu.Unlock()
	}()
	for {
		for b, ok := q.pop(); ok; b, ok = q.pop() {
			ctx, cancel := context.WithTimeout(n.ctx, n.s.ReliabilityTimer)
			err := l.Send(ctx, b)
			cancel()
			q.sent()
			n.countSent(b)
			if err != nil {
				n.log.Debug("link send", "peer", l.RemoteNodeID(), "err", err)
			}
			if n.ctx.Err() != nil {
				return
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-l.Done():
			return
		case <-q.wake:
		}
	}
}

// countSent counts a message handed to a link.
func (n *Node) countSent(b []byte) {
	n.st.sent.Add(1)
	n.st.bytesSent.Add(uint64(len(b)))
}
