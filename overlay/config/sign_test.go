package config

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// operatorConfig is a configuration of an enrolled overlay, signed by a
// signer certificate issued by ca.
func operatorConfig(t *testing.T, ca *testCA, signer *identity.Identity) *Config {
	c := New("overlay.test")
	c.Sequence = 3
	c.Expiration = time.Now().Add(time.Hour).Truncate(time.Second)
	c.RootCerts = append(c.RootCerts, ca.cert)
	c.EnrollmentServers = []string{"https://overlay.test/enroll"}
	c.BootstrapNodes = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6084"), netip.MustParseAddrPort("[::1]:7000")}
	c.ChordUpdateInterval = 60 * time.Second
	c.ChordPingInterval = 30 * time.Second
	c.ChordReactive = false
	c.MaxMessageSize = 8000
	c.InitialTTL = 40
	c.TurnDensity = 0
	c.ConfigurationSigners = []string{nodeHex(signer)}
	c.KindSigners = []string{nodeHex(signer)}
	c.BadNodes = []string{"00112233445566778899aabbccddeeff"}
	c.Kinds = []Kind{
		{Name: "SIP-REGISTRATION", DataModel: "DICTIONARY", AccessControl: "USER-NODE-MATCH", MaxCount: 8, MaxSize: 1000},
		{ID: 4000, DataModel: "ARRAY", AccessControl: "NODE-MULTIPLE", MaxCount: 2, MaxSize: 10, MaxNodeMultiple: 4},
	}
	return c
}

func TestEncodeSignParseVerify(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	for _, kt := range []identity.KeyType{identity.KeyECDSAP256, identity.KeyRSA2048} {
		signer := ca.issue(t, "config-signer", "overlay.test")
		if kt == identity.KeyRSA2048 {
			k, _ := identity.GenerateKey(kt)
			self, _ := identity.NewSelfSigned(k, "s", "overlay.test", identity.DigestSHA256)
			signer = self
		}
		in := operatorConfig(t, ca, signer)
		if kt == identity.KeyRSA2048 {
			in.SelfSignedPermitted = true // the self-signed RSA signer is trusted through this
		}
		doc, err := Encode(signer, in, SelfSigned("lan.example"))
		if err == nil {
			t.Fatal("encoded a configuration whose signer is not a configuration-signer")
		}
		lan := SelfSigned("lan.example")
		lan.ConfigurationSigners = []string{nodeHex(signer)}
		doc, err = Encode(signer, in, lan)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseOverlay(doc, "overlay.test")
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if err := c.Verify(VerifyOptions{}); err != nil {
			t.Fatalf("verify: %v\n%s", err, doc)
		}
		if !bytes.Equal(c.Raw, in.Raw) {
			t.Error("raw differs from what was signed")
		}
		if c.Sequence != 3 || !c.Expiration.Equal(in.Expiration) || len(c.RootCerts) != 1 || !c.RootCerts[0].Equal(ca.cert) ||
			c.BootstrapNodes[1] != in.BootstrapNodes[1] || c.ChordUpdateInterval != time.Minute || c.ChordPingInterval != 30*time.Second ||
			c.ChordReactive || c.MaxMessageSize != 8000 || c.InitialTTL != 40 || c.TurnDensity != 0 || len(c.Kinds) != 2 ||
			c.Kinds[1].MaxNodeMultiple != 4 || c.BadNodes[0] != in.BadNodes[0] || c.NeedsEnrollment() != !in.SelfSignedPermitted {
			t.Errorf("round trip lost fields:\n%s", doc)
		}
		if err := c.Supported(); err != nil {
			t.Error(err)
		}
		// Any change to the signed bytes, even whitespace, breaks the signature.
		for _, tamper := range []struct{ from, to string }{
			{`address="127.0.0.1"`, `address="127.0.0.9"`},
			{"<max-message-size>8000", "<max-message-size> 8000"},
		} {
			bad := bytes.Replace(doc, []byte(tamper.from), []byte(tamper.to), 1)
			tc, err := ParseOverlay(bad, "overlay.test")
			if err != nil {
				t.Fatal(err)
			}
			err = tc.Verify(VerifyOptions{})
			if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "altered after signing") {
				t.Errorf("tampered %q: %v", tamper.to, err)
			}
		}
		// A tampered kind-block is caught too.
		bad := bytes.Replace(doc, []byte("<max-size>1000</max-size>"), []byte("<max-size>9999</max-size>"), 1)
		bc, _ := ParseOverlay(bad, "overlay.test")
		bc.Raw, bc.Signature = in.Raw, in.Signature // even with a valid outer signature
		bc.Kinds[0].Raw = bytes.Replace(bc.Kinds[0].Raw, []byte("1000"), []byte("9999"), 1)
		if err := bc.Verify(VerifyOptions{}); err == nil || !strings.Contains(err.Error(), `<kind name="SIP-REGISTRATION" kind-signature>`) {
			t.Errorf("tampered kind: %v", err)
		}
	}
}

func TestVerifySignerRules(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	in := operatorConfig(t, ca, signer)
	doc, err := Encode(signer, in)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseOverlay(doc, "overlay.test")

	// A signer from another CA, listed in its own document, is refused.
	evil := newTestCA(t, "Evil CA")
	esigner := evil.issue(t, "config-signer", "overlay.test")
	ein := operatorConfig(t, ca, esigner) // claims our CA as root
	edoc, _ := Encode(esigner, ein)
	ec, _ := ParseOverlay(edoc, "overlay.test")
	if err := ec.Verify(VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "not issued by the certificate authority") {
		t.Errorf("foreign signer: %v", err)
	}
	// With a previous configuration, only its signers count.
	ein2 := operatorConfig(t, evil, esigner)
	edoc2, _ := Encode(esigner, ein2)
	ec2, _ := ParseOverlay(edoc2, "overlay.test")
	if err := ec2.Verify(VerifyOptions{}); err != nil {
		t.Fatalf("self-consistent doc: %v", err)
	}
	if err := ec2.Verify(VerifyOptions{Previous: c}); err == nil || !strings.Contains(err.Error(), "not a configuration-signer") {
		t.Errorf("replacement by another signer: %v", err)
	}
	// Sequence may not go back.
	old := operatorConfig(t, ca, signer)
	old.Sequence = 1
	odoc, _ := Encode(signer, old)
	oc, _ := ParseOverlay(odoc, "overlay.test")
	if err := oc.Verify(VerifyOptions{Previous: c}); err == nil || !strings.Contains(err.Error(), "older than") {
		t.Errorf("older sequence: %v", err)
	}
	// Unsigned.
	udoc, _ := Encode(nil, operatorConfig(t, ca, signer))
	uc, _ := ParseOverlay(udoc, "overlay.test")
	if err := uc.Verify(VerifyOptions{}); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	if err := uc.Verify(VerifyOptions{AllowUnsigned: true}); err != nil {
		t.Errorf("unsigned allowed: %v", err)
	}
	// Signature that is not a SecurityBlock.
	c.Signature = []byte{0, 1}
	if err := c.Verify(VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "cannot check") {
		t.Errorf("garbage signature: %v", err)
	}
}
