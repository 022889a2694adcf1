// Package netwatch tells the overlay's parts when this host's networks change: an
// interface comes up or goes away, an address is added or removed (IPv4 and IPv6), or the
// process stalled (the machine slept, or the process was stopped) so that whatever it
// knew of its links may be stale. It has one job: report such changes; what to do about
// them is up to each subscriber (mDNS discovery, the link layer, the peer).
//
// The truth is a rescan of the interfaces (net.Interfaces) every Options.Interval; on
// Linux a netlink socket (RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR) triggers a
// rescan at once, so changes are seen in well under a second. Netlink messages are not
// parsed: any of them only means "look again".
package netwatch

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Change is what changed since the previous report to a subscriber (reports not yet
// received are merged into one).
type Change struct {
	// Added and Removed are unicast addresses (of interfaces that are up) that appeared
	// and vanished.
	Added, Removed []netip.Addr
	// Interfaces is set when an interface came up, went down, appeared or vanished.
	Interfaces bool
	// Stall is how long the process did not run (suspend, SIGSTOP) when it resumed; 0 if
	// it did not stall.
	Stall time.Duration
}

// Empty reports whether c reports nothing.
func (c Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && !c.Interfaces && c.Stall == 0
}

// merge returns c followed by d: an address added then removed is neither.
func (c Change) merge(d Change) Change {
	out := Change{Interfaces: c.Interfaces || d.Interfaces, Stall: max(c.Stall, d.Stall)}
	added := slices.Clone(c.Added)
	removed := slices.Clone(c.Removed)
	for _, a := range d.Added {
		if i := slices.Index(removed, a); i >= 0 {
			removed = slices.Delete(removed, i, i+1)
		} else if !slices.Contains(added, a) {
			added = append(added, a)
		}
	}
	for _, a := range d.Removed {
		if i := slices.Index(added, a); i >= 0 {
			added = slices.Delete(added, i, i+1)
		} else if !slices.Contains(removed, a) {
			removed = append(removed, a)
		}
	}
	out.Added, out.Removed = added, removed
	return out
}

// Options tune a Watcher; zero fields take the defaults.
type Options struct {
	// Interval between rescans (and stall checks): 2 s.
	Interval time.Duration
	// StallAfter is the gap between two checks, beyond Interval, that counts as a stall:
	// 3 s (a loaded machine delays a timer by far less; a suspend lasts longer).
	StallAfter time.Duration
	Logger     *slog.Logger
}

// Watcher watches the host's interfaces until Close.
type Watcher struct {
	o      Options
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu   sync.Mutex
	subs map[chan Change]struct{}
	snap snapshot
}

// Start starts a Watcher; it runs until ctx ends or Close is called.
func Start(ctx context.Context, o Options) *Watcher {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.StallAfter <= 0 {
		o.StallAfter = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{o: o, log: o.Logger, cancel: cancel, kick: make(chan struct{}, 1),
		subs: map[chan Change]struct{}{}, snap: scan()}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.loop(ctx) }() // owner: the Watcher (Close)
	if stop := watchNetlink(ctx, w.log, w.Kick, &w.wg); stop == nil {
		w.log.Debug("netwatch: no netlink; rescanning every interval", "interval", o.Interval)
	}
	return w
}

// Close stops the watcher and waits for its goroutines; subscriptions' channels close.
func (w *Watcher) Close() {
	w.cancel()
	w.wg.Wait()
}

// Kick asks for a rescan now (a subscriber that saw a send fail, for instance).
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Subscribe returns a channel of changes and a function that ends the subscription.
// Reports a slow subscriber has not received are merged, never dropped.
func (w *Watcher) Subscribe() (<-chan Change, func()) {
	ch := make(chan Change, 1)
	w.mu.Lock()
	if w.subs == nil { // closed
		close(ch)
	} else {
		w.subs[ch] = struct{}{}
	}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			if _, ok := w.subs[ch]; ok {
				delete(w.subs, ch)
				close(ch)
			}
			w.mu.Unlock()
		})
	}
}

// Addrs returns the unicast addresses of the interfaces that are up, as of the last scan.
func (w *Watcher) Addrs() []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap.addrList()
}

func (w *Watcher) loop(ctx context.Context) {
	defer func() {
		w.mu.Lock()
		for ch := range w.subs {
			close(ch)
		}
		w.subs = nil
		w.mu.Unlock()
	}()
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
			// Let a burst of netlink messages (an interface with its addresses) settle.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		now := time.Now()
		var c Change
		if gap := stall(last, now); gap > w.o.Interval+w.o.StallAfter {
			c.Stall = gap
			w.log.Info("the process was stalled (suspend or stop); refreshing the network", "stall", gap.Round(time.Millisecond))
		}
		last = now
		s := scan()
		w.mu.Lock()
		d := w.snap.diff(s)
		w.snap = s
		w.mu.Unlock()
		c = c.merge(d)
		if c.Empty() {
			continue
		}
		if !d.Empty() {
			w.log.Info("network changed", "added", d.Added, "removed", d.Removed, "interfaces", d.Interfaces)
		}
		w.publish(c)
	}
}

// stall is the time between two checks by the wall clock or the monotonic clock,
// whichever is longer: a suspended machine stops the monotonic clock (Linux
// CLOCK_MONOTONIC) but not the wall clock; a stopped process stops neither.
func stall(last, now time.Time) time.Duration {
	return max(now.Sub(last), now.Round(0).Sub(last.Round(0)))
}

func (w *Watcher) publish(c Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- c:
			continue
		default:
		}
		// A report is waiting: merge with it. Only this goroutine sends, so once the
		// waiting one is taken (here or by the subscriber) the send cannot block.
		merged := c
		select {
		case old := <-ch:
			merged = old.merge(c)
		default:
		}
		ch <- merged
	}
}

// snapshot is the state of the interfaces at one scan.
type snapshot struct {
	ifaces map[int]string // index -> name of interfaces that are up
	addrs  map[netip.Addr]bool
}

func scan() snapshot {
	s := snapshot{ifaces: map[int]string{}, addrs: map[netip.Addr]bool{}}
	all, err := net.Interfaces()
	if err != nil {
		return s
	}
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		s.ifaces[ifi.Index] = ifi.Name + "/" + ifi.Flags.String()
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				s.addrs[ip.Unmap()] = true
			}
		}
	}
	return s
}

func (s snapshot) addrList() []netip.Addr {
	out := make([]netip.Addr, 0, len(s.addrs))
	for a := range s.addrs {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (s snapshot) diff(n snapshot) Change {
	var c Change
	for a := range n.addrs {
		if !s.addrs[a] {
			c.Added = append(c.Added, a)
		}
	}
	for a := range s.addrs {
		if !n.addrs[a] {
			c.Removed = append(c.Removed, a)
		}
	}
	slices.SortFunc(c.Added, netip.Addr.Compare)
	slices.SortFunc(c.Removed, netip.Addr.Compare)
	if len(s.ifaces) != len(n.ifaces) {
		c.Interfaces = true
	}
	for i, name := range n.ifaces {
		if s.ifaces[i] != name {
			c.Interfaces = true
		}
	}
	return c
}
