package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

const testOverlay = "test.example"

var (
	idMu    sync.Mutex
	idCache = map[string]*identity.Identity{}
)

func testIdentity(t testing.TB, user string) *identity.Identity {
	t.Helper()
	idMu.Lock()
	defer idMu.Unlock()
	if id := idCache[user]; id != nil {
		return id
	}
	key, err := identity.GenerateKey(identity.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewSelfSigned(key, user, testOverlay, identity.DigestSHA256)
	if err != nil {
		t.Fatal(err)
	}
	idCache[user] = id
	return id
}

// forgedIdentity is a self-signed certificate that claims Node-ID victim, which is not the
// digest of its key.
func forgedIdentity(t testing.TB, victim wire.NodeID) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := identity.CertTemplate([]wire.NodeID{victim}, "mallory@"+testOverlay, testOverlay, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

type rxMsg struct {
	from node.Link
	msg  []byte
}

// recorder is a node.Receiver that queues what it receives, reassembled as the node does
// (links deliver fragments as they are, RFC 6940 §6.7).
type recorder struct {
	ch    chan rxMsg
	reasm wire.Reassembler
}

func newRecorder() *recorder { return &recorder{ch: make(chan rxMsg, 4096)} }

func (r *recorder) Receive(from node.Link, msg []byte) {
	whole, _ := r.reasm.Add(msg, time.Now())
	if whole != nil {
		r.ch <- rxMsg{from, whole}
	}
}

func (r *recorder) next(t testing.TB, d time.Duration) rxMsg {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return rxMsg{}
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LINK_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type peer struct {
	t   *Transport
	id  *identity.Identity
	rx  *recorder
	acc chan node.Link
}

func newPeer(t testing.TB, user string, mod func(*Settings)) *peer {
	t.Helper()
	id := testIdentity(t, user)
	p := &peer{id: id, rx: newRecorder(), acc: make(chan node.Link, 16)}
	s := Settings{
		Certificate:        id.TLSCertificate(),
		ListenAddr:         "127.0.0.1:0",
		Logger:             testLogger(t).With("peer", user),
		ICEIncludeLoopback: true,
		ICEInterfaceFilter: func(name string) bool { return name == "lo" },
	}
	if mod != nil {
		mod(&s)
	}
	tr, err := New(s, p.rx)
	if err != nil {
		t.Fatal(err)
	}
	p.rx.reasm.MaxMessageSize = tr.s.MaxMessageSize // before any link is up
	tr.OnLink(func(l node.Link) { p.acc <- l })
	p.t = tr
	t.Cleanup(func() { _ = tr.Close() })
	return p
}

func (p *peer) accepted(t testing.TB) node.Link {
	t.Helper()
	select {
	case l := <-p.acc:
		return l
	case <-time.After(15 * time.Second):
		t.Fatal("no link accepted")
		return nil
	}
}

// testMessage encodes a real RELOAD message (a PingReq with padding) whose transaction id is i.
func testMessage(t testing.TB, i uint64, padding int) []byte {
	t.Helper()
	pad := make([]byte, padding)
	for j := range pad {
		pad[j] = byte(j)
	}
	m, err := wire.NewMessage(wire.CodePingReq, &wire.PingReq{Padding: pad})
	if err != nil {
		t.Fatal(err)
	}
	m.Header.OverlayHash = wire.OverlayHash(testOverlay)
	m.Header.TransactionID = i
	m.Header.MaxResponseLength = 0
	var dst wire.NodeID
	binary.BigEndian.PutUint64(dst[:], i)
	m.Header.DestinationList = []wire.Destination{wire.NodeDestination(dst)}
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func txID(msg []byte) uint64 { return binary.BigEndian.Uint64(msg[offTxID:]) }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func addrOf(p *peer) string { return p.t.Addr().String() }

var _ = fmt.Sprintf
var _ = strings.Contains
var _ net.Conn
