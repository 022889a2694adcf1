package link

import (
	"net/netip"
	"testing"
	"time"
)

// TestWildcardLinkDiesWithItsSourceAddress: a bootstrap link made from a listener bound to
// the wildcard address sends from the address routing picked for the peer; when that
// address is removed the link dies at once (the peer knows it by that address), and a
// change that removes some other address leaves it up.
func TestWildcardLinkDiesWithItsSourceAddress(t *testing.T) {
	b := newPeer(t, "bob", nil)
	a := newPeer(t, "alice", func(s *Settings) { s.ListenAddr = "0.0.0.0:0" })
	l, err := a.t.Bootstrap(ctxT(t, 20*time.Second), addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.(*Link).src; got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("source address %v, want 127.0.0.1", got)
	}
	a.t.NetworkChanged([]netip.Addr{netip.MustParseAddr("192.0.2.77")})
	select {
	case <-l.Done():
		t.Fatalf("link died when another address was removed: %v", l.(*Link).Err())
	default:
	}
	a.t.NetworkChanged([]netip.Addr{netip.MustParseAddr("127.0.0.1")})
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("link still up after its source address was removed")
	}
}
