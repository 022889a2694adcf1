// Package tcpgate is a TCP proxy for tests whose traffic can be held in both directions:
// a TLS link whose packets stop on the way, without either end knowing (a peer frozen or a
// network that drops everything), and that can start again.
package tcpgate

import (
	"net"
	"sync"
	"testing"
)

// Gate forwards every connection made to Addr to the target.
type Gate struct {
	ln     net.Listener
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// New starts a gate to target on loopback; the test's cleanup stops it and its goroutines.
func New(t testing.TB, target string) *Gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{ln: ln}
	g.cond = sync.NewCond(&g.mu)
	g.wg.Add(1)
	go g.accept(target) // owner: the gate; ends when Cleanup closes the listener
	t.Cleanup(func() {
		_ = ln.Close()
		g.mu.Lock()
		g.paused = false
		g.cond.Broadcast()
		for _, c := range g.conns {
			_ = c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

// Addr is the address to connect to ("127.0.0.1:port").
func (g *Gate) Addr() string { return g.ln.Addr().String() }

func (g *Gate) accept(target string) {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, d)
		g.mu.Unlock()
		g.wg.Add(2)
		go g.pipe(c, d) // owner: the gate; ends when either connection closes
		go g.pipe(d, c)
	}
}

func (g *Gate) pipe(dst, src net.Conn) {
	defer g.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			_ = dst.Close()
			return
		}
		g.mu.Lock()
		for g.paused {
			g.cond.Wait()
		}
		g.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			_ = src.Close()
			return
		}
	}
}

// Pause holds everything sent from now on, in both directions.
func (g *Gate) Pause() {
	g.mu.Lock()
	g.paused = true
	g.mu.Unlock()
}

// Resume delivers what was held and forwards again.
func (g *Gate) Resume() {
	g.mu.Lock()
	g.paused = false
	g.cond.Broadcast()
	g.mu.Unlock()
}
