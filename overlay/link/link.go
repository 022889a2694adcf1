package link

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ALPN protocol names. Both ends offering alpnInOrder on DTLS marks a Chordphone peer: the
// link then keeps sequence numbers across retransmissions and sends keepalives (see package
// doc). On TLS, alpnTLS marks a Chordphone peer that sends keepalives.
const (
	alpnInOrder = "reload-sr-inorder"
	alpnTLS     = "reload-fh-keepalive"
)

// ErrLinkClosed is returned by Send on a link that is closed or dead; errors.Is(err,
// ErrLinkClosed) also holds for the reason a dead link died (Link.Err).
var ErrLinkClosed = errors.New("link closed")

// ErrLinkDead is the reason of a link that failed: no acknowledgement after the last
// transmission, or silence beyond Settings.DeadAfter.
var ErrLinkDead = errors.New("link dead")

// Stats are counters of one link.
type Stats struct {
	MessagesSent      uint64 // RELOAD messages (or fragments) handed to the link
	Transmissions     uint64 // data frames written, retransmissions included
	Retransmissions   uint64
	MessagesReceived  uint64 // messages delivered to the receiver
	DuplicatesDropped uint64
	AcksReceived      uint64
	RTO               time.Duration // current retransmission timeout (DTLS)
	SRTT              time.Duration // smoothed round-trip time, 0 before the first sample
}

// Link is one authenticated overlay link; it implements node.Link.
type Link struct {
	t        *Transport
	s        *Settings
	log      *slog.Logger
	conn     net.Conn
	proto    wire.OverlayLinkType
	datagram bool
	inOrder  bool // DTLS peer keeps sequence numbers across retransmissions
	chord    bool // peer is a Chordphone: keepalives are expected
	remote   wire.NodeID
	cert     *x509.Certificate
	onClose  func()
	under    *notifyConn   // the packet conn under a DTLS session (closenotify.go)
	firstRTT time.Duration // RTT of the ICE check, the RTO estimator's first sample
	// src is the address this host sends from on the link: the socket's, or for a socket
	// bound to the wildcard address (the listener's), the one routing chose when the link
	// came up. The peer knows the link by it; when it is removed the link is dead.
	src netip.Addr

	wmu   sync.Mutex
	wbuf  []byte
	sendq chan [][]byte
	acks  chan ackInfo
	done  chan struct{}
	once  sync.Once
	err   error

	onStall  atomic.Pointer[func(bool)] // OnStall
	lastRecv atomic.Int64
	lastSend atomic.Int64
	lastAck  atomic.Uint64 // ackSeq<<32 | received of the last ack sent

	// receiver state, reader goroutine only
	ackw  wire.AckWindow
	next  uint32
	early map[uint32][]byte
	br    *bufio.Reader

	st struct {
		sent, tx, retx, recv, dups, acks atomic.Uint64
		rto, srtt                        atomic.Int64
	}
}

type ackInfo struct{ seq, received uint32 }

var _ node.Link = (*Link)(nil)

func newLink(t *Transport, conn net.Conn, proto wire.OverlayLinkType, pc *peerCheck, alpn string, onClose func()) *Link {
	l := &Link{
		t: t, s: &t.s, conn: conn, proto: proto,
		datagram: proto != wire.LinkTLSTCPFHNoICE,
		remote:   pc.remoteID(), cert: pc.cert, under: pc.under, onClose: onClose,
		sendq: make(chan [][]byte, 4),
		acks:  make(chan ackInfo, 128),
		done:  make(chan struct{}),
		early: map[uint32][]byte{},
	}
	l.inOrder = l.datagram && alpn == alpnInOrder
	l.src = sourceAddr(conn)
	l.chord = alpn == alpnInOrder || alpn == alpnTLS
	l.log = t.log.With("link", protoName(proto), "peer", l.remote.String(), "addr", conn.RemoteAddr().String())
	if !l.datagram {
		l.br = bufio.NewReaderSize(conn, 64<<10)
	}
	now := time.Now().UnixNano()
	l.lastRecv.Store(now)
	l.lastSend.Store(now)
	l.lastAck.Store(uint64(0xffffffff) << 32)
	l.st.rto.Store(int64(t.s.RTO))
	return l
}

func (l *Link) start() {
	l.t.wg.Add(2)
	go func() { defer l.t.wg.Done(); l.readLoop() }()
	go func() { defer l.t.wg.Done(); l.sendLoop() }()
	l.log.Debug("link up", "inorder", l.inOrder, "keepalive", l.chord)
}

// OnStall sets f, called from the link's sending goroutine with true when a TLS link's
// data frame has gone unacknowledged for longer than its RTO, and with false once the
// frames are acknowledged: the link should leave the Routing Table meanwhile, its
// connection being kept (RFC 6940 §6.6.5) until Settings.TLSRetain.
func (l *Link) OnStall(f func(stalled bool)) { l.onStall.Store(&f) }

// RemoteNodeID is the Node-ID the peer proved with its certificate.
func (l *Link) RemoteNodeID() wire.NodeID { return l.remote }

// PeerCertificate is the certificate the peer presented.
func (l *Link) PeerCertificate() *x509.Certificate { return l.cert }

// Protocol is the overlay link protocol (RFC 6940 §6.6).
func (l *Link) Protocol() wire.OverlayLinkType { return l.proto }

// RemoteAddr is the peer's transport address.
func (l *Link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }

// LocalAddr is this side's transport address.
func (l *Link) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// Done is closed when the link has died or was closed.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err is why the link ended (nil while it is up).
func (l *Link) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Close closes the link (a DTLS/TLS close_notify is sent).
func (l *Link) Close() error {
	l.fail(ErrLinkClosed)
	return nil
}

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		MessagesSent: l.st.sent.Load(), Transmissions: l.st.tx.Load(), Retransmissions: l.st.retx.Load(),
		MessagesReceived: l.st.recv.Load(), DuplicatesDropped: l.st.dups.Load(), AcksReceived: l.st.acks.Load(),
		RTO: time.Duration(l.st.rto.Load()), SRTT: time.Duration(l.st.srtt.Load()),
	}
}

// Send queues one encoded RELOAD message. It returns once the message is queued (it blocks
// while the send queue is full); the link retransmits it until acknowledged or declares
// itself dead. Messages larger than the path MTU are fragmented (RFC 6940 §6.7).
func (l *Link) Send(ctx context.Context, msg []byte) error {
	parts, err := l.parts(msg)
	if err != nil {
		return err
	}
	select {
	case l.sendq <- parts:
		return nil
	case <-l.done:
		return fmt.Errorf("link to %s: %w", l.remote, l.closedErr())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrySend is Send without waiting: it returns false (and no error) when the send queue
// is full. The node uses it on a link's read path, which must never block.
func (l *Link) TrySend(msg []byte) (bool, error) {
	parts, err := l.parts(msg)
	if err != nil {
		return false, err
	}
	select {
	case l.sendq <- parts:
		return true, nil
	default:
		return false, nil
	}
}

// parts frames msg for sending (fragments on datagram links, RFC 6940 §6.7); it fails
// if the link is closed.
func (l *Link) parts(msg []byte) ([][]byte, error) {
	if len(msg) > wire.MaxFramePayload {
		return nil, fmt.Errorf("link: message of %d bytes too large for a frame", len(msg))
	}
	var parts [][]byte
	if l.datagram {
		var err error
		parts, err = fragment(msg, l.maxFragment())
		if err != nil {
			return nil, fmt.Errorf("link: fragment: %w", err)
		}
	} else {
		parts = [][]byte{append([]byte(nil), msg...)}
	}
	select {
	case <-l.done:
		return nil, fmt.Errorf("link to %s: %w", l.remote, l.closedErr())
	default:
	}
	return parts, nil
}

func (l *Link) closedErr() error {
	if l.err != nil && !errors.Is(l.err, ErrLinkClosed) {
		return fmt.Errorf("%w: %w", ErrLinkClosed, l.err)
	}
	return ErrLinkClosed
}

// maxFragment is the largest RELOAD message (or fragment) put in one datagram: the MTU less
// DTLS record overhead (13 header + up to 64 for explicit nonce, MAC and padding), the frame
// header (8), and 32 bytes for the Via list to grow (RFC 6940 §6.7).
func (l *Link) maxFragment() int { return l.s.MTU - 13 - 64 - 8 - 32 }

func (l *Link) fail(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.done)
		if errors.Is(err, ErrLinkClosed) {
			l.log.Debug("link closed")
		} else {
			l.log.Info("link down", "err", err)
		}
		if l.under != nil && err == ErrLinkClosed { //nolint:errorlint // Close, not "closed by peer"
			l.under.closeComing() // closed here: the peer is told (close_notify)
		}
		_ = l.conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
		_ = l.conn.Close()
		if l.onClose != nil {
			l.onClose()
		}
		l.t.removeLink(l)
	})
}

func (l *Link) write(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.conn.SetWriteDeadline(time.Now().Add(l.s.DeadAfter))
	if _, err := l.conn.Write(b); err != nil {
		return err
	}
	l.lastSend.Store(time.Now().UnixNano())
	return nil
}

func (l *Link) writeData(seq uint32, msg []byte) error {
	l.wmu.Lock()
	b, err := wire.AppendFrame(l.wbuf[:0], &wire.Frame{Type: wire.FrameData, Sequence: seq, Message: msg})
	if err != nil {
		l.wmu.Unlock()
		return err
	}
	l.wbuf = b[:0]
	_ = l.conn.SetWriteDeadline(time.Now().Add(l.s.DeadAfter))
	_, err = l.conn.Write(b)
	if err == nil {
		l.lastSend.Store(time.Now().UnixNano())
	}
	l.wmu.Unlock()
	l.st.tx.Add(1)
	return err
}

func (l *Link) writeAck(seq, received uint32) error {
	l.lastAck.Store(uint64(seq)<<32 | uint64(received))
	return l.write(wire.AckFrame(seq, received))
}

// ---- receiving

func (l *Link) readLoop() {
	buf := make([]byte, 64<<10)
	for {
		var f wire.Frame
		var err error
		if l.datagram {
			var n int
			n, err = l.conn.Read(buf)
			if err == nil {
				f, err = wire.ParseFrame(buf[:n])
				if err != nil {
					l.log.Debug("bad frame dropped", "err", err)
					continue
				}
				if f.Type == wire.FrameData {
					f.Message = append([]byte(nil), f.Message...)
				}
			}
		} else {
			f, err = l.readStreamFrame()
		}
		if err != nil {
			select {
			case <-l.done:
			default:
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
					l.fail(fmt.Errorf("%w: closed by peer", ErrLinkClosed))
				} else {
					l.fail(fmt.Errorf("%w: read: %w", ErrLinkDead, err))
				}
			}
			return
		}
		l.lastRecv.Store(time.Now().UnixNano())
		switch f.Type {
		case wire.FrameData:
			// RFC 6940 §6.6.2: the receiver SHOULD immediately send an ACK.
			as, rcv := l.ackw.Receive(f.Sequence)
			if err := l.writeAck(as, rcv); err != nil {
				l.fail(fmt.Errorf("%w: write ack: %w", ErrLinkDead, err))
				return
			}
			l.acceptData(f.Sequence, f.Message)
		case wire.FrameAck:
			l.st.acks.Add(1)
			select {
			case l.acks <- ackInfo{f.Sequence, f.Received}:
			case <-l.done:
				return
			}
		}
	}
}

// reorderSpan is how far ahead of the next expected sequence number an in-order receiver
// buffers frames (the sender keeps at most Settings.Window <= 32 in flight).
const reorderSpan = 256

func (l *Link) acceptData(seq uint32, msg []byte) {
	if !l.inOrder {
		l.deliver(msg)
		return
	}
	d := seq - l.next
	switch {
	case d == 0:
		l.deliver(msg)
		l.next++
		for {
			m, ok := l.early[l.next]
			if !ok {
				break
			}
			delete(l.early, l.next)
			l.deliver(m)
			l.next++
		}
	case d >= 1<<31: // before next: already delivered
		l.st.dups.Add(1)
	case d < reorderSpan:
		if _, ok := l.early[seq]; ok {
			l.st.dups.Add(1)
			return
		}
		l.early[seq] = msg
	default:
		l.log.Debug("data frame far ahead dropped", "seq", seq, "next", l.next)
	}
}

// readStreamFrame reads one frame from a TLS link (RFC 6940 §6.6.4). Of a data frame larger
// than max-message-size it keeps only the first MaxMessageSize+1 bytes and skips the rest, so
// that memory stays bounded, the stream stays in step and deliver can have the message
// answered with Error_Message_Too_Large (RFC 6940 §6.6).
func (l *Link) readStreamFrame() (wire.Frame, error) {
	max := l.s.MaxMessageSize
	hdr, err := l.br.Peek(8) // type, sequence, 24-bit length
	if err != nil || wire.FrameType(hdr[0]) != wire.FrameData {
		return wire.ReadFrame(l.br, max)
	}
	n := int(hdr[5])<<16 | int(hdr[6])<<8 | int(hdr[7])
	if n <= max {
		return wire.ReadFrame(l.br, max)
	}
	seq := binary.BigEndian.Uint32(hdr[1:5])
	msg := make([]byte, max+1)
	if _, err := l.br.Discard(8); err != nil {
		return wire.Frame{}, err
	}
	if _, err := io.ReadFull(l.br, msg); err != nil {
		return wire.Frame{}, fmt.Errorf("read data frame: %w", io.ErrUnexpectedEOF)
	}
	if _, err := l.br.Discard(n - len(msg)); err != nil {
		return wire.Frame{}, fmt.Errorf("skip data frame: %w", io.ErrUnexpectedEOF)
	}
	return wire.Frame{Type: wire.FrameData, Sequence: seq, Message: msg}, nil
}

// deliver hands a received message or fragment to the node. Fragments go up as they are:
// only the final destination reassembles them (RFC 6940 §6.7), which the node decides.
func (l *Link) deliver(msg []byte) {
	if max := l.s.MaxMessageSize; len(msg) > max {
		// RFC 6940 §6.6: a message above max-message-size is answered with
		// Error_Message_Too_Large: the node does so for a message over its limit, so it gets
		// the first max+1 bytes (forwarding header and message code). If the forwarding
		// header alone is larger, the session is closed without an error. The link stays up
		// otherwise: the session is not closed after the error, so that the answer gets
		// through (the sender's link retransmits until acknowledged).
		if hl := headerLen(msg); hl == 0 || hl > max {
			l.fail(fmt.Errorf("%w: message of %d bytes with a forwarding header over max-message-size %d", ErrLinkDead, len(msg), max))
			return
		}
		l.log.Debug("message over max-message-size", "bytes", len(msg), "max", max)
		msg = msg[: max+1 : max+1]
		binary.BigEndian.PutUint32(msg[offLength:], uint32(len(msg)))
	}
	l.st.recv.Add(1)
	l.t.recv.Receive(l, msg)
}

// untilGrid is the time from now to the next multiple of every since the Unix epoch.
func untilGrid(now time.Time, every time.Duration) time.Duration {
	if every <= 0 {
		return time.Hour
	}
	return every - time.Duration(now.UnixNano()%int64(every))
}
