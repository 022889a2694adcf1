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

	"github.com/chordphone/chordphone/overlay/wire"
)

// BrowseOptions tune Browse.
type BrowseOptions struct {
	Proto      string          // "udp" (default) or "tcp"
	Interfaces []net.Interface // default: every up, multicast-capable one
	// MaxInterval caps the time between queries (default 60 s; RFC 6762
	// §5.2 asks for intervals that at least double, up to an hour).
	MaxInterval time.Duration
}

// Browse reports the peers of overlay on the LAN until ctx ends, when the
// channel is closed. A peer is sent again when its addresses change, and
// with Gone set when it says goodbye.
func Browse(ctx context.Context, overlay string) (<-chan Peer, error) {
	return BrowseWith(ctx, overlay, BrowseOptions{})
}

// BrowseWith is Browse with options.
func BrowseWith(ctx context.Context, overlay string, o BrowseOptions) (<-chan Peer, error) {
	c, err := listen(ctx, o.Interfaces)
	if err != nil {
		return nil, err
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = 60 * time.Second
	}
	b := &browser{
		overlay: overlay, typ: serviceType(o.Proto), c: c,
		insts: map[string]*instState{}, hosts: map[string]map[netip.Addr]bool{},
		out: make(chan Peer, 16),
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer cancel(); b.read(ctx) }()
	go func() {
		defer wg.Done()
		b.query(ctx, o.MaxInterval)
		_ = c.close()
	}()
	go func() { wg.Wait(); close(b.out) }()
	return b.out, nil
}

type instState struct {
	port     uint16
	target   string
	txt      map[string]string
	srv, tx  bool
	emitted  string
	hasEmits bool
}

type browser struct {
	overlay string
	typ     string
	c       *mconn
	insts   map[string]*instState
	hosts   map[string]map[netip.Addr]bool
	out     chan Peer
}

func (b *browser) query(ctx context.Context, maxInterval time.Duration) {
	name, err := dnsmessage.NewName(b.typ)
	if err != nil {
		return
	}
	bl := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	_ = bl.StartQuestions()
	_ = bl.Question(dnsmessage.Question{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET})
	msg, err := bl.Finish()
	if err != nil {
		return
	}
	interval := time.Second
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := range b.c.ifaces {
			_ = b.c.multicast(msg, &b.c.ifaces[i])
		}
		t.Reset(interval)
		interval = min(2*interval, maxInterval)
	}
}

func (b *browser) read(ctx context.Context) {
	buf := make([]byte, 9000)
	for {
		n, _, _, err := b.c.read(buf)
		if err != nil {
			return // socket closed by the querier when ctx ends
		}
		peers := b.handle(buf[:n])
		for _, p := range peers {
			select {
			case b.out <- p:
			case <-ctx.Done():
				return
			}
		}
	}
}

func lower(n dnsmessage.Name) string { return strings.ToLower(n.String()) }

// handle takes one mDNS message and returns the peers it completes.
func (b *browser) handle(msg []byte) []Peer {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response {
		return nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil
	}
	var gone []string
	touched := false
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
					continue
				}
				if b.insts[inst] == nil {
					b.insts[inst] = &instState{}
				}
				touched = true
			case dnsmessage.TypeSRV:
				r, err := p.SRVResource()
				if err != nil {
					break records
				}
				if !strings.HasSuffix(name, "."+b.typ) {
					continue
				}
				st := b.inst(name)
				st.port, st.target, st.srv = r.Port, lower(r.Target), true
				touched = true
			case dnsmessage.TypeTXT:
				r, err := p.TXTResource()
				if err != nil {
					break records
				}
				if !strings.HasSuffix(name, "."+b.typ) {
					continue
				}
				st := b.inst(name)
				st.txt = map[string]string{}
				for _, kv := range r.TXT {
					k, v, _ := strings.Cut(kv, "=")
					st.txt[strings.ToLower(k)] = v
				}
				st.tx = true
				touched = true
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
				// cache-flush bit: this message's records replace older ones (RFC 6762 §10.2)
				if b.hosts[name] == nil || (rh.Class&0x8000 != 0 && !flushed[name]) {
					b.hosts[name] = map[netip.Addr]bool{}
				}
				flushed[name] = true
				if rh.TTL == 0 {
					delete(b.hosts[name], ip)
				} else {
					b.hosts[name][ip] = true
				}
				touched = true
			default:
				if skip(&p, section) != nil {
					break records
				}
			}
		}
	}
	var out []Peer
	for _, inst := range gone {
		if st := b.insts[inst]; st != nil {
			if st.hasEmits {
				out = append(out, Peer{Instance: inst, Overlay: st.txt["overlay"], NodeID: nodeID(st), User: st.txt["user"], Gone: true})
			}
			delete(b.insts, inst)
		}
	}
	if !touched {
		return out
	}
	for inst, st := range b.insts {
		if !st.srv || !st.tx || !strings.EqualFold(st.txt["overlay"], b.overlay) {
			continue
		}
		if _, err := wire.ParseNodeID(st.txt["node-id"]); err != nil {
			continue
		}
		var addrs []netip.AddrPort
		for ip := range b.hosts[st.target] {
			addrs = append(addrs, netip.AddrPortFrom(ip, st.port))
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
