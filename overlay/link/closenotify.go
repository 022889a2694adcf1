package link

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// closeNotifyWait bounds how long the packet conn under a DTLS session stays open, once
// the link is being closed, for the close_notify alert to go out.
const closeNotifyWait = 2 * time.Second

// notifyConn is the packet conn under a DTLS session. pion/dtls (v2.2.12) Close cancels
// the session's read loop before it sends close_notify, and the read loop, woken, closes
// the conn under the session: on a busy machine that often comes first, the close_notify
// is never sent, and the peer finds the link silent only DeadAfter later instead of
// closed at once. Once told a close is coming (closing), a notifyConn holds a Close until
// one more write (the close_notify) went out, or closeNotifyWait passed.
type notifyConn struct {
	net.Conn
	closing atomic.Bool
	wrote   chan struct{} // closed by the first write after closing
	once    sync.Once
}

func newNotifyConn(c net.Conn) *notifyConn {
	return &notifyConn{Conn: c, wrote: make(chan struct{})}
}

// closeComing says that the DTLS session above is about to be closed by this side.
func (c *notifyConn) closeComing() { c.closing.Store(true) }

func (c *notifyConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.closing.Load() {
		c.once.Do(func() { close(c.wrote) })
	}
	return n, err
}

func (c *notifyConn) Close() error {
	if c.closing.Load() {
		t := time.NewTimer(closeNotifyWait)
		select {
		case <-c.wrote:
		case <-t.C:
		}
		t.Stop()
	}
	return c.Conn.Close()
}
