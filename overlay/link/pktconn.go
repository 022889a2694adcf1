package link

import (
	"net"
	"os"
	"sync"
	"time"
)

// packetQueue is the read side of a packet net.Conn that a goroutine feeds: datagrams
// queued by push and read with a working read deadline, which pion/dtls uses to stop its
// reader when a handshake fails. deadlineConn (over ice.Conn) and muxConn (one address of
// a shared socket) read through it.
type packetQueue struct {
	in     chan []byte
	rerr   chan error // the feeder's final read error, kept for every later Read
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	rdl  time.Time
	dlch chan struct{} // closed and replaced when the deadline changes
}

func newPacketQueue() packetQueue {
	return packetQueue{in: make(chan []byte, 256), rerr: make(chan error, 1), closed: make(chan struct{}), dlch: make(chan struct{})}
}

// push queues one datagram; a full queue drops it, like a full socket buffer.
func (q *packetQueue) push(b []byte) {
	select {
	case q.in <- b:
	case <-q.closed:
	default:
	}
}

// shut marks the queue closed; it reports whether this call did.
func (q *packetQueue) shut() bool {
	first := false
	q.once.Do(func() {
		close(q.closed)
		first = true
	})
	return first
}

func (q *packetQueue) Read(p []byte) (int, error) {
	for {
		q.mu.Lock()
		dl, ch := q.rdl, q.dlch
		q.mu.Unlock()
		var tc <-chan time.Time
		if !dl.IsZero() {
			w := time.Until(dl)
			if w <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(w)
			tc = t.C
			defer t.Stop()
		}
		select {
		case b := <-q.in:
			return copy(p, b), nil
		case err := <-q.rerr:
			q.rerr <- err
			return 0, err
		case <-q.closed:
			return 0, net.ErrClosed
		case <-tc:
			return 0, os.ErrDeadlineExceeded
		case <-ch:
		}
	}
}

func (q *packetQueue) SetDeadline(t time.Time) error { return q.SetReadDeadline(t) }

func (q *packetQueue) SetReadDeadline(t time.Time) error {
	q.mu.Lock()
	q.rdl = t
	close(q.dlch)
	q.dlch = make(chan struct{})
	q.mu.Unlock()
	return nil
}

func (q *packetQueue) SetWriteDeadline(time.Time) error { return nil }

// deadlineConn gives a packet net.Conn whose SetReadDeadline does nothing (ice.Conn) working
// read deadlines. A pump goroutine reads the inner conn; it ends when the inner conn is
// closed (by Close).
type deadlineConn struct {
	net.Conn
	q packetQueue
}

func newDeadlineConn(c net.Conn) *deadlineConn {
	d := &deadlineConn{Conn: c, q: newPacketQueue()}
	go d.pump()
	return d
}

func (d *deadlineConn) pump() {
	buf := make([]byte, 64<<10)
	for {
		n, err := d.Conn.Read(buf)
		if err != nil {
			d.q.rerr <- err
			return
		}
		d.q.push(append([]byte(nil), buf[:n]...))
	}
}

func (d *deadlineConn) Read(p []byte) (int, error)         { return d.q.Read(p) }
func (d *deadlineConn) SetDeadline(t time.Time) error      { return d.q.SetDeadline(t) }
func (d *deadlineConn) SetReadDeadline(t time.Time) error  { return d.q.SetReadDeadline(t) }
func (d *deadlineConn) SetWriteDeadline(t time.Time) error { return d.q.SetWriteDeadline(t) }

func (d *deadlineConn) Close() error {
	if !d.q.shut() {
		return nil
	}
	return d.Conn.Close()
}
