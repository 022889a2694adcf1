package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// PresenceReport is what `chordphone bench presence` prints (issue 19): the overlay traffic
// of one round of contact lookups, which a phone repeats every presence interval, against the
// same overlay's traffic over as long a window without it.
type PresenceReport struct {
	Peers              int     `json:"storing_peers"`
	Contacts           int     `json:"contacts"`
	Registered         int     `json:"contacts_registered"`
	RoundSeconds       float64 `json:"round_s"`
	WindowSeconds      float64 `json:"window_s"`
	RoundBytes         int64   `json:"round_ip_bytes_all_processes"`
	RoundPackets       int64   `json:"round_packets_all_processes"`
	BaselineBytes      int64   `json:"baseline_ip_bytes_same_window"`
	ExtraBytes         int64   `json:"extra_ip_bytes_per_round"`
	IntervalSeconds    float64 `json:"interval_s"`
	IdleBytesPerSecond float64 `json:"extra_idle_ip_bytes_per_s"`
	Method             string  `json:"method"`
}

// Presence measures what following N contacts' presence costs a phone at rest: a loopback
// overlay of headless processes, one registered contact (bob) and a phone (alice) that adds
// N contacts, each added contact being looked up once as every contact is each interval.
func Presence(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench presence", flag.ContinueOnError)
	fs.SetOutput(stderr)
	peers := fs.Int("peers", 5, "number of storing peers besides the two phones")
	contacts := fs.Int("contacts", 50, "contacts of the measured phone (the first is registered)")
	interval := fs.Duration("interval", 10*time.Minute, "how often a phone looks its contacts up (app/phone presenceInterval)")
	exe := fs.String("exe", "", "chordphone binary to run the peers (default: this program)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := runPresence(ctx, *exe, *peers, *contacts, *interval, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench presence: %v\n", err)
		return 1
	}
	return printJSON(stdout, r)
}

func runPresence(ctx context.Context, exe string, peers, contacts int, interval time.Duration, progress io.Writer) (*PresenceReport, error) {
	if contacts < 1 || peers < 1 {
		return nil, errors.New("need at least one peer and one contact")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	members := make([]member, 0, peers+2)
	for i := range peers {
		members = append(members, member{name: fmt.Sprintf("peer%02d", i), ready: "joined"})
	}
	members = append(members, member{name: "bob", args: []string{"--user", "bob"}, ready: "registered"},
		member{name: "alice", args: []string{"--user", "alice"}, ready: "registered"})
	o, err := startBenchOverlay(ctx, exe, "presence", members)
	if err != nil {
		return nil, err
	}
	defer o.close()
	dir, procs := o.dir, o.procs
	alice := procs[len(procs)-1]
	fmt.Fprintf(progress, "bench presence: overlay up; settling 10 s\n")
	if err := sleep(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	ports := map[int]bool{}
	o.addPorts(ports)
	window := func(name string, f func() error) (bytes, packets int64, d time.Duration, err error) {
		pcap := filepath.Join(dir, name+".pcapng")
		c, err := startCapture(ctx, pcap)
		if err != nil {
			return 0, 0, 0, err
		}
		t0 := time.Now()
		ferr := f()
		d = time.Since(t0)
		if err := c.stop(); err != nil {
			return 0, 0, 0, err
		}
		if ferr != nil {
			return 0, 0, 0, ferr
		}
		bytes, _, packets, err = countTraffic(ctx, pcap, ports)
		return bytes, packets, d, err
	}
	r := &PresenceReport{Peers: peers, Contacts: contacts, Registered: 1, IntervalSeconds: interval.Seconds(),
		Method: "dumpcap on lo: UDP datagrams sent by any process of the overlay (all hops, both directions); baseline: the same overlay over as long a window right after"}
	var round, win time.Duration
	t0 := time.Now()
	r.RoundBytes, r.RoundPackets, win, err = window("round", func() error {
		for i := range contacts {
			user := fmt.Sprintf("nobody%02d", i)
			if i == 0 {
				user = "bob"
			}
			if err := alice.send("contact " + user); err != nil {
				return err
			}
		}
		for range contacts {
			if _, _, err := alice.wait("presence", 60*time.Second); err != nil {
				return err
			}
		}
		round = time.Since(t0)
		return sleep(ctx, tail) // acknowledgements and what follows
	})
	if err != nil {
		return nil, err
	}
	r.RoundSeconds, r.WindowSeconds = round.Seconds(), win.Seconds()
	r.BaselineBytes, _, _, err = window("baseline", func() error {
		return sleep(ctx, win) // the overlay alone, as long a window
	})
	if err != nil {
		return nil, err
	}
	r.ExtraBytes = r.RoundBytes - r.BaselineBytes
	r.IdleBytesPerSecond = float64(r.ExtraBytes) / interval.Seconds()
	return r, nil
}

// tail is how long the round's window goes on after the last answer.
const tail = 5 * time.Second

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
