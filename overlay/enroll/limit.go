package enroll

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// failLimiter refuses a client address after too many failed
// authentications in a window, against password guessing.
type failLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (l *failLimiter) recent(ip string, now time.Time) []time.Time {
	ts := l.fails[ip]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > l.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, ip)
	} else {
		l.fails[ip] = ts
	}
	return ts
}

// blocked reports whether ip has used up its failures.
func (l *failLimiter) blocked(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		return false
	}
	return len(l.recent(ip, time.Now())) >= l.max
}

func (l *failLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		l.fails = map[string][]time.Time{}
	}
	if len(l.fails) > 100000 { // bound memory under a distributed attack
		for k := range l.fails {
			delete(l.fails, k)
			break
		}
	}
	now := time.Now()
	l.fails[ip] = append(l.recent(ip, now), now)
}
