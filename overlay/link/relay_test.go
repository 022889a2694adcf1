package link

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relay is a UDP relay between one client and a server that drops a fraction of the
// datagrams in each direction and delays each by a random time up to jitter (reordering).
type relay struct {
	front, back *net.UDPConn
	loss        float64
	jitter      time.Duration

	mu     sync.Mutex
	client *net.UDPAddr
	rng    *rand.Rand
	dead   atomic.Bool

	fwd, dropped atomic.Int64
	wg           sync.WaitGroup
}

func newRelay(t testing.TB, server string, loss float64, jitter time.Duration) *relay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, sa)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{front: front, back: back, loss: loss, jitter: jitter, rng: rand.New(rand.NewPCG(1, 2))}
	r.wg.Add(2)
	go r.loop(true)
	go r.loop(false)
	t.Cleanup(func() { _ = front.Close(); _ = back.Close(); r.wg.Wait() })
	return r
}

func (r *relay) addr() string { return r.front.LocalAddr().String() }

func (r *relay) blackhole() { r.dead.Store(true) }

func (r *relay) stats() string {
	return fmt.Sprintf("%d forwarded, %d dropped", r.fwd.Load(), r.dropped.Load())
}

func (r *relay) loop(fromClient bool) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		var n int
		var err error
		if fromClient {
			var from *net.UDPAddr
			n, from, err = r.front.ReadFromUDP(buf)
			if err == nil {
				r.mu.Lock()
				r.client = from
				r.mu.Unlock()
			}
		} else {
			n, err = r.back.Read(buf)
		}
		if err != nil {
			return
		}
		r.mu.Lock()
		drop := r.dead.Load() || r.rng.Float64() < r.loss
		var delay time.Duration
		if r.jitter > 0 {
			delay = time.Duration(r.rng.Int64N(int64(r.jitter)))
		}
		client := r.client
		r.mu.Unlock()
		if drop {
			r.dropped.Add(1)
			continue
		}
		r.fwd.Add(1)
		p := append([]byte(nil), buf[:n]...)
		send := func() {
			if fromClient {
				_, _ = r.back.Write(p)
			} else if client != nil {
				_, _ = r.front.WriteToUDP(p, client)
			}
		}
		if delay == 0 {
			send()
		} else {
			time.AfterFunc(delay, send)
		}
	}
}
