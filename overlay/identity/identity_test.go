package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chordphone/chordphone/overlay/wire"
)

func TestCreateLoadSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	id, err := Create(dir, "alice", "lan.example")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := Create(dir, "alice", "lan.example"); err == nil {
		t.Error("Create over an existing identity succeeded")
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.User() != "alice@lan.example" || got.Overlay() != "lan.example" {
		t.Errorf("user %q overlay %q", got.User(), got.Overlay())
	}
	if !got.SelfSigned() {
		t.Error("not self-signed")
	}
	// RFC 6940 §11.3.1: Node-ID = high-order bits of SHA-256(subjectPublicKeyInfo).
	sum := sha256.Sum256(got.Cert().RawSubjectPublicKeyInfo)
	nid := got.NodeID()
	if !bytes.Equal(nid[:], sum[:16]) || nid != id.NodeID() {
		t.Errorf("node-id %x, want %x", got.NodeID(), sum[:16])
	}
	if err := CheckSelfSignedNodeIDs(got.Cert(), DigestSHA256); err != nil {
		t.Error(err)
	}
	if err := CheckSelfSignedNodeIDs(got.Cert(), DigestSHA1); err == nil {
		t.Error("sha256 node-id accepted as sha1")
	}
	if len(got.Cert().Subject.Names) != 0 {
		t.Errorf("subject not empty: %v", got.Cert().Subject)
	}
	if len(got.Cert().URIs) != 1 || !strings.HasPrefix(got.Cert().URIs[0].String(), "reload://0110") {
		t.Errorf("SAN URIs %v", got.Cert().URIs)
	}
	tc := got.TLSCertificate()
	if len(tc.Certificate) != 1 || tc.Leaf == nil {
		t.Errorf("tls cert %+v", tc)
	}
}

func TestTLSCertificateHandshake(t *testing.T) {
	a, err := NewSelfSigned(mustKey(t, KeyECDSAP256), "a", "o.example", DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSelfSigned(mustKey(t, KeyRSA2048), "b", "o.example", DigestSHA1)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := tcpPair(t)
	var peer *x509.Certificate
	srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{a.TLSCertificate()}, ClientAuth: tls.RequireAnyClientCert})
	cli := tls.Client(c2, &tls.Config{Certificates: []tls.Certificate{b.TLSCertificate()}, InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	peer = srv.ConnectionState().PeerCertificates[0]
	if err := CheckSelfSignedNodeIDs(peer, DigestSHA1); err != nil {
		t.Error(err)
	}
	_ = cli.Close()
	_ = srv.Close()
}

func mustKey(t *testing.T, kt KeyType) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMultipleNodeIDsIndex(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	id2, _ := SelfSignedNodeID(spki, DigestSHA1, 2, 3)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 2)
	sum := sha1.Sum(append(b[:], spki...)) //nolint:gosec
	if !bytes.Equal(id2[:], sum[:16]) {
		t.Errorf("index 2 node-id %x want %x", id2, sum[:16])
	}
	ids := []wire.NodeID{}
	for i := 1; i <= 3; i++ {
		id, _ := SelfSignedNodeID(spki, DigestSHA256, i, 3)
		ids = append(ids, id)
	}
	tmpl, _ := CertTemplate(ids, "m@o.example", "o.example", SelfSignedValidity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	if got := NodeIDsFromCert(c); len(got) != 3 || got[2] != ids[2] {
		t.Errorf("ids %x", got)
	}
	if err := CheckSelfSignedNodeIDs(c, DigestSHA256); err != nil {
		t.Error(err)
	}
}

func TestStolenNodeIDRejected(t *testing.T) {
	victim, _ := NewSelfSigned(mustKey(t, KeyECDSAP256), "v", "o.example", DigestSHA256)
	k := mustKey(t, KeyECDSAP256)
	tmpl, _ := CertTemplate([]wire.NodeID{victim.NodeID()}, "thief@o.example", "o.example", SelfSignedValidity)
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	c, _ := x509.ParseCertificate(der)
	err := CheckSelfSignedNodeIDs(c, DigestSHA256)
	if err == nil || !strings.Contains(err.Error(), "claims Node-ID") {
		t.Errorf("stolen node-id: %v", err)
	}
}

func TestParseNodeIDURI(t *testing.T) {
	var id [16]byte
	for i := range id {
		id[i] = byte(i * 7)
	}
	for _, s := range []string{NodeIDURI(id, "ov.example"), "reload:" + strings.Repeat("00", 0) + "00070e151c232a31383f464d545b6269@ov.example"} {
		got, ov, err := ParseNodeIDURI(s)
		if err != nil || got != id || ov != "ov.example" {
			t.Errorf("%s: %x %q %v", s, got, ov, err)
		}
	}
	for _, bad := range []string{"http://x", "reload://zz@o/", "reload://0210" + strings.Repeat("00", 16) + "@o/", "reload://0110" + strings.Repeat("00", 15) + "@o/", "reload:abc", "reload://@o/"} {
		if _, _, err := ParseNodeIDURI(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUserName(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice@o.example", "bob.smith@other.example": "bob.smith@other.example"} {
		if got, err := UserName(in, "o.example"); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\x00b", "-x", "a@", "a@b..c", strings.Repeat("a", 65)} {
		if _, err := UserName(bad, "o.example"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("empty dir: %v", err)
	}
	a, _ := NewSelfSigned(mustKey(t, KeyECDSAP256), "a", "o.example", DigestSHA256)
	b, _ := NewSelfSigned(mustKey(t, KeyECDSAP256), "b", "o.example", DigestSHA256)
	mixed := &Identity{Key: a.Key, Chain: b.Chain}
	if err := mixed.Save(dir); err == nil {
		t.Error("saved a key with someone else's certificate")
	}
	_ = os.WriteFile(filepath.Join(dir, FileName), []byte("garbage"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("garbage: %v", err)
	}
}

func TestCSR(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, err := NewCSR(k, "alice@o.example")
	if err != nil {
		t.Fatal(err)
	}
	r, err := x509.ParseCertificateRequest(der)
	if err != nil || r.CheckSignature() != nil || r.EmailAddresses[0] != "alice@o.example" {
		t.Fatalf("%v %v", err, r)
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for i := 0; i < 3; i++ {
		if err := WriteFileAtomic(p, []byte{byte(i)}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir has %d entries", len(ents))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("write into missing dir succeeded")
	}
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); ch <- c }()
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c1 := <-ch
	if c1 == nil {
		t.Fatal("accept failed")
	}
	return c1, c2
}

func TestMatchesAndWithUser(t *testing.T) {
	id, err := Create(t.TempDir(), "alice", "local.chordphone")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, overlay string
		want          bool
	}{
		{"alice", "local.chordphone", true}, {"alice@local.chordphone", "local.chordphone", true}, {"", "local.chordphone", true},
		{"bob", "local.chordphone", false}, {"alice", "other.test", false},
	} {
		if got := id.Matches(c.user, c.overlay); got != c.want {
			t.Errorf("Matches(%q, %q) = %v", c.user, c.overlay, got)
		}
	}
	bob, err := id.WithUser("bob", "local.chordphone", DigestSHA256)
	if err != nil || bob.NodeID() != id.NodeID() || !bob.Matches("bob", "local.chordphone") {
		t.Errorf("WithUser: %v", err)
	}
}
