package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// Encode writes a configuration document holding cfgs (RFC 6940 §11.1).
// With a signer, every configuration element and kind-block is signed by it;
// the signer's Node-ID must be listed as configuration-signer (and as
// kind-signer when there are kinds). Encode sets each Config's Raw and
// Signature to what it wrote.
func Encode(signer *identity.Identity, cfgs ...*Config) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, "<overlay xmlns=%q xmlns:chord=%q xmlns:sip=%q xmlns:cp=%q>\n", NSBase, NSChord, NSSIP, NSChordphone)
	for _, c := range cfgs {
		if signer != nil {
			sid := signer.NodeID()
			h := hex.EncodeToString(sid[:])
			if !slices.Contains(c.ConfigurationSigners, h) {
				return nil, fmt.Errorf("encode %s: signer %s is not a configuration-signer", c.InstanceName, h)
			}
			if len(c.Kinds) > 0 && !slices.Contains(c.KindSigners, h) {
				return nil, fmt.Errorf("encode %s: signer %s is not a kind-signer", c.InstanceName, h)
			}
		}
		raw, err := c.encodeConfiguration(signer)
		if err != nil {
			return nil, err
		}
		c.Raw = raw
		b.Write(raw)
		b.WriteString("\n")
		if signer != nil {
			sig, err := SignBlob(raw, signer)
			if err != nil {
				return nil, err
			}
			c.Signature = sig
			c.SignatureAlgorithm = ""
			fmt.Fprintf(&b, "<signature>%s</signature>\n", base64.StdEncoding.EncodeToString(sig))
		}
	}
	b.WriteString("</overlay>\n")
	return b.Bytes(), nil
}

type xw struct{ bytes.Buffer }

func (w *xw) text(s string) { _ = xml.EscapeText(w, []byte(s)) }

func (w *xw) elem(name, val string) {
	fmt.Fprintf(w, "  <%s>", name)
	w.text(val)
	fmt.Fprintf(w, "</%s>\n", name)
}

func (w *xw) attr(name, val string) {
	fmt.Fprintf(w, " %s=\"", name)
	w.text(val)
	w.WriteString(`"`)
}

func b64Lines(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	var b bytes.Buffer
	b.WriteString("\n")
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n  ")
	return b.String()
}

// encodeConfiguration writes the <configuration> element (RFC 6940 §11.1). It is one
// piece: it writes the elements in the schema's order, one after another, as
// parseConfiguration reads them.
func (c *Config) encodeConfiguration(signer *identity.Identity) ([]byte, error) {
	w := &xw{}
	w.WriteString("<configuration")
	w.attr("instance-name", c.InstanceName)
	w.attr("sequence", strconv.Itoa(c.Sequence))
	if !c.Expiration.IsZero() {
		w.attr("expiration", c.Expiration.UTC().Format(time.RFC3339))
	}
	w.WriteString(">\n")
	// Zero values are left out, so that the RFC 6940 §11.1 defaults apply.
	if c.TopologyPlugin != "" {
		w.elem("topology-plugin", c.TopologyPlugin)
	}
	if c.NodeIDLength != 0 {
		w.elem("node-id-length", strconv.Itoa(c.NodeIDLength))
	}
	for _, r := range c.RootCerts {
		fmt.Fprintf(w, "  <root-cert>%s</root-cert>\n", b64Lines(r.Raw))
	}
	for _, e := range c.EnrollmentServers {
		w.elem("enrollment-server", e)
	}
	digest := c.SelfSignedDigest
	if digest == "" {
		digest = identity.DigestSHA256
	}
	fmt.Fprintf(w, "  <self-signed-permitted digest=%q>%t</self-signed-permitted>\n", string(digest), c.SelfSignedPermitted)
	for _, n := range c.BootstrapNodes {
		w.WriteString("  <bootstrap-node")
		w.attr("address", n.Addr().String())
		w.attr("port", strconv.Itoa(int(n.Port())))
		w.WriteString("/>\n")
	}
	w.elem("turn-density", strconv.Itoa(c.TurnDensity))
	w.elem("clients-permitted", strconv.FormatBool(c.ClientsPermitted))
	w.elem("no-ice", strconv.FormatBool(c.NoICE))
	if c.ChordUpdateInterval >= time.Second {
		w.elem("chord:chord-update-interval", strconv.FormatInt(int64(c.ChordUpdateInterval/time.Second), 10))
	}
	if c.ChordPingInterval >= time.Second {
		w.elem("chord:chord-ping-interval", strconv.FormatInt(int64(c.ChordPingInterval/time.Second), 10))
	}
	w.elem("chord:chord-reactive", strconv.FormatBool(c.ChordReactive))
	if c.SharedSecret != "" {
		w.elem("shared-secret", c.SharedSecret)
	}
	if c.MaxMessageSize > 0 {
		w.elem("max-message-size", strconv.Itoa(c.MaxMessageSize))
	}
	if c.InitialTTL > 0 {
		w.elem("initial-ttl", strconv.Itoa(c.InitialTTL))
	}
	if c.OverlayReliabilityTimer > 0 {
		w.elem("overlay-reliability-timer", strconv.FormatInt(c.OverlayReliabilityTimer.Milliseconds(), 10))
	}
	for _, p := range c.OverlayLinkProtocols {
		w.elem("overlay-link-protocol", p)
	}
	for _, s := range c.ConfigurationSigners {
		w.elem("configuration-signer", s)
	}
	for _, s := range c.KindSigners {
		w.elem("kind-signer", s)
	}
	for _, s := range c.BadNodes {
		w.elem("bad-node", s)
	}
	for _, s := range c.MandatoryExtensions {
		w.elem("mandatory-extension", s)
	}
	if c.IdentityKey != "" {
		w.elem("cp:identity-key", c.IdentityKey)
	}
	drInKind := false
	for _, k := range c.Kinds {
		drInKind = drInKind || k.Name == "SIP-REGISTRATION"
	}
	if c.DomainRestriction != nil && !drInKind {
		w.WriteString("  ")
		w.Write(c.DomainRestriction.encode())
		w.WriteString("\n")
	}
	if len(c.Kinds) > 0 {
		w.WriteString("  <required-kinds>\n")
		for i := range c.Kinds {
			k := &c.Kinds[i]
			kw := &xw{}
			kw.WriteString("<kind")
			if k.Name != "" {
				kw.attr("name", k.Name)
			} else {
				kw.attr("id", strconv.FormatUint(uint64(k.ID), 10))
			}
			kw.WriteString(">\n")
			kw.elem("data-model", k.DataModel)
			kw.elem("access-control", k.AccessControl)
			kw.elem("max-count", strconv.Itoa(k.MaxCount))
			kw.elem("max-size", strconv.Itoa(k.MaxSize))
			if k.MaxNodeMultiple > 0 {
				kw.elem("max-node-multiple", strconv.Itoa(k.MaxNodeMultiple))
			}
			if k.Name == "SIP-REGISTRATION" && c.DomainRestriction != nil {
				// RFC 7904 §3.4: a Kind-parameter of the SIP-REGISTRATION kind.
				kw.WriteString("  ")
				kw.Write(c.DomainRestriction.encode())
				kw.WriteString("\n")
			}
			kw.WriteString("</kind>")
			k.Raw = append([]byte(nil), kw.Bytes()...)
			w.WriteString("    <kind-block>\n")
			w.Write(k.Raw)
			w.WriteString("\n")
			if signer != nil {
				sig, err := SignBlob(k.Raw, signer)
				if err != nil {
					return nil, err
				}
				k.Signature = sig
				fmt.Fprintf(w, "    <kind-signature>%s</kind-signature>\n", base64.StdEncoding.EncodeToString(sig))
			}
			w.WriteString("    </kind-block>\n")
		}
		w.WriteString("  </required-kinds>\n")
	}
	w.WriteString("</configuration>")
	return w.Bytes(), nil
}

// encode writes the <sip:domain-restriction> element (RFC 7904 §3.4).
func (d *DomainRestriction) encode() []byte {
	w := &xw{}
	fmt.Fprintf(w, "<sip:domain-restriction enable=\"%t\">", d.Enable)
	for _, p := range d.Patterns {
		w.WriteString("<sip:pattern>")
		w.text(p)
		w.WriteString("</sip:pattern>")
	}
	w.WriteString("</sip:domain-restriction>")
	return w.Bytes()
}
