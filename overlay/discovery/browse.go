package discovery

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/chordphone/chordphone/overlay/netwatch"
	"github.com/chordphone/chordphone/overlay/wire"
)

// BrowseOptions tune Browse.
type BrowseOptions struct {
	Proto      string          // "udp" (default) or "tcp"
	Interfaces []net.Interface // default: every up, multicast-capable one, followed (Watch)
	// Watch reports changes of the host's networks (nil: a watcher of its own).
	Watch *netwatch.Watcher
	// MaxInterval caps the time between queries (default 60 s; RFC 6762
	// §5.2 asks for intervals that at least double, up to an hour).
	MaxInterval time.Duration
	once        bool // Lookup: the interfaces of now, not followed
}

// Browse reports the peers of overlay on the LAN until ctx ends, when the
// channel is closed. A peer is sent again when its addresses change, and
// with Gone set when it says goodbye.
func Browse(ctx context.Context, overlay string) (<-chan Peer, error) {
	return BrowseWith(ctx, overlay, BrowseOptions{})
}

// BrowseWith is Browse with options.
func BrowseWith(ctx context.Context, overlay string, o BrowseOptions) (<-chan Peer, error) {
	c, err := listen(ctx, o.Interfaces, !o.once)
	if err != nil {
		return nil, err
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = 60 * time.Second
	}
	b := newBrowser(overlay, o.Proto)
	b.c = c
	out := make(chan Peer, 16)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer cancel(); b.read(ctx, out) }()
	go func() {
		defer wg.Done()
		b.query(ctx, o.Watch, o.MaxInterval, out)
		_ = c.close()
	}()
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

type instState struct {
	ptrExp         time.Time     // the PTR naming the instance: expiry
	ptrTTL         time.Duration // and its TTL when received (Known-Answer list)
	port           uint16
	target         string
	txt            map[string]string
	srvExp, txtExp time.Time // zero: not seen
	emitted        string
	hasEmits       bool
}

// addrKey is an address learnt on one interface: the cache-flush bit
// flushes only the records of the interface it came in on (RFC 6762 §10.2).
type addrKey struct {
	ifIndex int
	ip      netip.Addr
}

// browser keeps a small mDNS cache for one service type.
type browser struct {
	overlay string
	typ     string
	c       *mconn

	mu    sync.Mutex
	insts map[string]*instState
	hosts map[string]map[addrKey]time.Time // expiry of each address
}

func newBrowser(overlay, proto string) *browser {
	return &browser{overlay: overlay, typ: serviceType(proto), insts: map[string]*instState{}, hosts: map[string]map[addrKey]time.Time{}}
}

func send(ctx context.Context, out chan<- Peer, peers []Peer) bool {
	for _, p := range peers {
		select {
		case out <- p:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// query sends the queries of RFC 6762 §5.2: at once, then at intervals that double up to
// maxInterval. When the host's networks change or the process resumes from a stall, the
// socket follows the interfaces and the queries start again from one a second, so that
// peers on a network that just came up are found at once.
func (b *browser) query(ctx context.Context, w *netwatch.Watcher, maxInterval time.Duration, out chan<- Peer) {
	changes, unsubscribe := b.c.watch(ctx, w)
	defer unsubscribe()
	interval := time.Second
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			b.c.refresh()
			interval = time.Second
			t.Reset(0)
			continue
		case <-t.C:
		}
		now := time.Now()
		if !send(ctx, out, b.sweep(now)) {
			return
		}
		msg, err := b.queryMessage(now, interval)
		if err != nil {
			return
		}
		ifaces := b.c.interfaces()
		for i := range ifaces {
			_ = b.c.multicast(msg, &ifaces[i])
		}
		t.Reset(interval)
		interval = min(2*interval, maxInterval)
	}
}

// maxKnownAnswers bounds the Known-Answer list of a query so that it fits one
// Ethernet frame (RFC 6762 §7.2 would continue it in more packets).
const maxKnownAnswers = 24

// queryMessage is the PTR query for the service with the Known-Answer list of
// RFC 6762 §7.1: the instances this browser knows, so that their responders stay
// silent and a periodic query costs one packet on a settled LAN. An instance is
// listed only while more than half its TTL remains (§7.1) and enough remains to
// outlast the next query by a quarter of it, so that the next query omits it and
// its answer refreshes the cache before the record expires.
func (b *browser) queryMessage(now time.Time, next time.Duration) ([]byte, error) {
	name, err := dnsmessage.NewName(b.typ)
	if err != nil {
		return nil, err
	}
	bl := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	bl.EnableCompression()
	if err := bl.StartQuestions(); err != nil {
		return nil, err
	}
	if err := bl.Question(dnsmessage.Question{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	if err := bl.StartAnswers(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	known := 0
	for inst, st := range b.insts {
		left := st.ptrExp.Sub(now)
		if st.ptrTTL > 0 && left > st.ptrTTL/2 && left > next+st.ptrTTL/4 && known < maxKnownAnswers {
			n, err := dnsmessage.NewName(inst)
			if err != nil {
				continue
			}
			known++
			rh := dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: uint32(left / time.Second)}
			if err := bl.PTRResource(rh, dnsmessage.PTRResource{PTR: n}); err != nil {
				b.mu.Unlock()
				return nil, err
			}
		}
	}
	b.mu.Unlock()
	return bl.Finish()
}

func (b *browser) read(ctx context.Context, out chan<- Peer) {
	buf := make([]byte, 9000)
	for {
		n, ifIndex, _, err := b.c.read(buf)
		if err != nil {
			return // socket closed by the querier when ctx ends
		}
		if !send(ctx, out, b.handle(buf[:n], ifIndex, time.Now())) {
			return
		}
	}
}

func lower(n dnsmessage.Name) string { return strings.ToLower(n.String()) }

func ttl(rh dnsmessage.ResourceHeader) time.Duration { return time.Duration(rh.TTL) * time.Second }

// handle takes one mDNS message received on interface ifIndex and returns
// the peers it completes, changes or removes.
func (b *browser) handle(msg []byte, ifIndex int, now time.Time) []Peer {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response {
		return nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var gone []string
	flushed := map[string]bool{}
records:
	for section := 0; section < 3; section++ {
		for {
			var rh dnsmessage.ResourceHeader
			switch section {
			case 0:
				rh, err = p.AnswerHeader()
			case 1:
				rh, err = p.AuthorityHeader()
			default:
				rh, err = p.AdditionalHeader()
			}
			if err != nil {
				break
			}
			name := lower(rh.Name)
			switch rh.Type {
			case dnsmessage.TypePTR:
				r, err := p.PTRResource()
				if err != nil {
					break records // a malformed record ends the message
				}
				if name != b.typ {
					continue
				}
				inst := lower(r.PTR)
				if rh.TTL == 0 {
					gone = append(gone, inst)
				} else {
					st := b.inst(inst)
					st.ptrTTL, st.ptrExp = ttl(rh), now.Add(ttl(rh))
				}
			case dnsmessage.TypeSRV:
				r, err := p.SRVResource()
				if err != nil {
					break records
				}
				if !strings.HasSuffix(name, "."+b.typ) {
					continue
				}
				if rh.TTL == 0 {
					gone = append(gone, name)
					continue
				}
				st := b.inst(name)
				st.port, st.target, st.srvExp = r.Port, lower(r.Target), now.Add(ttl(rh))
			case dnsmessage.TypeTXT:
				r, err := p.TXTResource()
				if err != nil {
					break records
				}
				if !strings.HasSuffix(name, "."+b.typ) || rh.TTL == 0 {
					continue
				}
				st := b.inst(name)
				st.txt = map[string]string{}
				for _, kv := range r.TXT {
					k, v, _ := strings.Cut(kv, "=")
					st.txt[strings.ToLower(k)] = v
				}
				st.txtExp = now.Add(ttl(rh))
			case dnsmessage.TypeA, dnsmessage.TypeAAAA:
				var ip netip.Addr
				if rh.Type == dnsmessage.TypeA {
					r, err := p.AResource()
					if err != nil {
						break records
					}
					ip = netip.AddrFrom4(r.A)
				} else {
					r, err := p.AAAAResource()
					if err != nil {
						break records
					}
					ip = netip.AddrFrom16(r.AAAA).Unmap()
				}
				set := b.hosts[name]
				if set == nil {
					set = map[addrKey]time.Time{}
					b.hosts[name] = set
				}
				if rh.Class&0x8000 != 0 && !flushed[name] { // cache-flush bit (RFC 6762 §10.2)
					for k := range set {
						if k.ifIndex == ifIndex {
							delete(set, k)
						}
					}
				}
				flushed[name] = true
				if rh.TTL == 0 {
					delete(set, addrKey{ifIndex, ip})
				} else {
					set[addrKey{ifIndex, ip}] = now.Add(ttl(rh))
				}
			default:
				if skip(&p, section) != nil {
					break records
				}
			}
		}
	}
	var out []Peer
	for _, inst := range gone {
		out = append(out, b.removeLocked(inst)...)
	}
	return append(out, b.evaluateLocked(now)...)
}

// sweep forgets records whose TTL ran out (a peer that left without a
// goodbye) and reports those peers gone.
func (b *browser) sweep(now time.Time) []Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, set := range b.hosts {
		for k, exp := range set {
			if now.After(exp) {
				delete(set, k)
			}
		}
		if len(set) == 0 {
			delete(b.hosts, name)
		}
	}
	var out []Peer
	for inst, st := range b.insts {
		if !st.srvExp.IsZero() && now.After(st.srvExp) {
			out = append(out, b.removeLocked(inst)...)
		}
	}
	return append(out, b.evaluateLocked(now)...)
}

func (b *browser) removeLocked(inst string) []Peer {
	st := b.insts[inst]
	if st == nil {
		return nil
	}
	delete(b.insts, inst)
	if !st.hasEmits {
		return nil
	}
	return []Peer{{Instance: inst, Overlay: st.txt["overlay"], NodeID: nodeID(st), User: st.txt["user"], Gone: true}}
}

// evaluateLocked reports complete instances of our overlay whose addresses
// are new or changed.
func (b *browser) evaluateLocked(now time.Time) []Peer {
	var out []Peer
	for inst, st := range b.insts {
		if st.srvExp.IsZero() || st.txtExp.IsZero() || !strings.EqualFold(st.txt["overlay"], b.overlay) {
			continue
		}
		if _, err := wire.ParseNodeID(st.txt["node-id"]); err != nil {
			continue
		}
		var addrs []netip.AddrPort
		for k, exp := range b.hosts[st.target] {
			if now.After(exp) {
				continue
			}
			ap := netip.AddrPortFrom(k.ip, st.port)
			if !slices.Contains(addrs, ap) {
				addrs = append(addrs, ap)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		slices.SortFunc(addrs, func(x, y netip.AddrPort) int { return x.Compare(y) })
		key := ""
		for _, a := range addrs {
			key += a.String() + " "
		}
		if st.hasEmits && key == st.emitted {
			continue
		}
		st.emitted, st.hasEmits = key, true
		out = append(out, Peer{Instance: inst, Overlay: st.txt["overlay"], NodeID: nodeID(st), User: st.txt["user"], Addrs: addrs})
	}
	return out
}

func nodeID(st *instState) wire.NodeID {
	id, _ := wire.ParseNodeID(st.txt["node-id"])
	return id
}

func (b *browser) inst(name string) *instState {
	st := b.insts[name]
	if st == nil {
		st = &instState{}
		b.insts[name] = st
	}
	return st
}

func skip(p *dnsmessage.Parser, section int) error {
	switch section {
	case 0:
		return p.SkipAnswer()
	case 1:
		return p.SkipAuthority()
	default:
		return p.SkipAdditional()
	}
}
