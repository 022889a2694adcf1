package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IdleReport is what `chordphone bench idle` prints (issue 12 point 6).
type IdleReport struct {
	Peers           int     `json:"peers"`
	DurationSeconds float64 `json:"duration_s"`
	SettleSeconds   float64 `json:"settle_s"`
	JoinSeconds     float64 `json:"overlay_join_s"`
	// CPU of all peer processes (utime+stime from /proc/PID/stat) over the window, as a
	// fraction of one core per peer, and in percent.
	CPUCoreFractionPerPeer float64 `json:"cpu_core_fraction_per_peer"`
	CPUPercentPerPeer      float64 `json:"cpu_percent_of_one_core_per_peer"`
	CPUPercentMaxPeer      float64 `json:"cpu_percent_of_one_core_busiest_peer"`
	// Maintenance traffic: UDP datagrams sent by the peers' sockets (captured on lo, counted
	// by source port among the peers' own UDP sockets), per peer.
	BytesPerSecondPerPeer   float64 `json:"ip_bytes_per_s_per_peer"`
	PayloadPerSecondPerPeer float64 `json:"udp_payload_bytes_per_s_per_peer"`
	PacketsPerSecondPerPeer float64 `json:"packets_per_s_per_peer"`
	PeerSockets             int     `json:"peer_udp_sockets"`
	Method                  string  `json:"method"`
}

// Idle measures the idle cost of storing peers: it starts a loopback overlay of headless
// processes, waits for it to settle, then measures over a window the CPU time of every peer
// process and the UDP traffic they send. Traffic is captured with dumpcap on lo (all UDP,
// headers only) and attributed by source port to the UDP sockets the peer processes own
// (from /proc/PID/fd and /proc/net/udp*, read at the start and end of the window), so
// other programs' loopback traffic is not counted; it needs the right to capture on lo.
func Idle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	peers := fs.Int("peers", 50, "number of storing peers")
	duration := fs.Duration("duration", 10*time.Minute, "measurement window")
	settle := fs.Duration("settle", time.Minute, "wait after the last peer joined, before measuring")
	exe := fs.String("exe", "", "chordphone binary to run the peers (default: this program)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := runIdle(ctx, *exe, *peers, *duration, *settle, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench idle: %v\n", err)
		return 1
	}
	return printJSON(stdout, r)
}

func runIdle(ctx context.Context, exe string, peers int, duration, settle time.Duration, progress io.Writer) (*IdleReport, error) {
	if peers < 2 {
		return nil, errors.New("need at least 2 peers")
	}
	for _, tool := range []string{"dumpcap", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is needed to count traffic: %w", tool, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	members := make([]member, peers)
	for i := range members {
		members[i] = member{name: fmt.Sprintf("peer%02d", i), ready: "joined"}
	}
	start := time.Now()
	o, err := startBenchOverlay(ctx, exe, "idle", members)
	if err != nil {
		return nil, err
	}
	defer o.close()
	dir, procs := o.dir, o.procs
	r := &IdleReport{Peers: peers, JoinSeconds: time.Since(start).Seconds(), SettleSeconds: settle.Seconds(), Method: "cpu: /proc/PID/stat utime+stime; traffic: dumpcap on lo, UDP datagrams whose source port is a socket of a peer process"}
	fmt.Fprintf(progress, "bench idle: %d peers joined in %.1f s; settling %v\n", peers, r.JoinSeconds, settle)
	if err := sleep(ctx, settle); err != nil {
		return nil, err
	}

	pcap := filepath.Join(dir, "idle.pcapng")
	capture, err := startCapture(ctx, pcap)
	if err != nil {
		return nil, err
	}
	ports := map[int]bool{}
	o.addPorts(ports)
	cpu0 := make([]int64, len(procs))
	for i, p := range procs {
		if cpu0[i], err = cpuTicks(p.cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	fmt.Fprintf(progress, "bench idle: measuring for %v\n", duration)
	if err := sleep(ctx, duration); err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	var total, busiest int64
	for i, p := range procs {
		c, err := cpuTicks(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (did it exit?)", p.name, err)
		}
		d := c - cpu0[i]
		total += d
		busiest = max(busiest, d)
	}
	o.addPorts(ports)
	if err := capture.stop(); err != nil {
		return nil, err
	}
	r.DurationSeconds = elapsed.Seconds()
	const hz = 100 // USER_HZ: /proc reports clock ticks of 1/100 s on Linux
	coreSeconds := float64(total) / hz
	r.CPUCoreFractionPerPeer = coreSeconds / elapsed.Seconds() / float64(peers)
	r.CPUPercentPerPeer = 100 * r.CPUCoreFractionPerPeer
	r.CPUPercentMaxPeer = 100 * float64(busiest) / hz / elapsed.Seconds()
	r.PeerSockets = len(ports)

	bytes, payload, packets, err := countTraffic(ctx, pcap, ports)
	if err != nil {
		return nil, err
	}
	per := elapsed.Seconds() * float64(peers)
	r.BytesPerSecondPerPeer = float64(bytes) / per
	r.PayloadPerSecondPerPeer = float64(payload) / per
	r.PacketsPerSecondPerPeer = float64(packets) / per
	return r, nil
}

// cpuTicks returns utime+stime of a process in clock ticks (proc(5): fields 14 and 15).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from its end.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return ut + st, nil
}

// udpPorts returns the local ports of the UDP sockets process pid holds: its socket inodes
// (/proc/PID/fd) looked up in /proc/net/udp and udp6.
func udpPorts(pid int) []int {
	inodes := map[string]bool{}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(fdDir)
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, tab := range []string{"udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, tab))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || !inodes[fl[9]] {
				continue
			}
			_, hexPort, ok := strings.Cut(fl[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil {
				ports = append(ports, int(p))
			}
		}
		f.Close()
	}
	return ports
}

type capture struct {
	cmd  *exec.Cmd
	done chan error
}

// startCapture runs dumpcap on lo (UDP only, headers only) and returns once it captures.
func startCapture(ctx context.Context, file string) (*capture, error) {
	cmd := exec.CommandContext(ctx, "dumpcap", "-i", "lo", "-f", "udp", "-s", "128", "-w", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dumpcap: %w", err)
	}
	c := &capture{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan string, 1) // "" once capturing, else what dumpcap said
	go func() {                   // owner: capture; ends when dumpcap closes its stderr (it exited)
		sc := bufio.NewScanner(stderr)
		var lines []string
		sent := false
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if !sent && strings.Contains(sc.Text(), "Capturing on") {
				sent = true
				ready <- ""
			}
		}
		if !sent {
			ready <- "dumpcap: " + strings.Join(lines, "; ")
		}
		c.done <- cmd.Wait()
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			_ = cmd.Process.Kill()
			return nil, errors.New(msg)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("dumpcap did not start capturing within 20 s")
	}
	return c, nil
}

func (c *capture) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("dumpcap did not stop")
	}
}

// countTraffic sums the datagrams of a capture whose source port is in ports: IP bytes
// (frame length less the 14-byte loopback Ethernet header), UDP payload bytes and packets.
func countTraffic(ctx context.Context, file string, ports map[int]bool) (ipBytes, payload, packets int64, err error) {
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", file, "-T", "fields", "-e", "udp.srcport", "-e", "frame.len", "-e", "udp.length")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, fmt.Errorf("tshark: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		src, _ := strconv.Atoi(f[0])
		if !ports[src] {
			continue
		}
		fl, _ := strconv.ParseInt(f[1], 10, 64)
		ul, _ := strconv.ParseInt(f[2], 10, 64)
		ipBytes += fl - 14
		payload += ul - 8
		packets++
	}
	if err := cmd.Wait(); err != nil {
		return 0, 0, 0, fmt.Errorf("tshark: %w", err)
	}
	return ipBytes, payload, packets, nil
}
