// Package wanemu builds, for tests and benchmarks, an emulated wide-area network out of network
// namespaces: every host sits in its own namespace with one TUN interface, wan0, and a router in
// the calling process reads each IPv4 packet from the sender's TUN and writes it to the
// receiver's TUN after a one-way delay (optionally with jitter and random loss). The kernel here
// has no netem qdisc; the router gives real sockets a real slow path, and the programs in the
// namespaces do not know they are being delayed.
//
// Hosts use 198.18.0.0/24 (benchmarking addresses: not private, so a peer there counts as
// publicly reachable, RFC 6940 §9). It needs root and the ip command; New fails otherwise.
package wanemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxHosts is the most hosts a Net holds.
const MaxHosts = 250

// Params shape the emulated network's path between any two hosts.
type Params struct {
	Delay  time.Duration // one-way delay
	Jitter time.Duration // each packet's delay varies uniformly in ±Jitter (packets keep their order)
	Loss   float64       // fraction of packets dropped, 0..1
}

// Net is a running emulated network.
type Net struct {
	Namespaces []string     // the hosts' namespaces, for `ip netns exec`
	Addrs      []netip.Addr // the hosts' addresses on wan0

	p       Params
	tuns    []*os.File
	out     []chan packet
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	fwd     atomic.Uint64
	dropped atomic.Uint64
	once    sync.Once
}

type packet struct {
	b   []byte
	due time.Time
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Available says why New cannot work here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("wanemu: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("wanemu: no ip command")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("wanemu: no TUN device: %w", err)
	}
	return nil
}

// New builds n hosts and starts the router. Close removes everything.
func New(n int, p Params) (*Net, error) {
	if n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("wanemu: %d hosts, want 1..%d", n, MaxHosts)
	}
	if err := Available(); err != nil {
		return nil, err
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	ctx, cancel := context.WithCancel(context.Background())
	w := &Net{p: p, cancel: cancel}
	for i := 0; i < n; i++ {
		if err := w.addHost(tag, i); err != nil {
			w.Close()
			return nil, err
		}
	}
	for range w.tuns {
		w.out = append(w.out, make(chan packet, 4096))
	}
	for i := range w.tuns {
		w.wg.Add(2)
		go w.readLoop(i)       // owner: Net; ends when Close closes the TUN
		go w.writeLoop(ctx, i) // owner: Net; ends when Close cancels ctx
	}
	return w, nil
}

// addHost makes namespace i with its TUN wan0. The TUN is created in this process's namespace,
// where its file stays open for the router, and then moved into the host's namespace.
func (w *Net) addHost(tag string, i int) error {
	ns := fmt.Sprintf("wan%s-%d", tag, i)
	if err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	w.Namespaces = append(w.Namespaces, ns)
	name := fmt.Sprintf("wt%s%d", tag, i)
	f, err := openTUN(name)
	if err != nil {
		return err
	}
	w.tuns = append(w.tuns, f)
	addr := netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
	w.Addrs = append(w.Addrs, addr)
	for _, c := range [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "link", "set", name, "netns", ns},
		{"ip", "-n", ns, "link", "set", name, "name", "wan0"},
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.wan0.disable_ipv6=1"},
		{"ip", "-n", ns, "addr", "add", addr.String() + "/24", "dev", "wan0"},
		{"ip", "-n", ns, "link", "set", "wan0", "up"},
	} {
		if err := run(c...); err != nil {
			return err
		}
	}
	return nil
}

// openTUN creates TUN interface name (IFF_NO_PI: bare IP packets) and returns its file, in
// non-blocking mode so that Close ends a pending read.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("wanemu: opening /dev/net/tun: %w", err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:unix.IFNAMSIZ-1], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("wanemu: TUNSETIFF %s: %w", name, e)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("wanemu: %w", err)
	}
	return os.NewFile(uintptr(fd), "tun:"+name), nil
}

// readLoop routes the packets host i sends: by IPv4 destination to the receiver's queue, due
// after the delay; anything else (and lost packets) is dropped.
func (w *Net) readLoop(i int) {
	defer w.wg.Done()
	buf := make([]byte, 65536)
	var last time.Time
	for {
		n, err := w.tuns[i].Read(buf)
		if err != nil {
			return
		}
		j, ok := w.dest(buf[:n])
		if !ok || (w.p.Loss > 0 && random() < w.p.Loss) {
			w.dropped.Add(1)
			continue
		}
		due := time.Now().Add(w.delay())
		if due.Before(last) { // jitter keeps the order, like a real single path
			due = last
		}
		last = due
		select {
		case w.out[j] <- packet{b: append([]byte(nil), buf[:n]...), due: due}:
		default: // the receiver's queue is full: a congested router drops
			w.dropped.Add(1)
		}
	}
}

// dest returns the host index of an IPv4 packet's destination.
func (w *Net) dest(b []byte) (int, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return 0, false
	}
	d := netip.AddrFrom4([4]byte(b[16:20]))
	for j, a := range w.Addrs {
		if a == d {
			return j, true
		}
	}
	return 0, false
}

func (w *Net) delay() time.Duration {
	d := w.p.Delay
	if w.p.Jitter > 0 {
		d += time.Duration(random()*float64(2*w.p.Jitter)) - w.p.Jitter
	}
	return max(d, 0)
}

// random returns a uniform number in [0, 1).
func random() float64 {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<53))
	if err != nil {
		return 0
	}
	return float64(n.Int64()) / (1 << 53)
}

// writeLoop delivers host j's packets when they are due.
func (w *Net) writeLoop(ctx context.Context, j int) {
	defer w.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var p packet
		select {
		case <-ctx.Done():
			return
		case p = <-w.out[j]:
		}
		if d := time.Until(p.due); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if _, err := w.tuns[j].Write(p.b); err == nil {
			w.fwd.Add(1)
		} else {
			w.dropped.Add(1)
		}
	}
}

// Stats returns how many packets the router delivered and dropped so far.
func (w *Net) Stats() (forwarded, dropped uint64) { return w.fwd.Load(), w.dropped.Load() }

// Close stops the router and deletes the namespaces.
func (w *Net) Close() {
	w.once.Do(func() {
		w.cancel()
		for _, f := range w.tuns {
			f.Close()
		}
		w.wg.Wait()
		for _, ns := range w.Namespaces {
			_ = run("ip", "netns", "delete", ns)
		}
	})
}

// Command returns a command that runs name in host i's namespace.
func (w *Net) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", w.Namespaces[i], name}, args...)...)
}

// Do runs f on a thread inside host i's namespace: sockets f opens belong to that namespace
// for their whole life (setns(2) moves only the calling thread).
func (w *Net) Do(i int, f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("wanemu: %w", err)
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + w.Namespaces[i])
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("wanemu: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("wanemu: setns: %w", err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and ends with this goroutine: it must not run other code.
		return fmt.Errorf("wanemu: returning from the namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
