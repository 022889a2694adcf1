package sipcall

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// writeTimeout bounds one write on the AppAttach connection; a peer that stops reading for
// this long is gone.
const writeTimeout = 5 * time.Second

// sipConn is one AppAttach connection as sipgo's TCP transport sees it. It frames and checks
// what the peer sends (see framer), answers malformed requests and keepalive pings itself,
// and gives sipgo unique made-up addresses: sipgo's connection pool is keyed by address,
// and the real ICE addresses of two calls may coincide. sipgo only ever reaches the
// connection through these addresses, so nothing is ever sent anywhere else.
type sipConn struct {
	ep       *Endpoint
	raw      net.Conn
	peer     string // the peer's Node-ID, for logs
	laddr    *net.TCPAddr
	raddr    *net.TCPAddr
	outgoing bool // we opened it (Invite): we close it when its last call ends
	log      *slog.Logger

	// Read side: only sipgo's reader goroutine calls Read.
	fr   framer
	out  []byte
	rbuf []byte

	wmu     sync.Mutex
	replies chan []byte // 400s and pongs the reader asks the writer goroutine to send

	ready     chan struct{} // closed when sipgo has the connection in its pool
	dead      chan struct{} // closed by fail
	readDone  chan struct{} // closed when Read has returned its final error
	readOnce  sync.Once
	failOnce  sync.Once
	failErr   error
	idleSince time.Time // guarded by ep.mu: when the last call on it ended (or it came)
	calls     int       // guarded by ep.mu: dialogs using the connection
}

var _ net.Conn = (*sipConn)(nil)

// Read hands sipgo whole, checked SIP messages.
func (c *sipConn) Read(b []byte) (int, error) {
	for len(c.out) == 0 {
		ev, ok := c.fr.next()
		if !ok {
			n, err := c.raw.Read(c.rbuf)
			if err != nil {
				c.fail(fmt.Errorf("read: %w", err))
				c.readOnce.Do(func() { close(c.readDone) })
				return 0, io.EOF // sipgo treats EOF as a normal close
			}
			c.fr.push(c.rbuf[:n])
			continue
		}
		switch ev.kind {
		case evMessage:
			c.out = ev.msg
		case evReply:
			c.log.Warn("malformed SIP request answered", "reason", ev.reason, "reply", firstLine(ev.reply))
			c.queue(ev.reply)
		case evPong:
			c.queue([]byte("\r\n"))
		case evDrop:
			c.log.Warn("malformed SIP dropped", "reason", ev.reason)
		}
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// self returns c: the connection of a transaction that stays on it (see resend).
func (c *sipConn) self() *sipConn { return c }

func firstLine(b []byte) string {
	for i := range b {
		if b[i] == '\r' {
			return string(b[:i])
		}
	}
	return string(b)
}

// queue asks the writer goroutine to send b; it never blocks the reader (a reader blocked
// on a write could deadlock two peers that both write back).
func (c *sipConn) queue(b []byte) {
	select {
	case c.replies <- b:
	default:
		c.log.Warn("reply queue full; reply dropped")
	}
}

// writer sends the reader's replies until the connection dies.
func (c *sipConn) writer() {
	for {
		select {
		case b := <-c.replies:
			if _, err := c.Write(b); err != nil {
				return
			}
		case <-c.dead:
			return
		}
	}
}

// maxRecord bounds one write on the connection. The peer frames the stream itself, so a
// message may span writes; on a DTLS connection each write is one record in one datagram,
// and records below the path MTU avoid IP fragmentation (which middleboxes often drop) and
// pion's 8 KiB receive buffer. An SDP offer with ICE candidates easily exceeds 1500 bytes.
const maxRecord = 1200

// Write writes one whole SIP message (sipgo writes each message with one Write), in records
// of at most maxRecord bytes; messages never interleave.
func (c *sipConn) Write(b []byte) (int, error) {
	select {
	case <-c.dead:
		return 0, net.ErrClosed
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
	written := 0
	for written < len(b) {
		n, err := c.raw.Write(b[written:min(written+maxRecord, len(b))])
		written += n
		if err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return written, net.ErrClosed
		}
	}
	return written, nil
}

// Close is what sipgo calls when its reference count on the connection drops to zero (its
// count is not reliable: it goes to zero and below in normal operation) or its reader ends.
// The Endpoint alone decides when an AppAttach connection closes (its calls are over,
// keepalives failed, the Endpoint closes), so Close does nothing.
func (c *sipConn) Close() error { return nil }

var (
	errClosedLocally = errors.New("closed")
	errKeepalive     = errors.New("keepalive failed")
)

// fail marks the connection dead (first cause wins), closes it and ends its calls.
func (c *sipConn) fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = err
		close(c.dead)
		_ = c.raw.Close()
		c.ep.mu.Lock()
		calls := c.calls
		c.ep.mu.Unlock()
		if calls > 0 && !errors.Is(err, errClosedLocally) {
			c.log.Info("SIP connection lost", "calls", calls, "err", err)
		} else {
			c.log.Debug("SIP connection closed", "err", err)
		}
		c.ep.connLost(c, err)
	})
}

func (c *sipConn) LocalAddr() net.Addr                { return c.laddr }
func (c *sipConn) RemoteAddr() net.Addr               { return c.raddr }
func (c *sipConn) SetDeadline(t time.Time) error      { return nil }
func (c *sipConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *sipConn) SetWriteDeadline(t time.Time) error { return nil }
