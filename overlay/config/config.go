// Package config reads, writes, signs and verifies the RELOAD overlay
// configuration document (RFC 6940 §11.1, content type
// application/p2p-overlay+xml), fetches it from a configuration server
// (§11.2), and decides which peer certificates an overlay accepts.
//
// Parse gives typed Config values with the RFC defaults filled in; a bad
// document gives an *Error naming the element and the value at fault.
package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// XML namespaces of RFC 6940 §11.1.
const (
	NSBase  = "urn:ietf:params:xml:ns:p2p:config-base"
	NSChord = "urn:ietf:params:xml:ns:p2p:config-chord"
	// NSSIP is the namespace of RFC 7904 §3.4's domain restriction.
	NSSIP = "urn:ietf:params:xml:ns:p2p:config-base:sip"
	// NSChordphone holds Chordphone's own, non-mandatory extension elements
	// (identity-key); other implementations ignore them (§11.1).
	NSChordphone = "urn:chordphone:config"
)

// ContentType is the MIME type of a configuration document (RFC 6940 §11.1).
const ContentType = "application/p2p-overlay+xml"

// TopologyChord is the only topology plug-in (RFC 6940 §10).
const TopologyChord = "CHORD-RELOAD"

// DefaultPort is the default bootstrap-node port (RFC 6940 §11.1).
const DefaultPort = 6084

// Defaults of RFC 6940 §11.1 and §10.7.4.
const (
	DefaultNodeIDLength            = 16
	DefaultMaxMessageSize          = 5000
	DefaultInitialTTL              = 100
	DefaultOverlayReliabilityTimer = 3000 * time.Millisecond
	DefaultChordUpdateInterval     = 600 * time.Second  // §10.7.4.1 "about every ten minutes"
	DefaultChordPingInterval       = 3600 * time.Second // §10.7.4.2
	DefaultTurnDensity             = 1
)

// Kind is one kind-block of required-kinds (RFC 6940 §11.1).
type Kind struct {
	Name            string // IANA name, or "" when ID is used
	ID              uint32 // private Kind-ID, when Name is ""
	DataModel       string // SINGLE, ARRAY, DICTIONARY
	AccessControl   string // USER-MATCH, NODE-MATCH, USER-NODE-MATCH, NODE-MULTIPLE
	MaxCount        int
	MaxSize         int
	MaxNodeMultiple int // NODE-MULTIPLE only

	// Signature is the decoded kind-signature (a SecurityBlock), if any.
	Signature          []byte
	SignatureAlgorithm string
	// Raw is the kind element exactly as in the document (signed bytes).
	Raw []byte
}

// Config is one configuration element: the settings of one overlay.
type Config struct {
	InstanceName string    // overlay name
	Sequence     int       // 0..65534
	Expiration   time.Time // zero when absent

	TopologyPlugin          string
	NodeIDLength            int
	RootCerts               []*x509.Certificate
	EnrollmentServers       []string
	SelfSignedPermitted     bool
	SelfSignedDigest        identity.Digest
	BootstrapNodes          []netip.AddrPort
	TurnDensity             int
	ClientsPermitted        bool
	NoICE                   bool
	ChordUpdateInterval     time.Duration
	ChordPingInterval       time.Duration
	ChordReactive           bool
	SharedSecret            string
	MaxMessageSize          int
	InitialTTL              int
	OverlayReliabilityTimer time.Duration
	OverlayLinkProtocols    []string
	ConfigurationSigners    []string // Node-IDs, lower-case hex
	KindSigners             []string // Node-IDs, lower-case hex
	BadNodes                []string // Node-IDs, lower-case hex
	MandatoryExtensions     []string
	Kinds                   []Kind
	// DomainRestriction is RFC 7904 §3.4's <sip:domain-restriction>: nil
	// when absent (any AoR domain is accepted).
	DomainRestriction *DomainRestriction
	// IdentityKey is the key type the overlay's certificates use
	// (identity.KeyNameRSA2048 or KeyNameECDSAP256; "" for any): phones
	// enrolling make a key of this type and the enrollment server issues
	// only for it. A Chordphone extension element (NSChordphone).
	IdentityKey string

	// Raw is the configuration element exactly as in the document, from
	// "<configuration" to "</configuration>": the bytes the signature covers.
	Raw []byte
	// Signature is the decoded signature element that followed the
	// configuration (a SecurityBlock, RFC 6940 §6.3.4), nil if unsigned.
	Signature          []byte
	SignatureAlgorithm string
	// Document is the whole document this configuration came from (set by
	// Parse), for keeping it in the profile: ParseOverlay(Document, name)
	// gives this configuration back, and it is the VerifyOptions.Previous
	// of the next fetch.
	Document []byte
}

// DomainRestriction is the AoR domain restriction of RFC 7904 §3.4.
type DomainRestriction struct {
	// Enable true: AoRs must match one of Patterns (POSIX extended regular
	// expressions over the domain); false: only the overlay's own domain.
	Enable   bool
	Patterns []string
}

// New returns a configuration for overlay name with every default of RFC
// 6940 §11.1.
func New(name string) *Config {
	return &Config{
		InstanceName:            name,
		TopologyPlugin:          TopologyChord,
		NodeIDLength:            DefaultNodeIDLength,
		SelfSignedDigest:        identity.DigestSHA256,
		TurnDensity:             DefaultTurnDensity,
		ClientsPermitted:        true,
		ChordUpdateInterval:     DefaultChordUpdateInterval,
		ChordPingInterval:       DefaultChordPingInterval,
		ChordReactive:           true,
		MaxMessageSize:          DefaultMaxMessageSize,
		InitialTTL:              DefaultInitialTTL,
		OverlayReliabilityTimer: DefaultOverlayReliabilityTimer,
		OverlayLinkProtocols:    []string{"TLS"},
	}
}

// SelfSigned returns the configuration of an overlay with no operator: any
// peer joins with a self-signed certificate whose Node-ID is the SHA-256 of
// its key (RFC 6940 §11.3.1). Chordphone's zero-configuration LAN overlay
// uses it.
func SelfSigned(name string) *Config {
	c := New(name)
	c.SelfSignedPermitted = true
	return c
}

// LANOverlay is the name of Chordphone's zero-configuration overlay: the
// peers of one local network, found by DNS-SD over mDNS (package
// discovery), with self-signed certificates.
const LANOverlay = "local.chordphone" // = app/peer.DefaultOverlay

// LAN returns the configuration of the zero-configuration LAN overlay.
func LAN() *Config { return SelfSigned(LANOverlay) }

// Kind returns the kind-block with the given IANA name.
func (c *Config) Kind(name string) (Kind, bool) {
	for _, k := range c.Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Expired reports whether the configuration's expiration is before now.
func (c *Config) Expired(now time.Time) bool {
	return !c.Expiration.IsZero() && now.After(c.Expiration)
}

// RefreshAt returns when to fetch a new copy of the configuration: a random
// time in the second half of the time left before expiration (RFC 6940
// §11.1: "at a randomly selected time that is before the expiration
// time"). It returns the zero time when the configuration does not expire.
func (c *Config) RefreshAt(now time.Time) time.Time {
	if c.Expiration.IsZero() {
		return time.Time{}
	}
	left := c.Expiration.Sub(now)
	if left <= 0 {
		return now
	}
	return now.Add(left/2 + time.Duration(rand.Int64N(int64(left/2)+1)))
}

// SupportedExtensions are the mandatory-extension namespaces this
// implementation supports (none beyond the base and chord namespaces).
var SupportedExtensions = map[string]bool{NSBase: true, NSChord: true}

// Supported reports whether this implementation can join the overlay: it
// has CHORD-RELOAD, 128-bit Node-IDs, the TLS/DTLS link protocols, no
// shared-secret security, and no unknown mandatory extension.
func (c *Config) Supported() error {
	if c.TopologyPlugin != TopologyChord {
		return fmt.Errorf("overlay %s uses topology %q; Chordphone supports only %s", c.InstanceName, c.TopologyPlugin, TopologyChord)
	}
	if c.NodeIDLength != identity.NodeIDLen {
		return fmt.Errorf("overlay %s uses %d-byte Node-IDs; Chordphone supports only %d", c.InstanceName, c.NodeIDLength, identity.NodeIDLen)
	}
	tls := false
	for _, p := range c.OverlayLinkProtocols {
		tls = tls || p == "TLS"
	}
	if !tls {
		return fmt.Errorf("overlay %s allows link protocols %v; Chordphone speaks only TLS/DTLS", c.InstanceName, c.OverlayLinkProtocols)
	}
	for _, x := range c.MandatoryExtensions {
		if !SupportedExtensions[x] {
			return fmt.Errorf("overlay %s requires extension %q, which Chordphone does not support", c.InstanceName, x)
		}
	}
	if len(c.RootCerts) == 0 && !c.SelfSignedPermitted {
		if c.SharedSecret != "" {
			return fmt.Errorf("overlay %s uses shared-secret security, which Chordphone does not support", c.InstanceName)
		}
		return fmt.Errorf("overlay %s has no root-cert and does not permit self-signed certificates: no peer could be trusted", c.InstanceName)
	}
	return nil
}

// NeedsEnrollment reports whether a peer must get its certificate from an
// enrollment server (RFC 6940 §11.3).
func (c *Config) NeedsEnrollment() bool {
	return len(c.EnrollmentServers) > 0 && !c.SelfSignedPermitted
}

// Error is a problem with a configuration document.
type Error struct {
	Element string // e.g. "max-message-size", "kind name=\"SIP-REGISTRATION\"/max-count"
	Value   string // offending value, if any
	Msg     string
	Err     error
}

func (e *Error) Error() string {
	s := "overlay configuration"
	if e.Element != "" {
		s += ": <" + e.Element + ">"
	}
	if e.Value != "" {
		v := e.Value
		if len(v) > 60 {
			v = v[:60] + "..."
		}
		s += fmt.Sprintf(" value %q", v)
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrBadSignature is wrapped by signature verification failures.
var ErrBadSignature = errors.New("configuration signature does not verify")

// ErrUnsigned is returned when a document must be signed but is not.
var ErrUnsigned = errors.New("configuration is not signed")
