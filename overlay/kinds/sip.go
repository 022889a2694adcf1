package kinds

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

// SignerFromCert returns the Signer for a certificate: its user name and
// Node-IDs (RFC 6940 §11.3). The signer identity's Node-ID is left zero.
func SignerFromCert(cert *x509.Certificate) *Signer {
	s := &Signer{Cert: cert}
	if u, err := identity.UserFromCert(cert); err == nil {
		s.User = u
	}
	for _, n := range identity.NodeIDsFromCert(cert) {
		s.NodeIDs = append(s.NodeIDs, wire.NodeID(n))
	}
	return s
}

// NormalizeAoR turns a SIP AoR into the resource name it is stored under
// (RFC 7904 §7): the "sip:"/"sips:" scheme is removed, '%' escapes are
// decoded (RFC 3986), URI parameters and headers are dropped and the domain
// is lower-cased, giving user@domain, the form of the certificate's
// rfc822Name.
func NormalizeAoR(aor string) (string, error) {
	s := strings.TrimSpace(aor)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "sip", "sips":
			s = s[i+1:]
		default:
			if !strings.Contains(s[:i], "@") {
				return "", fmt.Errorf("kinds: AoR %q: scheme %q is not sip", aor, s[:i])
			}
		}
	}
	if i := strings.IndexAny(s, ";?"); i >= 0 {
		s = s[:i]
	}
	dec, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("kinds: AoR %q: %w", aor, err)
	}
	user, domain, ok := strings.Cut(dec, "@")
	if !ok || user == "" || domain == "" || strings.Contains(domain, "@") {
		return "", fmt.Errorf("kinds: AoR %q is not user@domain", aor)
	}
	// RFC 3261 §25.1: neither part holds white space or controls, nor the delimiters of a
	// SIP URI; a user holds no ':' (that would start a password). Without this the
	// normalized form would parse differently again ("sip:sip: @x" -> "sip: @x" -> " @x").
	if strings.ContainsFunc(user, badAoRRune(":<>;?")) || strings.ContainsFunc(domain, badAoRRune("<>;?")) {
		return "", fmt.Errorf("kinds: AoR %q has characters a SIP user or domain cannot hold", aor)
	}
	return user + "@" + strings.ToLower(domain), nil
}

// badAoRRune reports white space, controls and the runes in delims.
func badAoRRune(delims string) func(rune) bool {
	return func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(delims, r) }
}

// AoRResourceID is the Resource-ID of the SIP-REGISTRATION of an AoR
// (RFC 7904 §7: the resource name is the AoR; the hash is the overlay's,
// RFC 6940 §10.2).
func AoRResourceID(aor string) (wire.ResourceID, error) {
	n, err := NormalizeAoR(aor)
	if err != nil {
		return nil, err
	}
	return UserResourceID(n), nil
}

// DomainRestriction is the RFC 7904 §3.4 <domain-restriction> of an
// overlay. A nil *DomainRestriction accepts any AoR (element absent).
type DomainRestriction struct {
	Overlay  string           // overlay name, matched when Enable is false
	Enable   bool             // true: match Patterns
	Patterns []*regexp.Regexp // anchored POSIX ERE over the domain
}

// NewDomainRestriction compiles the patterns (POSIX ERE, RFC 7904 §3.4).
func NewDomainRestriction(overlay string, enable bool, patterns []string) (*DomainRestriction, error) {
	d := &DomainRestriction{Overlay: strings.ToLower(overlay), Enable: enable}
	for _, p := range patterns {
		re, err := regexp.CompilePOSIX("^(" + p + ")$")
		if err != nil {
			return nil, fmt.Errorf("kinds: domain pattern %q: %w", p, err)
		}
		d.Patterns = append(d.Patterns, re)
	}
	return d, nil
}

// Allows reports whether AoRs of domain may be registered (RFC 7904 §3.4).
func (d *DomainRestriction) Allows(domain string) bool {
	if d == nil {
		return true
	}
	domain = strings.ToLower(domain)
	if !d.Enable {
		return domain == d.Overlay
	}
	for _, re := range d.Patterns {
		if re.MatchString(domain) {
			return true
		}
	}
	return false
}

// SIPRegistration returns the SIP-REGISTRATION Kind (RFC 7904 §7): kind 1,
// dictionary keyed by the storing peer's Node-ID, USER-NODE-MATCH, values
// checked to be well-formed SipRegistrations. Any AoR domain is accepted.
func SIPRegistration() *Kind { return SIPRegistrationRestricted(nil) }

// SIPRegistrationRestricted is SIPRegistration with the AoR domains
// limited by d (RFC 7904 §3.3, §3.4).
func SIPRegistrationRestricted(d *DomainRestriction) *Kind {
	return &Kind{
		ID: wire.KindSIPRegistration, Name: NameSIPRegistration,
		Model: wire.DataModelDictionary, Policy: UserNodeMatch,
		MaxCount: DefaultSIPMaxCount, MaxSize: DefaultSIPMaxSize,
		Validate: func(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
			return validateSIP(d, v, s)
		},
	}
}

// RFC 7904 §3.3: the AoR (the certificate's user name, which USER-NODE-MATCH
// has already hashed to the Resource-ID) must fall into the overlay's
// namespaces, and the value must be a SipRegistration.
func validateSIP(d *DomainRestriction, v *wire.StoredDataValue, s *Signer) error {
	aor, err := NormalizeAoR(s.User)
	if err != nil {
		return err
	}
	_, domain, _ := strings.Cut(aor, "@")
	if !d.Allows(domain) {
		return fmt.Errorf("AoR %s: domain %s is not served by this overlay (RFC 7904 §3.4)", aor, domain)
	}
	_, err = ParseSipRegistration(v.Data().Value)
	return err
}

// ParseSipRegistration decodes and checks a SIP-REGISTRATION value
// (RFC 7904 §3.2): a uri must be an AoR, a route needs a destination list.
func ParseSipRegistration(b []byte) (*wire.SipRegistration, error) {
	var r wire.SipRegistration
	if err := r.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("SIP-REGISTRATION value: %w", err)
	}
	switch r.Type {
	case wire.SipRegistrationURI:
		if _, err := NormalizeAoR(r.URI); err != nil {
			return nil, fmt.Errorf("SIP-REGISTRATION uri: %w", err)
		}
	case wire.SipRegistrationRoute:
		if len(r.DestinationList) == 0 {
			return nil, errors.New("SIP-REGISTRATION route: empty destination list")
		}
	}
	return &r, nil
}

// RouteRegistration returns the value a phone stores for itself
// (RFC 7904 §3.2): a route whose destination list is its own Node-ID.
func RouteRegistration(self wire.NodeID, contactPrefs string) ([]byte, error) {
	r := wire.SipRegistration{
		Type:            wire.SipRegistrationRoute,
		ContactPrefs:    []byte(contactPrefs),
		DestinationList: []wire.Destination{{Type: wire.DestinationNode, Node: self}},
	}
	return r.MarshalBinary()
}

// URIRegistration returns a value forwarding to another AoR (RFC 7904 §3.1).
func URIRegistration(aor string) ([]byte, error) {
	n, err := NormalizeAoR(aor)
	if err != nil {
		return nil, err
	}
	r := wire.SipRegistration{Type: wire.SipRegistrationURI, URI: "sip:" + n}
	return r.MarshalBinary()
}
