package node

import (
	"context"
	"sync"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Send queue bounds. RELOAD forwarding is best effort hop by hop; end-to-end
// retransmission (RFC 6940 §6.2.1) recovers a dropped message.
const (
	sendQueuePerSource = 64  // messages from one previous hop waiting for one link
	sendQueueLen       = 512 // messages waiting for one link
)

// sendQueue holds the messages waiting for one link, one FIFO per flow (the end party
// a message travels for, flowOf), served round robin: a peer that floods fills its own
// FIFO and is dropped from, while the messages of others still go out after at most
// one of its messages.
type sendQueue struct {
	mu    sync.Mutex
	fifo  map[wire.NodeID][][]byte
	order []wire.NodeID // sources with messages waiting, in service order
	n     int
	busy  bool // the worker is sending a popped message
	wake  chan struct{}
}

func newSendQueue() *sendQueue {
	return &sendQueue{fifo: map[wire.NodeID][][]byte{}, wake: make(chan struct{}, 1)}
}

// push queues b from src; q.mu must be held.
func (q *sendQueue) push(src wire.NodeID, b []byte) bool {
	f := q.fifo[src]
	if len(f) >= sendQueuePerSource || q.n >= sendQueueLen {
		return false
	}
	if len(f) == 0 {
		q.order = append(q.order, src)
	}
	q.fifo[src] = append(f, b)
	q.n++
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *sendQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return nil, false
	}
	src := q.order[0]
	q.order = q.order[1:]
	f := q.fifo[src]
	b := f[0]
	f[0] = nil
	if f = f[1:]; len(f) > 0 {
		q.fifo[src] = f
		q.order = append(q.order, src)
	} else {
		delete(q.fifo, src)
	}
	q.n--
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

// send hands b, of flow from (flowOf), to l
// without blocking: messages are received, routed and forwarded on the link's read
// goroutine (Receive), which must keep reading (and acknowledging) even when the next
// hop is slow. b goes straight to the link when it has room and nothing is waiting,
// else into l's node-side queue (sendQueue), or is dropped when that is full. A link
// without TrySend (the in-process memnet) is assumed to queue without blocking.
func (n *Node) send(l Link, from wire.NodeID, b []byte) {
	ts, ok := l.(trySender)
	if !ok {
		n.st.sent.Add(1)
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
			n.st.sent.Add(1)
			return
		}
	}
	if !q.push(from, b) {
		n.drop("send queue full", nil)
		return
	}
	n.st.sent.Add(1)
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
