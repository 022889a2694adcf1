package sipcall

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// MaxMessageBody bounds the body of a MESSAGE request we send or take. RFC 3428 §7 limits a
// MESSAGE over a transport without congestion control to 1300 bytes; the AppAttach
// connection is DTLS over UDP, but the Endpoint frames and retransmits (and writes records
// below the path MTU), so a larger page costs a few datagrams, not fragmentation.
const MaxMessageBody = 16 << 10

// Message is a MESSAGE request (RFC 3428) that arrived, as the OnMessage handler sees it.
type Message struct {
	// From is the sender's user name (From URI's user part); the handler checks that the
	// connection's certificate carries it.
	From string
	// Peer is the Node-ID of the phone the connection leads to (as Serve was given it).
	Peer string
	// ID is the request's Call-ID: a page's identity, the same on every device it was sent
	// to (the sender's phone uses one Call-ID per message).
	ID          string
	ContentType string
	Body        []byte
	// Date is the request's Date header (RFC 3261 §20.17), zero when absent or unreadable.
	Date time.Time
}

// OnMessage sets the handler of incoming MESSAGE requests. It returns the final status code
// (200 to accept; 415 for a content type it cannot show; 403 for a sender it refuses). It runs
// on a goroutine the Endpoint owns and must return promptly. Without a handler a MESSAGE gets
// 405.
func (ep *Endpoint) OnMessage(f func(*Message) int) {
	ep.mu.Lock()
	ep.onMessage = f
	ep.mu.Unlock()
}

// handleMessage answers a MESSAGE (RFC 3428 §7): the handler's code, 400 for a request
// without a user in From or without a Content-Type, 413 for a body over MaxMessageBody.
func (ep *Endpoint) handleMessage(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	ep.mu.Lock()
	f := ep.onMessage
	sc.idleSince = time.Now()
	ep.mu.Unlock()
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	if f == nil {
		ep.handleOther(sc, req, tx)
		return
	}
	from := req.From()
	ct := req.ContentType()
	switch {
	case from == nil || validUser(from.Address.User) != nil:
		respond(400, "Bad From")
		return
	case ct == nil || ct.Value() == "":
		respond(400, "Missing Content-Type") // RFC 3428 §7: a MESSAGE carries a body
		return
	case len(req.Body()) > MaxMessageBody:
		respond(413, "Request Entity Too Large")
		return
	}
	m := &Message{From: from.Address.User, Peer: sc.peer, ID: req.CallID().Value(),
		ContentType: ct.Value(), Body: append([]byte(nil), req.Body()...)}
	if d := req.GetHeader("Date"); d != nil {
		if t, err := time.Parse(time.RFC1123, d.Value()); err == nil {
			m.Date = t
		}
	}
	code := f(m)
	respond(code, statusText(code))
}

// SendMessage sends one MESSAGE (RFC 3428) with id as its Call-ID to user's device peer
// (a Node-ID) and waits for the final response: nil for a 2xx, a *StatusError for an
// error response. It reuses a live connection to peer (one a call or an earlier message
// opened, or one the peer opened); otherwise it opens one with dial, which the Endpoint
// owns from then on and closes after IdleTimeout without calls or messages.
func (ep *Endpoint) SendMessage(ctx context.Context, peer string, dial func(context.Context) (net.Conn, error), user, id, contentType string, body []byte) error {
	if err := validUser(user); err != nil {
		return fmt.Errorf("sipcall: recipient: %w", err)
	}
	if len(body) > MaxMessageBody {
		return fmt.Errorf("sipcall: message body of %d bytes exceeds %d", len(body), MaxMessageBody)
	}
	sc := ep.connTo(peer)
	if sc == nil {
		conn, err := dial(ctx)
		if err != nil {
			return err
		}
		if sc, err = ep.attach(conn, peer, false); err != nil {
			conn.Close()
			return err
		}
	}
	req := ep.outOfDialog(sip.MESSAGE, sip.Uri{Scheme: "sip", User: user, Host: ep.set.Overlay}, id, sc)
	ctype := sip.ContentTypeHeader(contentType)
	req.AppendHeader(sip.NewHeader("Date", time.Now().UTC().Format(time.RFC1123)))
	req.AppendHeader(&ctype)
	req.SetBody(body)
	res, err := ep.transact(ctx, sc.self, req)
	if err != nil {
		return fmt.Errorf("sipcall: MESSAGE: %w", err)
	}
	if !res.IsSuccess() {
		return &StatusError{Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

// connTo returns a live connection to the phone with Node-ID peer, if there is one.
func (ep *Endpoint) connTo(peer string) *sipConn {
	if peer == "" {
		return nil
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, sc := range ep.conns {
		if sc.peer != peer {
			continue
		}
		select {
		case <-sc.dead:
		default:
			sc.idleSince = time.Now()
			return sc
		}
	}
	return nil
}

// MediaType is the media type of a Content-Type value, lower case, without parameters.
func MediaType(v string) string {
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}
