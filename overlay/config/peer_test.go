package config

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/wire"
)

func TestVerifyPeerCert(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	other := newTestCA(t, "Other CA")
	cfg := New("overlay.test")
	cfg.RootCerts = append(cfg.RootCerts, ca.cert)

	alice := ca.issue(t, "alice", "overlay.test")
	p, err := VerifyPeerCert(cfg, alice.Cert())
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "alice@overlay.test" || !p.Has(alice.NodeID()) || p.SelfSigned {
		t.Errorf("peer %+v", p)
	}
	mallory := other.issue(t, "mallory", "overlay.test")
	if _, err := VerifyPeerCert(cfg, mallory.Cert()); err == nil || !strings.Contains(err.Error(), "not issued by the certificate authority of overlay overlay.test") {
		t.Errorf("other CA: %v", err)
	}
	self, _ := identity.NewSelfSigned(mustGen(t), "eve", "overlay.test", identity.DigestSHA256)
	if _, err := VerifyPeerCert(cfg, self.Cert()); err == nil || !strings.Contains(err.Error(), "not issued by") {
		t.Errorf("self-signed in enrolled overlay: %v", err)
	}
	wrongOverlay := ca.issue(t, "bob", "elsewhere.test")
	if _, err := VerifyPeerCert(cfg, wrongOverlay.Cert()); err == nil || !strings.Contains(err.Error(), "for overlay elsewhere.test") {
		t.Errorf("wrong overlay: %v", err)
	}
	cfg.BadNodes = []string{alice.NodeID().String()}
	if _, err := VerifyPeerCert(cfg, alice.Cert()); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("bad-node: %v", err)
	}

	// Self-signed overlay: Node-ID must be the key's digest.
	lan := SelfSigned("lan.test")
	me, _ := identity.NewSelfSigned(mustGen(t), "me", "lan.test", identity.DigestSHA256)
	if p, err := lan.VerifyPeer(me.Chain, time.Time{}); err != nil || !p.SelfSigned {
		t.Fatalf("self-signed peer: %v", err)
	}
	k := mustGen(t)
	tmpl, _ := identity.CertTemplate([]wire.NodeID{me.NodeID()}, "thief@lan.test", "lan.test", time.Hour)
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	thief, _ := x509.ParseCertificate(der)
	if _, err := VerifyPeerCert(lan, thief); err == nil || !strings.Contains(err.Error(), "claims Node-ID") {
		t.Errorf("stolen Node-ID: %v", err)
	}
	sha1Peer, _ := identity.NewSelfSigned(mustGen(t), "old", "lan.test", identity.DigestSHA1)
	if _, err := VerifyPeerCert(lan, sha1Peer.Cert()); err == nil {
		t.Error("sha1 Node-ID accepted in a sha256 overlay")
	}
	if _, err := lan.VerifyPeer(nil, time.Time{}); err == nil {
		t.Error("empty chain accepted")
	}
	if _, err := lan.VerifyPeer(me.Chain, time.Now().Add(10*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "valid only") {
		t.Errorf("expired self-signed: %v", err)
	}
}

func mustGen(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyPeerCertificateOverTLS uses the check as a TLS link would.
func TestVerifyPeerCertificateOverTLS(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	other := newTestCA(t, "Other CA")
	cfg := New("overlay.test")
	cfg.RootCerts = append(cfg.RootCerts, ca.cert)
	srvID := ca.issue(t, "srv", "overlay.test")
	handshake := func(client *identity.Identity) error {
		c1, c2 := tcpPair(t)
		defer c1.Close()
		defer c2.Close()
		srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{srvID.TLSCertificate()},
			ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: cfg.VerifyPeerCertificate})
		cli := tls.Client(c2, &tls.Config{Certificates: []tls.Certificate{client.TLSCertificate()},
			InsecureSkipVerify: true, VerifyPeerCertificate: cfg.VerifyPeerCertificate})
		errc := make(chan error, 1)
		go func() { errc <- cli.Handshake() }()
		err := srv.Handshake()
		c1.Close()
		<-errc
		return err
	}
	if err := handshake(ca.issue(t, "alice", "overlay.test")); err != nil {
		t.Fatalf("member refused: %v", err)
	}
	if err := handshake(other.issue(t, "mallory", "overlay.test")); err == nil || !strings.Contains(err.Error(), "not issued by the certificate authority") {
		t.Errorf("outsider: %v", err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection (kernel
// buffered, unlike net.Pipe, so a TLS alert never blocks the writer).
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.c, c2
}
