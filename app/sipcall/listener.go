package sipcall

import (
	"net"
	"sync"
)

// chanListener is the net.Listener sipgo's TCP transport serves: it yields the AppAttach
// connections handed to the Endpoint. sipgo's accept loop puts an accepted connection into
// its pool (under both addresses) before it calls Accept again, so re-entering Accept is the
// signal that the previous connection is usable for requests (connection reuse).
type chanListener struct {
	ch     chan *sipConn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr

	mu      sync.Mutex
	pending *sipConn
}

func newChanListener() *chanListener {
	return &chanListener{
		ch:     make(chan *sipConn),
		closed: make(chan struct{}),
		addr:   &net.TCPAddr{IP: net.IPv4(198, 19, 255, 255), Port: 5060},
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.pending != nil {
		close(l.pending.ready)
		l.pending = nil
	}
	l.mu.Unlock()
	select {
	case c := <-l.ch:
		l.mu.Lock()
		l.pending = c
		l.mu.Unlock()
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// offer hands c to the accept loop; it returns false if the listener is closed.
func (l *chanListener) offer(c *sipConn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
