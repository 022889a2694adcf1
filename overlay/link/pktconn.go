package link

import (
	"net"
	"os"
	"sync"
	"time"
)

// deadlineConn gives a packet net.Conn whose SetReadDeadline does nothing (ice.Conn) working
// read deadlines, which pion/dtls uses to stop its reader when a handshake fails. A pump
// goroutine reads the inner conn; it ends when the inner conn is closed (by Close).
type deadlineConn struct {
	net.Conn
	in     chan []byte
	rerr   chan error
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	rdl  time.Time
	dlch chan struct{}
}

func newDeadlineConn(c net.Conn) *deadlineConn {
	d := &deadlineConn{Conn: c, in: make(chan []byte, 256), rerr: make(chan error, 1), closed: make(chan struct{}), dlch: make(chan struct{})}
	go d.pump()
	return d
}

func (d *deadlineConn) pump() {
	buf := make([]byte, 64<<10)
	for {
		n, err := d.Conn.Read(buf)
		if err != nil {
			d.rerr <- err
			return
		}
		select {
		case d.in <- append([]byte(nil), buf[:n]...):
		case <-d.closed:
			return
		default: // reader too slow: drop, like a full socket buffer
		}
	}
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	for {
		d.mu.Lock()
		dl, ch := d.rdl, d.dlch
		d.mu.Unlock()
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
		case b := <-d.in:
			return copy(p, b), nil
		case err := <-d.rerr:
			d.rerr <- err
			return 0, err
		case <-d.closed:
			return 0, net.ErrClosed
		case <-tc:
			return 0, os.ErrDeadlineExceeded
		case <-ch:
		}
	}
}

func (d *deadlineConn) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	d.rdl = t
	close(d.dlch)
	d.dlch = make(chan struct{})
	d.mu.Unlock()
	return nil
}

func (d *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

func (d *deadlineConn) Close() error {
	var err error
	d.once.Do(func() {
		close(d.closed)
		err = d.Conn.Close()
	})
	return err
}
