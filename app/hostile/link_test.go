package hostile

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// forgedClient returns a client whose self-signed certificate claims Node-ID claim, which is
// not the digest of its key (RFC 6940 §11.3.1).
func forgedClient(t *testing.T, claim wire.NodeID) *Client {
	t.Helper()
	key := mustKey(t)
	tmpl, err := identity.CertTemplate([]wire.NodeID{claim}, "mallory@"+overlayName, overlayName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClientKey(key, []*x509.Certificate{cert}, overlayName, ClientSettings{NodeID: claim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func neighbours(p *peer.Peer) []string {
	st := p.Status()
	return append(append(st.Predecessors, st.Successors...), st.Fingers...)
}

// TestLinkWithForgedNodeIDRefused: a peer refuses, at the DTLS and TLS handshake, a link
// from a certificate whose Node-ID is not the one its key gives (RFC 6940 §6.5.1.13,
// §11.3.1), whether the Node-ID is made up or another peer's.
func TestLinkWithForgedNodeIDRefused(t *testing.T) {
	ps := startPeers(t, 2)
	target, victim := ps[0], ps[1]
	var random wire.NodeID
	_, _ = rand.Read(random[:])
	for _, c := range []struct {
		name  string
		claim wire.NodeID
	}{{"made-up Node-ID", random}, {"another peer's Node-ID", victim.NodeID()}} {
		for _, scheme := range []string{"", "tls://"} {
			fc := forgedClient(t, c.claim)
			l, err := fc.Dial(testCtx(t, 15*time.Second), scheme+target.Addr().String(), target.NodeID())
			if err == nil {
				// The handshake may finish on our side before the peer's verdict: the link
				// must then die at once and carry nothing.
				pm := fc.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))
				ans, xerr := fc.Exchange(testCtx(t, 5*time.Second), l, fc.Encode(pm), pm.Header.TransactionID)
				if xerr == nil {
					t.Errorf("%s over %q: link accepted and answered %v", c.name, scheme, ans.Code)
				}
				continue
			}
			proto := "DTLS"
			if scheme != "" {
				proto = "TLS"
			}
			t.Logf("%s over %s: refused: %v", c.name, proto, err)
		}
		if slices.Contains(neighbours(target), c.claim.String()) && c.claim != victim.NodeID() {
			t.Errorf("the target lists the forged Node-ID %s as a neighbour", c.claim)
		}
	}
	// The genuine victim is still a neighbour and answers through the target.
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	ans := call(t, mallory, l, mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(victim.NodeID())))
	expectOK(t, "ping to the victim after the forgeries", ans, wire.CodePingAns)
}

// TestAttachClaimingAnotherNodeIDRefused: an AttachReq whose via list claims it comes from
// another peer (the victim) but is signed by the sender is dropped unanswered: the originator
// is the signer (RFC 6940 §6.3.4). (Were it answered, the DTLS handshake would fail too: the
// answering peer expects the victim's certificate, §6.5.1.13.) The same Attach without the
// lie makes a link.
func TestAttachClaimingAnotherNodeIDRefused(t *testing.T) {
	ps := startPeers(t, 2)
	target, victim := ps[0], ps[1]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	for _, lie := range []bool{true, false} {
		ctx := testCtx(t, 40*time.Second)
		att, err := mallory.Transport().NewAttachment(ctx, target.NodeID(), 0, true)
		if err != nil {
			t.Fatal(err)
		}
		loc := att.Local()
		m := mallory.Request(wire.CodeAttachReq, &wire.AttachReqAns{Ufrag: []byte(loc.Ufrag), Password: []byte(loc.Password), Role: []byte(loc.Role), Candidates: loc.Candidates},
			wire.NodeDestination(target.NodeID()))
		if lie {
			// The originator is the signer (RFC 6940 §6.3.4): dropped unanswered.
			m.Header.ViaList = []wire.Destination{wire.NodeDestination(victim.NodeID())}
			expectDropped(t, "attach claiming the victim's Node-ID", mallory.Client, l, mallory.Encode(m), m.Header.TransactionID)
			att.Close()
			continue
		}
		ans := call(t, mallory, l, m)
		expectOK(t, "attach", ans, wire.CodeAttachAns)
		var aa wire.AttachReqAns
		if err := aa.UnmarshalBinary(ans.Body); err != nil {
			t.Fatal(err)
		}
		link, err := att.ConnectLink(ctx, node.IceParams{Ufrag: string(aa.Ufrag), Password: string(aa.Password), Role: string(aa.Role), Candidates: aa.Candidates}, true)
		if err != nil {
			t.Fatalf("honest attach: %v", err)
		}
		if link.RemoteNodeID() != target.NodeID() {
			t.Errorf("honest attach: link to %s", link.RemoteNodeID())
		}
		link.Close()
	}
}

// TestForgedLeaveRefused: a Leave naming another peer as the one leaving (RFC 6940
// §6.4.2.2, §10.7.3) is refused with Error_Forbidden, whether signed by the sender or relayed
// with a forged via list, and the named peer stays a neighbour.
func TestForgedLeaveRefused(t *testing.T) {
	ps := startPeers(t, 2)
	target, victim := ps[0], ps[1]
	mallory := newUser(t, "mallory")
	l := mallory.dial(t, target)
	for _, via := range []bool{false, true} {
		m := mallory.Request(wire.CodeLeaveReq, &wire.LeaveReq{LeavingPeerID: victim.NodeID()}, wire.NodeDestination(target.NodeID()))
		if via {
			// Relayed in the victim's name but signed by mallory: dropped (§6.3.4).
			m.Header.ViaList = []wire.Destination{wire.NodeDestination(victim.NodeID())}
			expectDropped(t, "leave relayed in the victim's name", mallory.Client, l, mallory.Encode(m), m.Header.TransactionID)
			continue
		}
		expectCode(t, "leave in the victim's name", call(t, mallory, l, m), wire.ErrForbidden)
	}
	if !slices.Contains(neighbours(target), victim.NodeID().String()) {
		t.Errorf("the target dropped %s after forged Leaves: %v", victim.NodeID(), neighbours(target))
	}
	expectOK(t, "ping to the victim", call(t, mallory, l, mallory.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(victim.NodeID()))), wire.CodePingAns)
}

// TestNoICEAttachConnected: RFC 6940 §6.5.1.11: a node whose AttachReq offers only No-ICE
// candidates (DTLS-UDP-SR-NO-ICE, then TLS-TCP-FH-NO-ICE: overlay link protocols without ICE
// checks) is connected to without ICE: the peer answers and makes a DTLS or TLS connection to
// the candidate, the handshake being the connectivity check, and the link carries requests.
func TestNoICEAttachConnected(t *testing.T) {
	target := startPeers(t, 1)[0]
	id, err := identity.NewSelfSigned(mustKey(t), "nina", overlayName, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(id, overlayName, ClientSettings{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	nina := &user{Client: c, id: id}
	links := make(chan node.Link, 4)
	c.Transport().OnLink(func(l node.Link) { links <- l })
	l := nina.dial(t, target)
	for _, typ := range []wire.OverlayLinkType{wire.LinkDTLSUDPSRNoICE, wire.LinkTLSTCPFHNoICE} {
		cand := wire.IceCandidate{AddrPort: c.Transport().Addr(), OverlayLink: typ, Type: wire.CandHost, Priority: 1}
		m := nina.Request(wire.CodeAttachReq, &wire.AttachReqAns{Ufrag: []byte("nina"), Password: []byte("no-ice-no-ice-no-ice"),
			Role: []byte("passive"), Candidates: []wire.IceCandidate{cand}}, wire.NodeDestination(target.NodeID()))
		expectOK(t, fmt.Sprintf("%v Attach", typ), call(t, nina, l, m), wire.CodeAttachAns)
		select {
		case in := <-links:
			if in.RemoteNodeID() != target.NodeID() {
				t.Fatalf("%v: link from %s", typ, in.RemoteNodeID())
			}
			ping := nina.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target.NodeID()))
			expectOK(t, fmt.Sprintf("Ping over the %v link", typ), call(t, nina, in.(*link.Link), ping), wire.CodePingAns)
			_ = in.Close()
		case <-time.After(20 * time.Second):
			t.Fatalf("%v: the peer did not connect to the No-ICE candidate", typ)
		}
	}
}

// testCA makes a CA: a root that may certify one level of intermediate CAs (parent nil), or
// an intermediate CA under parent.
func testCA(t *testing.T, name string, parent *enroll.CA) *enroll.CA {
	t.Helper()
	key := mustKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1, KeyUsage: x509.KeyUsageCertSign}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
		issuer, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &enroll.CA{Key: key, Cert: cert}
}

// issuedBy is an identity for user certified by ca, presenting ca's certificate after its own
// when ca is an intermediate.
func issuedBy(t *testing.T, ca *enroll.CA, user string) *identity.Identity {
	t.Helper()
	id, err := ca.IssueIdentity(user, overlayName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !identity.IsSelfSigned(ca.Cert) {
		id.Chain = append(id.Chain, ca.Cert)
	}
	return id
}

// TestIntermediateCAOnLinks: certificates issued by an intermediate CA under the overlay's
// root-cert are accepted on links (DTLS and TLS handshakes) as they are in messages' security
// blocks (RFC 6940 §11.3: a chain back to a root-cert): a peer whose certificate comes from an
// intermediate starts the overlay, another peer (issued by the root itself) joins through it,
// and a client with such a certificate links to it and is answered, over DTLS and TLS. A
// chain through an intermediate under a foreign root, and the intermediate's leaf presented
// without the intermediate, are refused in the handshake.
func TestIntermediateCAOnLinks(t *testing.T) {
	root := testCA(t, "Overlay root", nil)
	inter := testCA(t, "Overlay intermediate", root)
	foreign := testCA(t, "Foreign intermediate", testCA(t, "Foreign root", nil))
	doc := config.SelfSigned(overlayName)
	doc.RootCerts, doc.SelfSignedPermitted = []*x509.Certificate{root.Cert}, false
	start := func(id *identity.Identity, boot []string) *peer.Peer {
		p, err := peer.New(peer.Config{Identity: id, Document: doc, Overlay: overlayName, Listen: "127.0.0.1:0",
			First: len(boot) == 0, Bootstrap: boot, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(testCtx(t, 3*time.Second)) })
		if err := p.Join(testCtx(t, 30*time.Second)); err != nil {
			t.Fatalf("%s joining: %v", id.User(), err)
		}
		return p
	}
	first := start(issuedBy(t, inter, "first"), nil)
	start(issuedBy(t, root, "second"), []string{first.Addr().String()})

	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	client := func(id *identity.Identity) *user {
		c, err := NewClient(id, overlayName, ClientSettings{VerifyPeer: link.RootVerifier(pool)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &user{Client: c, id: id}
	}
	dave := client(issuedBy(t, inter, "dave"))
	for _, scheme := range []string{"", "tls://"} {
		l, err := dave.Dial(testCtx(t, 15*time.Second), scheme+first.Addr().String(), first.NodeID())
		if err != nil {
			t.Fatalf("%q link with an intermediate's certificate: %v", scheme, err)
		}
		ping := dave.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(first.NodeID()))
		expectOK(t, scheme+" Ping from an intermediate's certificate", call(t, dave, l, ping), wire.CodePingAns)
	}
	bare := issuedBy(t, inter, "erin")
	bare.Chain = bare.Chain[:1]
	for name, id := range map[string]*identity.Identity{"a foreign root's intermediate": issuedBy(t, foreign, "mallory"), "no intermediate": bare} {
		for _, scheme := range []string{"", "tls://"} {
			if _, err := client(id).Dial(testCtx(t, 15*time.Second), scheme+first.Addr().String(), first.NodeID()); err == nil {
				t.Errorf("%q link with a certificate of %s came up", scheme, name)
			}
		}
	}
}
