package link

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pion/logging"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Settings configure a Transport, in the manner of pion's SettingEngine: zero fields take the
// defaults given in their comments.
type Settings struct {
	// Certificate is this node's certificate and key, presented on every link.
	Certificate tls.Certificate
	// NodeID is this node's Node-ID; zero means the first one the certificate carries.
	NodeID wire.NodeID
	// VerifyPeer checks a peer's certificate with the rest of the chain it presented in the
	// handshake (intermediate CAs, leaf's issuer first) and returns the Node-IDs it proves.
	// Default: SelfSignedVerifier(identity.DigestSHA256).
	VerifyPeer func(leaf *x509.Certificate, intermediates []*x509.Certificate) ([]wire.NodeID, error)

	// ListenAddr ("host:port") is where bootstrap links are accepted: DTLS and STUN on UDP,
	// TLS on TCP, on the same port number. Empty: no listener (outgoing links only).
	ListenAddr string

	// KeyLog receives NSS key log lines for every DTLS and TLS session (--keylog FILE).
	KeyLog io.Writer
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// RTO is the initial retransmission timeout of DTLS-UDP-SR (RFC 6940 §6.6.3.1): 500 ms.
	RTO time.Duration
	// MinRTO bounds the dynamic RTO (RFC 6298 estimate) from below: 100 ms.
	MinRTO time.Duration
	// MaxTransmissions is how many times a message is sent before the link is declared
	// dead (RFC 6940 §6.6.3.1): 5.
	MaxTransmissions int
	// Keepalive is how often an idle link sends an ack frame to show it is alive: 2 s.
	// (It also keeps NAT bindings and the ICE pair fresh, so ICE's own STUN keepalives,
	// RFC 5245 §10, are only sent on links silent for 15 s.)
	Keepalive time.Duration
	// DeadAfter is how long a link to a Chordphone peer may stay silent before it is
	// declared dead: 7 s (three keepalives, so two lost in a row do not kill a link).
	DeadAfter time.Duration
	// StallAfter is the least time a TLS data frame stays unacknowledged before the link is
	// taken out of routing (Link.OnStall), when its RTO is shorter: 1 s (RFC 6940 §6.6.5 uses
	// the RFC 6298 RTO, which "SHOULD be rounded up to 1 second", §2.4).
	StallAfter time.Duration
	// TLSRetain is how long a TLS data frame may stay unacknowledged before the link is
	// declared dead: 30 s (RFC 6940 §6.6.5: "RECOMMENDED that such a connection be retained
	// for 30 seconds to determine if the failure was transient").
	TLSRetain time.Duration
	// MTU is the path MTU assumed for DTLS (datagram size): 1200 bytes.
	MTU int
	// MaxMessageSize is the largest RELOAD message accepted (max-message-size): 1 MiB.
	MaxMessageSize int
	// Window is the largest number of unacknowledged messages on a DTLS link: 32.
	Window int
	// HandshakeTimeout bounds DTLS/TLS handshakes: 10 s.
	HandshakeTimeout time.Duration

	// STUNServers are "host:port" addresses of known peers answering STUN, used to gather
	// server-reflexive candidates (RFC 6940 §6.5.1.4). Transport.AddSTUNServer adds more.
	STUNServers []string
	// ICEIncludeLoopback offers loopback host candidates (tests on one machine).
	ICEIncludeLoopback bool
	// ICEInterfaceFilter, if set, chooses the interfaces ICE gathers host candidates on.
	ICEInterfaceFilter func(string) bool
	// ICEGatherTimeout bounds candidate gathering: 3 s.
	ICEGatherTimeout time.Duration
	// ICELogger, if set, receives pion/ice's own logs (default: the Transport's logger at
	// debug level, see internal/pionslog).
	ICELogger logging.LoggerFactory
	// ICECheckTimeout bounds the ICE connectivity checks (failed timeout): 10 s.
	ICECheckTimeout time.Duration
}

func (s *Settings) withDefaults() (Settings, error) {
	c := *s
	if len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil {
		return c, errors.New("link: settings: no certificate")
	}
	if c.Certificate.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate.Certificate[0])
		if err != nil {
			return c, fmt.Errorf("link: settings: parse certificate: %w", err)
		}
		c.Certificate.Leaf = leaf
	}
	if c.VerifyPeer == nil {
		c.VerifyPeer = SelfSignedVerifier(identity.DigestSHA256)
	}
	if c.NodeID.IsZero() {
		ids := identity.NodeIDsFromCert(c.Certificate.Leaf)
		if len(ids) == 0 {
			return c, errors.New("link: settings: certificate carries no Node-ID")
		}
		c.NodeID = ids[0]
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RTO, 500*time.Millisecond)
	def(&c.MinRTO, 100*time.Millisecond)
	def(&c.Keepalive, 2*time.Second)
	def(&c.DeadAfter, 7*time.Second)
	def(&c.StallAfter, time.Second)
	def(&c.TLSRetain, 30*time.Second)
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.ICEGatherTimeout, 3*time.Second)
	def(&c.ICECheckTimeout, 10*time.Second)
	if c.MaxTransmissions <= 0 {
		c.MaxTransmissions = 5
	}
	if c.MTU <= 0 {
		c.MTU = 1200
	}
	if c.MTU < 600 {
		return c, fmt.Errorf("link: settings: MTU %d too small (at least 600)", c.MTU)
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.Window <= 0 {
		c.Window = 32
	}
	if c.Window > 32 {
		c.Window = 32 // the ack bitmask covers 32 sequence numbers (RFC 6940 §6.6.2)
	}
	return c, nil
}
