// Package hostile attacks running Chordphone peers (issue 12 points 2 and 4): its tests start
// real peers on loopback (app/peer, the same composition the phone runs) and send them forged,
// tampered, replayed, oversized and malformed input through a raw RELOAD client, then check
// the answer on the wire and that nothing changed.
//
// Client is that raw client: a real link-layer Transport (DTLS over UDP, the peer's own
// overlay/link code) with a certificate of the test's choosing, and hand-built wire.Message
// bytes. It answers nothing and routes nothing; it only sends what it is told and collects
// what comes back.
package hostile

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Client is a raw RELOAD client: one identity, one link Transport, no node.
type Client struct {
	Key     crypto.Signer
	Chain   []*x509.Certificate
	NodeID  wire.NodeID
	Overlay string
	// ConfigurationSequence goes into every header (the overlay's, 0 when self-signed).
	ConfigurationSequence uint16

	tr *link.Transport

	// Intercept, if set before the client's links carry traffic, gets every message
	// nobody waits for (requests to forward or forge answers to), on the link it came on.
	Intercept func(from node.Link, m *wire.Message)
	// Fragment, if set before the client's links carry traffic, gets every fragment as
	// it arrives, before the client (the final destination) reassembles it (RFC 6940 §6.7).
	Fragment func(from node.Link, h *wire.ForwardingHeader)

	reasm   wire.Reassembler
	mu      sync.Mutex
	waiters map[uint64]chan *wire.Message
	other   []*wire.Message // received messages nobody waited for
	bad     int             // received bytes that did not decode
}

// ClientSettings change how a Client is made.
type ClientSettings struct {
	// NodeID claimed on links (default: the certificate's first).
	NodeID wire.NodeID
	// VerifyPeer checks the target's certificate (default: self-signed overlay rules).
	VerifyPeer func(*x509.Certificate, []*x509.Certificate) ([]wire.NodeID, error)
	// Listen makes the client's Transport listen (for ICE it never does; empty: none).
	Listen string
	Logger *slog.Logger
}

// NewClient starts a client for identity id in overlay.
func NewClient(id *identity.Identity, overlay string, s ClientSettings) (*Client, error) {
	return NewClientKey(id.Key, id.Chain, overlay, s)
}

// NewClientKey starts a client with any key and chain (forged certificates included).
func NewClientKey(key crypto.Signer, chain []*x509.Certificate, overlay string, s ClientSettings) (*Client, error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	nid := s.NodeID
	if nid.IsZero() {
		ids := wire.NodeIDsFromCert(chain[0])
		if len(ids) == 0 {
			return nil, errors.New("hostile: certificate carries no Node-ID")
		}
		nid = ids[0]
	}
	c := &Client{Key: key, Chain: chain, NodeID: nid, Overlay: overlay, waiters: map[uint64]chan *wire.Message{}}
	cert := tlsCert(key, chain)
	tr, err := link.New(link.Settings{
		Certificate: cert, NodeID: nid, VerifyPeer: s.VerifyPeer, ListenAddr: s.Listen,
		Logger: s.Logger, ICEIncludeLoopback: true, ICEInterfaceFilter: func(n string) bool { return n == "lo" },
	}, c)
	if err != nil {
		return nil, fmt.Errorf("hostile: link layer: %w", err)
	}
	c.tr = tr
	return c, nil
}

// Transport is the client's link layer.
func (c *Client) Transport() *link.Transport { return c.tr }

// Close closes every link of the client.
func (c *Client) Close() error { return c.tr.Close() }

// Dial makes a bootstrap link (DTLS, or TLS for "tls://") to addr; expect, if not zero, is
// the Node-ID the target must prove.
func (c *Client) Dial(ctx context.Context, addr string, expect wire.NodeID) (*link.Link, error) {
	return c.tr.Dial(ctx, addr, expect)
}

// Receive implements node.Receiver: answers go to whoever waits for their transaction.
func (c *Client) Receive(from node.Link, msg []byte) {
	if h, _, err := wire.DecodeHeader(msg); err == nil && h.IsFragment() {
		if c.Fragment != nil {
			c.Fragment(from, h)
		}
		if msg, _ = c.reasm.Add(msg, time.Now()); msg == nil {
			return
		}
	}
	m, err := wire.Decode(msg, 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad++
		return
	}
	if ch, ok := c.waiters[m.Header.TransactionID]; ok && m.Code.IsAnswer() {
		select {
		case ch <- m:
		default:
		}
		return
	}
	if c.Intercept != nil {
		go c.Intercept(from, m)
		return
	}
	if len(c.other) < 1024 {
		c.other = append(c.other, m)
	}
}

// Request returns an unsigned request with a random transaction id, TTL 100, this overlay's
// hash and the destination list dests.
func (c *Client) Request(code wire.MessageCode, body wire.Body, dests ...wire.Destination) *wire.Message {
	m, err := wire.NewMessage(code, body)
	if err != nil {
		panic(fmt.Sprintf("hostile: %v: %v", code, err))
	}
	m.Header.OverlayHash = wire.OverlayHash(c.Overlay)
	m.Header.ConfigurationSequence = c.ConfigurationSequence
	m.Header.TTL = wire.DefaultTTL
	m.Header.TransactionID = rand.Uint64() | 1
	m.Header.DestinationList = dests
	return m
}

// Sign signs m with the client's key (identity cert_hash_node_id, RFC 6940 §6.3.4) and puts
// the client's chain plus extra certificates in the security block.
func (c *Client) Sign(m *wire.Message, extra ...*x509.Certificate) error {
	sec := &node.CertSecurity{NodeID: c.NodeID, Key: c.Key, Chain: c.Chain}
	if err := sec.Sign(m); err != nil {
		return err
	}
	for _, x := range extra {
		m.Security.Certificates = append(m.Security.Certificates, wire.GenericCertificate{Type: wire.CertificateX509, Certificate: x.Raw})
	}
	return nil
}

// Encode signs (with extra certificates) and encodes m.
func (c *Client) Encode(m *wire.Message, extra ...*x509.Certificate) []byte {
	if err := c.Sign(m, extra...); err != nil {
		panic(err)
	}
	b, err := wire.Encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

// Exchange sends raw (a request with transaction id tx) on l and waits for its answer.
func (c *Client) Exchange(ctx context.Context, l *link.Link, raw []byte, tx uint64) (*wire.Message, error) {
	m, _, err := c.ExchangeRetransmit(ctx, l, raw, tx, time.Duration(math.MaxInt64), 1)
	return m, err
}

// Call signs and sends m on l and returns the answer.
func (c *Client) Call(ctx context.Context, l *link.Link, m *wire.Message, extra ...*x509.Certificate) (*wire.Message, error) {
	b := c.Encode(m, extra...)
	return c.Exchange(ctx, l, b, m.Header.TransactionID)
}

// Send sends raw bytes on l without waiting (floods).
func (c *Client) Send(ctx context.Context, l *link.Link, raw []byte) error { return l.Send(ctx, raw) }

// Undecodable is how many received messages did not decode.
func (c *Client) Undecodable() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}

// ErrorCode returns the code of an ErrorResponse answer, or false for any other answer.
func ErrorCode(m *wire.Message) (wire.ErrorCode, string, bool) {
	if m.Code != wire.CodeError {
		return 0, "", false
	}
	var er wire.ErrorResponse
	if err := er.UnmarshalBinary(m.Body); err != nil {
		return wire.ErrInvalidMessage, "malformed ErrorResponse", true
	}
	return er.Code, er.Phrase, true
}

func tlsCert(key crypto.Signer, chain []*x509.Certificate) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// CallRetransmit is Call with the end-to-end retransmission of RFC 6940 §6.2.1: the same
// bytes (same transaction id) again every timer, up to transmissions times, as a node does.
func (c *Client) CallRetransmit(ctx context.Context, l *link.Link, m *wire.Message, timer time.Duration, transmissions int, extra ...*x509.Certificate) (*wire.Message, int, error) {
	return c.ExchangeRetransmit(ctx, l, c.Encode(m, extra...), m.Header.TransactionID, timer, transmissions)
}

// ExchangeRetransmit is Exchange with the retransmissions of CallRetransmit.
func (c *Client) ExchangeRetransmit(ctx context.Context, l *link.Link, raw []byte, tx uint64, timer time.Duration, transmissions int) (*wire.Message, int, error) {
	ch := make(chan *wire.Message, 4)
	c.mu.Lock()
	c.waiters[tx] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, tx)
		c.mu.Unlock()
	}()
	tick := time.NewTimer(0)
	defer tick.Stop()
	for n := 0; ; {
		select {
		case ans := <-ch:
			return ans, n, nil
		case <-tick.C:
			if n == transmissions {
				return nil, n, fmt.Errorf("hostile: no answer after %d transmissions", n)
			}
			n++
			if err := l.Send(ctx, raw); err != nil {
				return nil, n, fmt.Errorf("hostile: send: %w", err)
			}
			tick.Reset(timer)
		case <-l.Done():
			return nil, n, fmt.Errorf("hostile: link closed while waiting for the answer: %w", l.Err())
		case <-ctx.Done():
			return nil, n, fmt.Errorf("hostile: no answer: %w", ctx.Err())
		}
	}
}
