package config

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

func TestParseRFCExample(t *testing.T) {
	doc, err := os.ReadFile("testdata/rfc6940-example.xml")
	if err != nil {
		t.Fatal(err)
	}
	// The RFC example deliberately has a root-cert that is not a certificate.
	_, err = Parse(doc)
	var ce *Error
	if !errors.As(err, &ce) || ce.Element != "root-cert" || !strings.Contains(err.Error(), "not an X.509 certificate") {
		t.Fatalf("bad root-cert: %v", err)
	}
	doc = bytes.Replace(doc, []byte("<root-cert> YmFkIGNlcnQK </root-cert>"), nil, 1)
	cs, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[1].InstanceName != "other.example.net" || cs[1].Signature == nil {
		t.Fatalf("configs %d", len(cs))
	}
	c := cs[0]
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.0.1:6084"), netip.MustParseAddrPort("192.0.2.2:6084"), netip.MustParseAddrPort("[2001:db8::1]:6084")}
	switch {
	case c.InstanceName != "overlay.example.org", c.Sequence != 22, !c.Expiration.Equal(time.Date(2002, 10, 10, 7, 0, 0, 0, time.UTC)):
		t.Errorf("attrs %q %d %v", c.InstanceName, c.Sequence, c.Expiration)
	case c.TopologyPlugin != TopologyChord, c.NodeIDLength != 16, len(c.RootCerts) != 1:
		t.Errorf("topology %q %d %d", c.TopologyPlugin, c.NodeIDLength, len(c.RootCerts))
	case len(c.EnrollmentServers) != 2, c.SelfSignedPermitted, c.SelfSignedDigest != identity.DigestSHA1:
		t.Errorf("enrollment %v %v %v", c.EnrollmentServers, c.SelfSignedPermitted, c.SelfSignedDigest)
	case !slicesEqual(c.BootstrapNodes, want):
		t.Errorf("bootstrap %v", c.BootstrapNodes)
	case c.TurnDensity != 20, c.ClientsPermitted, c.NoICE:
		t.Errorf("turn %d clients %v noice %v", c.TurnDensity, c.ClientsPermitted, c.NoICE)
	case c.ChordUpdateInterval != 400*time.Second, c.ChordPingInterval != 30*time.Second, !c.ChordReactive:
		t.Errorf("chord %v %v %v", c.ChordUpdateInterval, c.ChordPingInterval, c.ChordReactive)
	case c.SharedSecret != "password", c.MaxMessageSize != 4000, c.InitialTTL != 30, c.OverlayReliabilityTimer != 3*time.Second:
		t.Errorf("misc %q %d %d %v", c.SharedSecret, c.MaxMessageSize, c.InitialTTL, c.OverlayReliabilityTimer)
	case len(c.OverlayLinkProtocols) != 1, len(c.ConfigurationSigners) != 1, len(c.KindSigners) != 2, len(c.BadNodes) != 2:
		t.Errorf("lists %v %v %v %v", c.OverlayLinkProtocols, c.ConfigurationSigners, c.KindSigners, c.BadNodes)
	case len(c.MandatoryExtensions) != 1 || c.MandatoryExtensions[0] != "urn:ietf:params:xml:ns:p2p:config-ext1":
		t.Errorf("extensions %v", c.MandatoryExtensions)
	case len(c.Kinds) != 2:
		t.Errorf("kinds %v", c.Kinds)
	}
	sip, ok := c.Kind("SIP-REGISTRATION")
	if !ok || sip.DataModel != "SINGLE" || sip.AccessControl != "USER-MATCH" || sip.MaxCount != 1 || sip.MaxSize != 100 || sip.Signature == nil {
		t.Errorf("SIP-REGISTRATION kind %+v", sip)
	}
	if k := c.Kinds[1]; k.ID != 2000 || k.MaxNodeMultiple != 3 || k.MaxCount != 22 || !bytes.HasPrefix(k.Raw, []byte(`<kind id="2000">`)) || !bytes.HasSuffix(k.Raw, []byte("</kind>")) {
		t.Errorf("kind 2000 %+v", k)
	}
	if !bytes.HasPrefix(c.Raw, []byte("<configuration instance-name")) || !bytes.HasSuffix(c.Raw, []byte("</configuration>")) {
		t.Errorf("raw %q...%q", c.Raw[:30], c.Raw[len(c.Raw)-20:])
	}
	// The example requires an extension we do not have, and its signature is a placeholder.
	if err := c.Supported(); err == nil || !strings.Contains(err.Error(), "config-ext1") {
		t.Errorf("supported: %v", err)
	}
	if err := c.Verify(VerifyOptions{Now: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("placeholder signature verified")
	}
	if err := c.Verify(VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired config: %v", err)
	}
	if _, err := ParseOverlay(doc, "nope.example"); err == nil || !strings.Contains(err.Error(), "overlay.example.org, other.example.net") {
		t.Errorf("missing overlay: %v", err)
	}
	if c2, err := ParseOverlay(doc, "OTHER.example.net"); err != nil || c2.MaxMessageSize != DefaultMaxMessageSize || c2.InitialTTL != DefaultInitialTTL {
		t.Errorf("defaults: %v %+v", err, c2)
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	wrap := func(inner string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><overlay xmlns="` + NSBase + `" xmlns:chord="` + NSChord + `"><configuration instance-name="o.example">` + inner + `</configuration></overlay>`
	}
	for _, tc := range []struct{ doc, want string }{
		{"", "empty document"},
		{"<overlay", "not well-formed"},
		{`<overlay><configuration instance-name="x"/></overlay>`, `root element must be <overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base">`},
		{`<?xml version="1.0" encoding="ISO-8859-1"?><overlay xmlns="` + NSBase + `"/>`, "must be UTF-8"},
		{`<overlay xmlns="` + NSBase + `"></overlay>`, "no <configuration> element"},
		{`<overlay xmlns="` + NSBase + `"><configuration/></overlay>`, "missing instance-name"},
		{`<overlay xmlns="` + NSBase + `"><configuration instance-name="bad name!"/></overlay>`, "bad instance-name"},
		{wrap(`<max-message-size>big</max-message-size>`), `<max-message-size> value "big": not an integer`},
		{wrap(`<node-id-length>8</node-id-length>`), `<node-id-length> value "8": out of range 16..20`},
		{wrap(`<initial-ttl>300</initial-ttl>`), `<initial-ttl> value "300": out of range`},
		{wrap(`<overlay-reliability-timer>100</overlay-reliability-timer>`), `<overlay-reliability-timer> value "100": out of range 200`},
		{wrap(`<no-ice>yes</no-ice>`), `<no-ice> value "yes": not a boolean`},
		{wrap(`<chord:chord-reactive>maybe</chord:chord-reactive>`), `<chord-reactive> value "maybe"`},
		{wrap(`<chord-ping-interval>5</chord-ping-interval>`), `<chord-ping-interval>: unknown element in the config-base namespace`},
		{wrap(`<bootstrap-node address="peer.example"/>`), `<bootstrap-node address> value "peer.example": not an IPv4 or IPv6 address`},
		{wrap(`<bootstrap-node address="10.0.0.1" port="70000"/>`), `<bootstrap-node port> value "70000"`},
		{wrap(`<enrollment-server>http://e.example</enrollment-server>`), `<enrollment-server> value "http://e.example": must be an https: URL`},
		{wrap(`<self-signed-permitted digest="md5">true</self-signed-permitted>`), `unknown digest`},
		{wrap(`<configuration-signer>xyz</configuration-signer>`), `<configuration-signer> value "xyz": not a hexadecimal Node-ID`},
		{wrap(`<turn-density>1</turn-density><turn-density>2</turn-density>`), `<turn-density>: may appear only once`},
		{wrap(`<required-kinds><kind-block><kind name="K"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control><max-size>1</max-size></kind></kind-block></required-kinds>`), `<kind name="K">: missing <max-count>`},
		{wrap(`<required-kinds><kind-block><kind name="K"><data-model>ARRAY</data-model><access-control>NODE-MULTIPLE</access-control><max-size>1</max-size><max-count>1</max-count></kind></kind-block></required-kinds>`), `NODE-MULTIPLE needs <max-node-multiple>`},
		{wrap(`<required-kinds><kind-block><kind><data-model>SINGLE</data-model></kind></kind-block></required-kinds>`), `needs a name or an id`},
		{wrap(`<required-kinds><kind-block><kind id="x"/></kind-block></required-kinds>`), `<kind id> value "x": not an integer`},
		{wrap(`<root-cert>!!!</root-cert>`), `<root-cert> value "!!!": not base64`},
		{wrap(`<frobnicate/>`), `<frobnicate>: unknown element`},
		{`<overlay xmlns="` + NSBase + `"><signature>AAAA</signature><configuration instance-name="o.example"/></overlay>`, "signature before any configuration"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("doc %.60q:\n got  %v\n want …%s…", tc.doc, err, tc.want)
		}
	}
}

func TestExtensionsIgnoredAndDefaults(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<overlay xmlns="` + NSBase + `" xmlns:x="urn:example:x"><x:note>hi</x:note>
<configuration instance-name="o.example" x:a="1"><x:thing><deep/></x:thing>
<overlay-link-protocol>DTLS</overlay-link-protocol></configuration></overlay>`
	c, err := ParseOverlay([]byte(doc), "o.example")
	if err != nil {
		t.Fatal(err)
	}
	d := New("o.example")
	if c.NodeIDLength != d.NodeIDLength || c.ChordUpdateInterval != d.ChordUpdateInterval || c.ChordPingInterval != d.ChordPingInterval ||
		c.TurnDensity != 1 || !c.ClientsPermitted || !c.ChordReactive || c.TopologyPlugin != TopologyChord {
		t.Errorf("defaults not applied: %+v", c)
	}
	// "If one or more elements appear, then no default value applies."
	if len(c.OverlayLinkProtocols) != 1 || c.OverlayLinkProtocols[0] != "DTLS" {
		t.Errorf("link protocols %v", c.OverlayLinkProtocols)
	}
	if err := c.Supported(); err == nil {
		t.Error("DTLS-only overlay without trust anchors reported supported")
	}
	if err := SelfSigned("lan.example").Supported(); err != nil {
		t.Error(err)
	}
}

func TestRefreshAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New("o.example")
	if !c.RefreshAt(now).IsZero() {
		t.Error("no expiration, refresh time set")
	}
	c.Expiration = now.Add(10 * time.Hour)
	for i := 0; i < 100; i++ {
		r := c.RefreshAt(now)
		if r.Before(now.Add(5*time.Hour)) || r.After(c.Expiration) {
			t.Fatalf("refresh at %v", r)
		}
	}
	if r := c.RefreshAt(now.Add(11 * time.Hour)); !r.Equal(now.Add(11 * time.Hour)) {
		t.Errorf("expired: %v", r)
	}
}

func TestEncodeZeroConfigUsesDefaults(t *testing.T) {
	doc, err := Encode(nil, &Config{InstanceName: "zero.test"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseOverlay(doc, "zero.test")
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	d := New("zero.test")
	if c.TopologyPlugin != d.TopologyPlugin || c.NodeIDLength != d.NodeIDLength || c.MaxMessageSize != d.MaxMessageSize ||
		c.InitialTTL != d.InitialTTL || c.ChordPingInterval != d.ChordPingInterval || c.OverlayReliabilityTimer != d.OverlayReliabilityTimer {
		t.Errorf("defaults lost: %+v", c)
	}
}

func TestByteOrderMark(t *testing.T) {
	ca := newTestCA(t, "CA")
	signer := ca.issue(t, "s", "o.test")
	c := New("o.test")
	c.RootCerts = append(c.RootCerts, ca.cert)
	c.ConfigurationSigners = []string{nodeHex(signer)}
	doc, _ := Encode(signer, c)
	got, err := ParseOverlay(append([]byte("\xef\xbb\xbf"), doc...), "o.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(VerifyOptions{}); err != nil {
		t.Errorf("signature over a document with a BOM: %v", err)
	}
}

// TestDomainRestrictionAndIdentityKey: RFC 7904 §3.4's <sip:domain-restriction> is read as a
// Kind-parameter of SIP-REGISTRATION (the RELAX NG grammar) and at the configuration level
// (the prose), survives encoding, and a bad POSIX pattern is a configuration error; the
// identity-key extension names the overlay's key type.
func TestDomainRestrictionAndIdentityKey(t *testing.T) {
	c := New("dr.test")
	c.Kinds = []Kind{{Name: "SIP-REGISTRATION", DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 16, MaxSize: 2000}}
	c.DomainRestriction = &DomainRestriction{Enable: true, Patterns: []string{`dht\.example\.com`, `.*\.my\.example`}}
	c.IdentityKey = identity.KeyNameRSA2048
	doc, err := Encode(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseOverlay(doc, "dr.test")
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if d := got.DomainRestriction; d == nil || !d.Enable || len(d.Patterns) != 2 || d.Patterns[1] != `.*\.my\.example` {
		t.Fatalf("domain restriction in the kind: %+v\n%s", got.DomainRestriction, doc)
	}
	if got.IdentityKey != identity.KeyNameRSA2048 {
		t.Fatalf("identity-key %q", got.IdentityKey)
	}
	top := `<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base" xmlns:sip="urn:ietf:params:xml:ns:p2p:config-base:sip">
<configuration instance-name="dr.test" sequence="3"><topology-plugin>CHORD-RELOAD</topology-plugin>
<sip:domain-restriction enable="false"/></configuration></overlay>`
	got, err = ParseOverlay([]byte(top), "dr.test")
	if err != nil || got.DomainRestriction == nil || got.DomainRestriction.Enable {
		t.Fatalf("configuration-level restriction: %+v, %v", got, err)
	}
	bad := strings.Replace(top, `enable="false"/>`, `enable="true"><sip:pattern>a(b</sip:pattern></sip:domain-restriction>`, 1)
	if _, err := ParseOverlay([]byte(bad), "dr.test"); err == nil {
		t.Fatal("a bad pattern was accepted")
	}
}
