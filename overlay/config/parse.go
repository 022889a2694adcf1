package config

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// MaxDocumentSize bounds a configuration document.
const MaxDocumentSize = 1 << 20

const (
	maxDepth    = 32
	maxElements = 10000
)

// elem is a parsed XML element with the byte range it covers.
type elem struct {
	name       xml.Name
	attr       []xml.Attr
	text       strings.Builder
	kids       []*elem
	start, end int64
}

func (e *elem) attrVal(local string) (string, bool) {
	for _, a := range e.attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == NSBase) {
			return a.Value, true
		}
	}
	return "", false
}

func parseTree(data []byte) (*elem, error) {
	if len(data) > MaxDocumentSize {
		return nil, &Error{Msg: fmt.Sprintf("document is %d bytes, more than the %d allowed", len(data), MaxDocumentSize)}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		// RFC 6940 §11.1: "The file MUST use the UTF-8 character encoding."
		return nil, fmt.Errorf("encoding %q declared; the document must be UTF-8", label)
	}
	var root *elem
	var stack []*elem
	n := 0
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &Error{Msg: "not well-formed XML", Err: err}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n++
			if n > maxElements || len(stack) >= maxDepth {
				return nil, &Error{Msg: "document is too large or too deeply nested"}
			}
			e := &elem{name: t.Name, attr: t.Copy().Attr, start: off}
			if len(stack) == 0 {
				if root != nil {
					return nil, &Error{Msg: "more than one root element"}
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			e := stack[len(stack)-1]
			e.end = d.InputOffset()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, &Error{Msg: "text outside the root element"}
			}
		}
	}
	if root == nil {
		return nil, &Error{Msg: "empty document"}
	}
	return root, nil
}

// Parse parses a configuration document and returns its configuration
// elements in order, with defaults filled in and each element's Raw bytes
// and following signature kept for Verify. Parse does not check signatures.
func Parse(data []byte) ([]*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark (Windows editors)
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if root.name.Local != "overlay" || root.name.Space != NSBase {
		return nil, &Error{Element: root.name.Local, Msg: fmt.Sprintf("root element must be <overlay xmlns=%q>", NSBase)}
	}
	var out []*Config
	for _, k := range root.kids {
		switch {
		case k.name.Space == NSBase && k.name.Local == "configuration":
			c, err := parseConfiguration(k, data)
			if err != nil {
				return nil, err
			}
			c.Raw = append([]byte(nil), data[k.start:k.end]...)
			c.Document = data
			out = append(out, c)
		case k.name.Space == NSBase && k.name.Local == "signature":
			if len(out) == 0 {
				return nil, &Error{Element: "signature", Msg: "signature before any configuration"}
			}
			last := out[len(out)-1]
			if last.Signature != nil {
				continue // RFC 6940 §11.1 allows several; the first is used
			}
			sig, err := decodeB64(k.text.String())
			if err != nil {
				return nil, &Error{Element: "signature", Value: k.text.String(), Msg: "not base64", Err: err}
			}
			last.Signature = sig
			last.SignatureAlgorithm, _ = k.attrVal("algorithm")
		case k.name.Space == NSBase || k.name.Space == NSChord || k.name.Space == "":
			return nil, &Error{Element: k.name.Local, Msg: "unknown element in <overlay>"}
		default:
			// foreign element: ignored (RFC 6940 §11.1.1 foreign-elements)
		}
	}
	if len(out) == 0 {
		return nil, &Error{Element: "overlay", Msg: "no <configuration> element"}
	}
	return out, nil
}

// ParseOverlay parses a document and returns the configuration whose
// instance-name is name; with name "" the first one.
func ParseOverlay(data []byte, name string) (*Config, error) {
	cs, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return cs[0], nil
	}
	var names []string
	for _, c := range cs {
		if strings.EqualFold(c.InstanceName, name) {
			return c, nil
		}
		names = append(names, c.InstanceName)
	}
	return nil, &Error{Element: "configuration", Msg: fmt.Sprintf("no configuration for overlay %q (document has %s)", name, strings.Join(names, ", "))}
}

func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

func parseBool(el, s string) (bool, error) {
	switch strings.TrimSpace(s) { // xsd:boolean lexical forms (RFC 6940 §11.1)
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, &Error{Element: el, Value: s, Msg: `not a boolean (use "true" or "false")`}
}

func parseInt(el, s string, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, &Error{Element: el, Value: s, Msg: "not an integer"}
	}
	if v < lo || v > hi {
		return 0, &Error{Element: el, Value: s, Msg: fmt.Sprintf("out of range %d..%d", lo, hi)}
	}
	return v, nil
}

func parseNodeIDHex(el, s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 20 {
		return "", &Error{Element: el, Value: s, Msg: "not a hexadecimal Node-ID"}
	}
	return s, nil
}

// parseConfiguration reads the <configuration> element (RFC 6940 §11.1). It is one piece:
// one switch case per element of the schema, in the schema's order, so that each element's
// rule is found where the schema names it.
func parseConfiguration(e *elem, data []byte) (*Config, error) {
	name, ok := e.attrVal("instance-name")
	if !ok || strings.TrimSpace(name) == "" {
		return nil, &Error{Element: "configuration", Msg: "missing instance-name attribute (the overlay name)"}
	}
	c := New(strings.TrimSpace(name))
	if err := identity.ValidOverlayName(c.InstanceName); err != nil {
		return nil, &Error{Element: "configuration", Value: name, Msg: "bad instance-name", Err: err}
	}
	if s, ok := e.attrVal("sequence"); ok {
		v, err := parseInt("configuration sequence", s, 0, 1<<16-2) // RFC 6940 §11.1
		if err != nil {
			return nil, err
		}
		c.Sequence = int(v)
	}
	if s, ok := e.attrVal("expiration"); ok {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return nil, &Error{Element: "configuration expiration", Value: s, Msg: "not an RFC 3339 date-time", Err: err}
		}
		c.Expiration = t.UTC()
	}
	seen := map[string]bool{}
	single := func(el string) error {
		if seen[el] {
			return &Error{Element: el, Msg: "may appear only once"}
		}
		seen[el] = true
		return nil
	}
	linkProtoSet := false
	for _, k := range e.kids {
		el := k.name.Local
		txt := k.text.String()
		val := strings.TrimSpace(txt)
		if k.name.Space == NSChord {
			if err := single("chord:" + el); err != nil {
				return nil, err
			}
			switch el {
			case "chord-update-interval":
				v, err := parseInt(el, txt, 1, 1<<31-1)
				if err != nil {
					return nil, err
				}
				c.ChordUpdateInterval = time.Duration(v) * time.Second
			case "chord-ping-interval":
				v, err := parseInt(el, txt, 1, 1<<31-1)
				if err != nil {
					return nil, err
				}
				c.ChordPingInterval = time.Duration(v) * time.Second
			case "chord-reactive":
				b, err := parseBool(el, txt)
				if err != nil {
					return nil, err
				}
				c.ChordReactive = b
			default:
				return nil, &Error{Element: "chord:" + el, Msg: "unknown element in the config-chord namespace"}
			}
			continue
		}
		if k.name.Space == NSSIP && (el == "domain-restriction" || el == "domain-restrictions") {
			if err := single("sip:domain-restriction"); err != nil {
				return nil, err
			}
			d, err := parseDomainRestriction(k)
			if err != nil {
				return nil, err
			}
			c.DomainRestriction = d
			continue
		}
		if k.name.Space == NSChordphone && el == "identity-key" {
			if err := single("identity-key"); err != nil {
				return nil, err
			}
			kt, err := identity.ParseKeyType(val)
			if err != nil {
				return nil, &Error{Element: "identity-key", Value: val, Msg: "unknown key type", Err: err}
			}
			c.IdentityKey = kt.String()
			continue
		}
		if k.name.Space != NSBase {
			if k.name.Space == "" {
				return nil, &Error{Element: el, Msg: "element has no namespace"}
			}
			continue // foreign element (extension): ignored
		}
		switch el {
		case "topology-plugin", "node-id-length", "self-signed-permitted", "turn-density", "clients-permitted",
			"no-ice", "shared-secret", "max-message-size", "initial-ttl", "overlay-reliability-timer", "required-kinds":
			if err := single(el); err != nil {
				return nil, err
			}
		}
		switch el {
		case "topology-plugin":
			c.TopologyPlugin = val
		case "node-id-length":
			v, err := parseInt(el, txt, 16, 20) // RFC 6940 §11.1
			if err != nil {
				return nil, err
			}
			c.NodeIDLength = int(v)
		case "root-cert":
			der, err := decodeB64(txt)
			if err != nil {
				return nil, &Error{Element: el, Value: val, Msg: "not base64", Err: err}
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, &Error{Element: el, Value: val, Msg: "not an X.509 certificate", Err: err}
			}
			c.RootCerts = append(c.RootCerts, cert)
		case "enrollment-server":
			u, err := url.Parse(val)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return nil, &Error{Element: el, Value: val, Msg: "must be an https: URL"} // RFC 6940 §11.1
			}
			c.EnrollmentServers = append(c.EnrollmentServers, val)
		case "self-signed-permitted":
			b, err := parseBool(el, txt)
			if err != nil {
				return nil, err
			}
			c.SelfSignedPermitted = b
			if d, ok := k.attrVal("digest"); ok {
				switch identity.Digest(strings.TrimSpace(d)) {
				case identity.DigestSHA1, identity.DigestSHA256:
					c.SelfSignedDigest = identity.Digest(strings.TrimSpace(d))
				default:
					return nil, &Error{Element: el + " digest", Value: d, Msg: `unknown digest (use "sha1" or "sha256")`}
				}
			}
		case "bootstrap-node":
			a, ok := k.attrVal("address")
			if !ok {
				return nil, &Error{Element: el, Msg: "missing address attribute"}
			}
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil {
				return nil, &Error{Element: el + " address", Value: a, Msg: "not an IPv4 or IPv6 address"}
			}
			port := int64(DefaultPort)
			if p, ok := k.attrVal("port"); ok {
				if port, err = parseInt(el+" port", p, 1, 65535); err != nil {
					return nil, err
				}
			}
			c.BootstrapNodes = append(c.BootstrapNodes, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		case "turn-density":
			v, err := parseInt(el, txt, 0, 255)
			if err != nil {
				return nil, err
			}
			c.TurnDensity = int(v)
		case "clients-permitted":
			b, err := parseBool(el, txt)
			if err != nil {
				return nil, err
			}
			c.ClientsPermitted = b
		case "no-ice":
			b, err := parseBool(el, txt)
			if err != nil {
				return nil, err
			}
			c.NoICE = b
		case "shared-secret":
			c.SharedSecret = val
		case "max-message-size":
			v, err := parseInt(el, txt, 1, 1<<32-1)
			if err != nil {
				return nil, err
			}
			c.MaxMessageSize = int(v)
		case "initial-ttl":
			v, err := parseInt(el, txt, 1, 255) // TTL is a uint8 (RFC 6940 §6.3.2)
			if err != nil {
				return nil, err
			}
			c.InitialTTL = int(v)
		case "overlay-reliability-timer":
			v, err := parseInt(el, txt, 200, 1<<31-1) // "MUST be at least 200 milliseconds"
			if err != nil {
				return nil, err
			}
			c.OverlayReliabilityTimer = time.Duration(v) * time.Millisecond
		case "overlay-link-protocol":
			if !linkProtoSet {
				c.OverlayLinkProtocols = nil // RFC 6940 §11.1: "no default value applies"
				linkProtoSet = true
			}
			c.OverlayLinkProtocols = append(c.OverlayLinkProtocols, val)
		case "configuration-signer", "kind-signer", "bad-node":
			h, err := parseNodeIDHex(el, txt)
			if err != nil {
				return nil, err
			}
			switch el {
			case "configuration-signer":
				c.ConfigurationSigners = append(c.ConfigurationSigners, h)
			case "kind-signer":
				c.KindSigners = append(c.KindSigners, h)
			default:
				c.BadNodes = append(c.BadNodes, h)
			}
		case "mandatory-extension":
			c.MandatoryExtensions = append(c.MandatoryExtensions, val)
		case "required-kinds":
			for _, kb := range k.kids {
				if kb.name.Space != NSBase || kb.name.Local != "kind-block" {
					if kb.name.Space == NSBase || kb.name.Space == "" {
						return nil, &Error{Element: "required-kinds/" + kb.name.Local, Msg: "unknown element (want kind-block)"}
					}
					continue
				}
				kind, dr, err := parseKindBlock(kb, data)
				if err != nil {
					return nil, err
				}
				if dr != nil {
					if err := single("sip:domain-restriction"); err != nil {
						return nil, err
					}
					c.DomainRestriction = dr
				}
				c.Kinds = append(c.Kinds, kind)
			}
		default:
			return nil, &Error{Element: el, Msg: "unknown element in the config-base namespace"}
		}
	}
	if c.TopologyPlugin == "" {
		return nil, &Error{Element: "topology-plugin", Msg: "empty"}
	}
	return c, nil
}

// parseDomainRestriction reads RFC 7904 §3.4's element: attribute enable
// and <sip:pattern> children (POSIX ERE, checked here so that a bad one is
// a configuration error, not a store that fails later).
func parseDomainRestriction(e *elem) (*DomainRestriction, error) {
	d := &DomainRestriction{}
	if v, ok := e.attrVal("enable"); ok {
		b, err := parseBool("sip:domain-restriction enable", v)
		if err != nil {
			return nil, err
		}
		d.Enable = b
	}
	for _, p := range e.kids {
		if p.name.Space != NSSIP || p.name.Local != "pattern" {
			return nil, &Error{Element: "sip:domain-restriction/" + p.name.Local, Msg: "unknown element (want sip:pattern)"}
		}
		pat := strings.TrimSpace(p.text.String())
		if _, err := regexp.CompilePOSIX("^(" + pat + ")$"); err != nil {
			return nil, &Error{Element: "sip:pattern", Value: pat, Msg: "not a POSIX extended regular expression", Err: err}
		}
		d.Patterns = append(d.Patterns, pat)
	}
	if !d.Enable && len(d.Patterns) > 0 {
		// RFC 7904 §3.4: "A <pattern> element MAY be present if the enable attribute ... is set to true".
		return nil, &Error{Element: "sip:domain-restriction", Msg: "patterns given but enable is not true"}
	}
	return d, nil
}

// parseKindBlock reads a kind-block; for SIP-REGISTRATION it also returns
// the RFC 7904 §3.4 domain restriction, a Kind-parameter of that kind.
// parseKindBlock reads one <kind-block> (RFC 6940 §11.1). It is one piece for the reason
// parseConfiguration is: one case per element of the schema.
func parseKindBlock(kb *elem, data []byte) (k Kind, dr *DomainRestriction, err error) {
	var kindEl *elem
	for _, x := range kb.kids {
		if x.name.Space != NSBase {
			continue
		}
		switch x.name.Local {
		case "kind":
			if kindEl != nil {
				return k, nil, &Error{Element: "kind-block", Msg: "more than one <kind>"}
			}
			kindEl = x
		case "kind-signature":
			sig, err := decodeB64(x.text.String())
			if err != nil {
				return k, nil, &Error{Element: "kind-signature", Value: x.text.String(), Msg: "not base64", Err: err}
			}
			k.Signature = sig
			k.SignatureAlgorithm, _ = x.attrVal("algorithm")
		default:
			return k, nil, &Error{Element: "kind-block/" + x.name.Local, Msg: "unknown element"}
		}
	}
	if kindEl == nil {
		return k, nil, &Error{Element: "kind-block", Msg: "missing <kind>"}
	}
	label := "kind"
	name, hasName := kindEl.attrVal("name")
	id, hasID := kindEl.attrVal("id")
	switch {
	case hasName && hasID:
		return k, nil, &Error{Element: "kind", Msg: "has both name and id attributes"}
	case hasName:
		k.Name = strings.TrimSpace(name)
		if k.Name == "" {
			return k, nil, &Error{Element: "kind", Msg: "empty name attribute"}
		}
		label = fmt.Sprintf("kind name=%q", k.Name)
	case hasID:
		v, err := parseInt("kind id", id, 1, 1<<32-1)
		if err != nil {
			return k, nil, err
		}
		k.ID = uint32(v)
		label = fmt.Sprintf("kind id=%q", id)
	default:
		return k, nil, &Error{Element: "kind", Msg: "needs a name or an id attribute"}
	}
	seen := map[string]bool{}
	for _, x := range kindEl.kids {
		if x.name.Space == NSSIP && (x.name.Local == "domain-restriction" || x.name.Local == "domain-restrictions") {
			if dr, err = parseDomainRestriction(x); err != nil {
				return k, nil, err
			}
			continue
		}
		if x.name.Space != NSBase {
			continue // kind extension
		}
		el := label + "/" + x.name.Local
		if seen[x.name.Local] {
			return k, nil, &Error{Element: el, Msg: "may appear only once"}
		}
		seen[x.name.Local] = true
		txt := x.text.String()
		switch x.name.Local {
		case "data-model":
			k.DataModel = strings.TrimSpace(txt)
		case "access-control":
			k.AccessControl = strings.TrimSpace(txt)
		case "max-count", "max-size", "max-node-multiple":
			v, err := parseInt(el, txt, 0, 1<<31-1)
			if err != nil {
				return k, nil, err
			}
			switch x.name.Local {
			case "max-count":
				k.MaxCount = int(v)
			case "max-size":
				k.MaxSize = int(v)
			default:
				if v < 1 {
					return k, nil, &Error{Element: el, Value: txt, Msg: "must be greater than 0"}
				}
				k.MaxNodeMultiple = int(v)
			}
		default:
			return k, nil, &Error{Element: el, Msg: "unknown element"}
		}
	}
	// RFC 6940 §11.1: "the kind element MUST contain" these.
	for _, req := range []string{"data-model", "access-control", "max-count", "max-size"} {
		if !seen[req] {
			return k, nil, &Error{Element: label, Msg: "missing <" + req + ">"}
		}
	}
	if k.AccessControl == "NODE-MULTIPLE" && k.MaxNodeMultiple == 0 {
		return k, nil, &Error{Element: label, Msg: "NODE-MULTIPLE needs <max-node-multiple>"}
	}
	k.Raw = append([]byte(nil), data[kindEl.start:kindEl.end]...)
	return k, dr, nil
}
