package wanemu

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func newNet(t *testing.T, n int, p Params) *Net {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	w, err := New(n, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// listenUDP opens a UDP socket on host i's address.
func listenUDP(t *testing.T, w *Net, i int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := w.Do(i, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(w.Addrs[i], 0)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRoundTrip: a UDP echo between two namespaces takes at least twice the one-way delay.
func TestRoundTrip(t *testing.T) {
	const delay = 30 * time.Millisecond
	w := newNet(t, 3, Params{Delay: delay})
	a, b := listenUDP(t, w, 0), listenUDP(t, w, 2)
	go func() { // owner: the test; ends when b is closed at cleanup
		buf := make([]byte, 1500)
		for {
			n, from, err := b.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = b.WriteToUDP(buf[:n], from)
		}
	}()
	buf := make([]byte, 1500)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		if _, err := a.WriteToUDP([]byte{byte(i)}, b.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := a.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		rtt := time.Since(t0)
		if n != 1 || buf[0] != byte(i) {
			t.Fatalf("echo %d: got %x", i, buf[:n])
		}
		if rtt < 2*delay {
			t.Fatalf("echo %d: round trip %v, less than twice the %v delay", i, rtt, delay)
		}
		t.Logf("round trip %d: %v", i, rtt)
	}
}

// TestLoss: the router drops roughly the given fraction of packets.
func TestLoss(t *testing.T) {
	const loss, sent, window = 0.3, 1000, 32
	w := newNet(t, 2, Params{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: loss})
	a, b := listenUDP(t, w, 0), listenUDP(t, w, 1)
	var received atomic.Int64
	go func() { // owner: the test; ends when b is closed at cleanup
		buf := make([]byte, 16)
		for {
			if _, _, err := b.ReadFromUDP(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	// At most window packets are in the router at once, so that no queue on the way overflows:
	// the only losses are the router's.
	for i := 0; i < sent; i++ {
		waitFor(t, func() bool { f, d := w.Stats(); return f+d+window > uint64(i) })
		if _, err := a.WriteToUDP([]byte{1}, b.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { f, d := w.Stats(); return f+d >= sent && uint64(received.Load()) >= f })
	got := 1 - float64(received.Load())/sent
	t.Logf("lost %.3f of %d packets (asked %.2f)", got, sent, loss)
	if got < loss-0.1 || got > loss+0.1 {
		t.Fatalf("lost %.3f of the packets, want about %.2f", got, loss)
	}
}

// waitFor polls cond until it holds; a generous deadline only bounds a failure.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60 s")
		}
		time.Sleep(time.Millisecond)
	}
}
