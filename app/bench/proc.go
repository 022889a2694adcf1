// Package bench holds Chordphone's bench commands (`chordphone bench ...`): measurements that
// print their figures as JSON, for the README's tables.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// proc is a headless chordphone started by a bench.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
}

// startProc starts exe headless with args; in network namespace ns unless ns is "" (`ip netns
// exec` execs the program, so the process is the phone's own).
func startProc(ctx context.Context, ns, exe, name, dir string, args ...string) (*proc, error) {
	argv := append([]string{exe, "--headless", "--log-level", "warn"}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stdin: stdin, events: make(chan map[string]any, 4096)}
	go func() { // owner: proc; ends when the process's stdout closes
		defer func() {
			close(p.events)
			_ = cmd.Wait()
			logf.Close()
		}()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
	}()
	return p, nil
}

func (p *proc) send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// wait returns the next event of kind want; an error event from a call fails the wait.
func (p *proc) wait(want string, timeout time.Duration) (map[string]any, time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				return nil, time.Time{}, fmt.Errorf("%s exited while waiting for %s", p.name, want)
			}
			if e["event"] == want {
				return e, time.Now(), nil
			}
		case <-t.C:
			return nil, time.Time{}, fmt.Errorf("%s: no %s event within %v", p.name, want, timeout)
		}
	}
}

func (p *proc) stop() {
	_ = p.send("quit")
	p.stdin.Close()
	select {
	case <-waitClosed(p.events):
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func waitClosed(ch chan map[string]any) <-chan struct{} {
	done := make(chan struct{})
	go func() { // owner: stop; ends when the events channel closes
		for range ch {
		}
		close(done)
	}()
	return done
}

// member is one process of a bench overlay: its name, extra flags and the event that says it
// is ready ("joined", or "registered" for a phone); ns and addr, when set, are the network
// namespace it runs in and the address it listens on (else loopback).
type member struct {
	name  string
	args  []string
	ready string
	ns    string
	addr  string
}

// startOverlay starts members in order, each with its own profile under dir: the
// first starts the overlay, the others join through it. It returns the processes started so
// far (to be stopped by the caller) even when one fails.
func startOverlay(ctx context.Context, exe, dir, overlay string, members []member) ([]*proc, error) {
	var procs []*proc
	var boot string
	for _, m := range members {
		pdir := filepath.Join(dir, m.name)
		if err := os.MkdirAll(pdir, 0o700); err != nil {
			return procs, err
		}
		// Port 0: each peer takes a free port itself; the first one's is learnt from status.
		addr := "127.0.0.1"
		if m.addr != "" {
			addr = m.addr
		}
		args := append([]string{"--profile", pdir, "--listen", addr + ":0", "--overlay", overlay}, m.args...)
		if boot != "" {
			args = append(args, "--bootstrap", boot)
		}
		p, err := startProc(ctx, m.ns, exe, m.name, pdir, args...)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		if _, _, err := p.wait(m.ready, 60*time.Second); err != nil {
			return procs, err
		}
		if boot == "" {
			if err := p.send("status"); err != nil {
				return procs, err
			}
			st, _, err := p.wait("status", 10*time.Second)
			if err != nil {
				return procs, err
			}
			boot, _ = st["listen"].(string)
		}
	}
	return procs, nil
}

// benchOverlay is a bench's loopback overlay: its processes and the temporary directory that
// holds their profiles.
type benchOverlay struct {
	dir   string
	procs []*proc
}

// startBenchOverlay starts members (startOverlay) with exe, or this program when exe is "",
// in a new temporary directory named after the bench. On an error it has already stopped
// what it started; otherwise close does.
func startBenchOverlay(ctx context.Context, exe, bench string, members []member) (*benchOverlay, error) {
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return nil, err
		}
		exe = e
	}
	dir, err := os.MkdirTemp("", "chordphone-"+bench+"-")
	if err != nil {
		return nil, err
	}
	o := &benchOverlay{dir: dir}
	o.procs, err = startOverlay(ctx, exe, dir, bench+".test", members)
	if err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// close stops every process and removes the profiles' directory.
func (o *benchOverlay) close() {
	for _, p := range o.procs {
		p.stop()
	}
	os.RemoveAll(o.dir)
}

// addPorts adds the UDP ports the overlay's processes own now to ports.
func (o *benchOverlay) addPorts(ports map[int]bool) {
	for _, p := range o.procs {
		for _, port := range udpPorts(p.cmd.Process.Pid) {
			ports[port] = true
		}
	}
}
