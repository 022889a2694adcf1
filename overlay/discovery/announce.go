package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/chordphone/chordphone/overlay/identity"
)

// Announce answers mDNS queries for svc until ctx ends or stop is called,
// and announces it at start (twice, RFC 6762 §8.3) and says goodbye (TTL 0,
// §10.1) at the end. stop waits until the goodbye is sent.
func Announce(ctx context.Context, svc Service) (stop func(), err error) {
	if err := identity.ValidOverlayName(svc.Overlay); err != nil {
		return nil, err
	}
	if svc.Port <= 0 || svc.Port > 65535 {
		return nil, fmt.Errorf("announce: bad port %d", svc.Port)
	}
	if svc.TTL == 0 {
		svc.TTL = DefaultTTL
	}
	if _, err := svc.response(0, false, nil, nil, svc.TTL); err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	c, err := listen(ctx, svc.Interfaces, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &announcer{svc: svc, c: c}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.serve() }()
	go func() {
		defer wg.Done()
		a.announce(ctx)
		a.announceAll(0) // goodbye
		_ = c.close()
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }, nil
}

// knownAnswer reports whether the querier already holds the answer to q (RFC 6762
// §7.1): the PTR naming this instance is in its Known-Answer list with at least half
// its TTL left. Then this responder stays silent.
func (s *Service) knownAnswer(q dnsmessage.Question, known []dnsmessage.Resource) bool {
	if q.Type != dnsmessage.TypePTR || !strings.EqualFold(q.Name.String(), serviceType(s.Proto)) {
		return false
	}
	for _, rr := range known {
		ptr, ok := rr.Body.(*dnsmessage.PTRResource)
		if ok && rr.Header.Type == dnsmessage.TypePTR && strings.EqualFold(rr.Header.Name.String(), serviceType(s.Proto)) &&
			strings.EqualFold(ptr.PTR.String(), s.instance()) && time.Duration(rr.Header.TTL)*time.Second >= s.TTL/2 {
			return true
		}
	}
	return false
}

// announce announces the service at start and again whenever the host's networks change
// or the process resumes from a stall (RFC 6762 §8.3: twice, a second apart; §8.4: new
// addresses are announced anew, the cache-flush bit replacing the old ones), until ctx
// ends.
func (a *announcer) announce(ctx context.Context) {
	changes, unsubscribe := a.c.watch(ctx, a.svc.Watch)
	defer unsubscribe()
	a.announceAll(a.svc.TTL)
	again := time.NewTimer(time.Second)
	defer again.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-again.C:
			a.announceAll(a.svc.TTL)
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			a.c.refresh()
			a.announceAll(a.svc.TTL)
			again.Reset(time.Second)
		}
	}
}

type announcer struct {
	svc  Service
	c    *mconn
	mu   sync.Mutex
	last map[int]time.Time // last multicast per interface index
}

// mayMulticast applies RFC 6762 §6: a record is multicast on an interface
// at most once a second.
func (a *announcer) mayMulticast(ifIndex int, force bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = map[int]time.Time{}
	}
	now := time.Now()
	if !force && now.Sub(a.last[ifIndex]) < time.Second {
		return false
	}
	a.last[ifIndex] = now
	return true
}

func (a *announcer) addrs(ifi *net.Interface) []netip.Addr {
	if len(a.svc.Addrs) > 0 {
		return a.svc.Addrs
	}
	if ifi == nil {
		return nil
	}
	return ifaceAddrs(ifi)
}

func (a *announcer) announceAll(ttl time.Duration) {
	ifaces := a.c.interfaces()
	for i := range ifaces {
		ifi := &ifaces[i]
		a.mayMulticast(ifi.Index, true)
		b, err := a.svc.response(0, false, nil, a.addrs(ifi), ttl)
		if err == nil {
			err = a.c.multicast(b, ifi)
		}
		if err != nil {
			slog.Debug("mdns announce", "iface", ifi.Name, "err", err)
		}
	}
}

func (a *announcer) serve() {
	buf := make([]byte, 9000)
	for {
		n, idx, src, err := a.c.read(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Debug("mdns read", "err", err)
			}
			return
		}
		ifi := a.c.iface(idx)
		if ifi == nil {
			continue
		}
		h, q, ok := a.svc.toAnswer(buf[:n])
		if !ok {
			continue
		}
		udp, _ := src.(*net.UDPAddr)
		legacy := udp != nil && udp.Port != 5353
		unicastQ := q.Class&0x8000 != 0 // QU bit (RFC 6762 §5.4)
		id := uint16(0)
		if legacy {
			id = h.ID
		}
		q.Class &^= 0x8000
		b, err := a.svc.response(id, legacy, &q, a.addrs(ifi), a.svc.TTL)
		if err != nil {
			continue
		}
		switch {
		case legacy || unicastQ:
			_ = a.c.unicast(b, src)
		case a.mayMulticast(ifi.Index, false):
			_ = a.c.multicast(b, ifi)
		}
	}
}

// toAnswer parses a received mDNS message and returns the first question of a query
// that this service answers (one answer per packet), unless the querier's Known-Answer
// list holds the answer already (RFC 6762 §7.1).
func (s *Service) toAnswer(msg []byte) (dnsmessage.Header, dnsmessage.Question, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return h, dnsmessage.Question{}, false
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return h, dnsmessage.Question{}, false
	}
	known, _ := p.AllAnswers() // the Known-Answer list; a bad one is no list
	for _, q := range qs {
		if s.matches(q) && !s.knownAnswer(q, known) {
			return h, q, true
		}
	}
	return h, dnsmessage.Question{}, false
}
