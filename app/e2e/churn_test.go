package e2e

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill9 kills a headless process abruptly, as a crash would.
func kill9(t *testing.T, p *Proc) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
}

// lookupAll asks from for every user's registration; it returns the users not found.
func lookupAll(t *testing.T, from *Proc, users []string) []string {
	t.Helper()
	var missing []string
	for _, u := range users {
		from.Send(t, "lookup "+u)
		for {
			e := from.Next(t, 15*time.Second)
			if e["event"] == "lookup" && e["peer"] == u {
				if len(strs(e["devices"])) == 0 {
					missing = append(missing, u)
				}
				break
			}
			if e["event"] == "error" && strings.Contains(fmt.Sprint(e["message"]), u) {
				missing = append(missing, u)
				break
			}
		}
	}
	return missing
}

// waitRepaired polls until every user is found from every phone in phones; it returns how
// long that took.
func waitRepaired(t *testing.T, phones []*phoneProc, users []string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var missing []string
		for _, ph := range phones {
			missing = append(missing, lookupAll(t, ph.Proc, users)...)
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("registrations still missing %v after %v: %v", bound, time.Since(start), missing)
		}
	}
}

// TestKillTwoAdjacentStoringPeers: kill -9 two storing peers that are neighbours on the ring;
// every registration is still fetchable (replication to two successors, RFC 6940 §10.4).
func TestKillTwoAdjacentStoringPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	o := StartOverlay(t, "adjacent.test", 8)
	var phones []*phoneProc
	var users []string
	for i := 0; i < 6; i++ {
		u := fmt.Sprintf("user%d", i)
		phones = append(phones, startPhone(t, o, u, uint32(i+1)))
		users = append(users, u)
	}
	waitRepaired(t, phones, users, 30*time.Second)

	// Two storing peers adjacent in Node-ID order among the storing peers, not the bootstrap.
	order := make([]int, len(o.IDs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return o.IDs[order[a]] < o.IDs[order[b]] })
	var a, b int
	for k := range order {
		a, b = order[k], order[(k+1)%len(order)]
		if a != 0 && b != 0 {
			break
		}
	}
	t.Logf("killing adjacent storing peers %s and %s", o.IDs[a][:8], o.IDs[b][:8])
	kill9(t, o.Peers[a])
	kill9(t, o.Peers[b])
	took := waitRepaired(t, phones, users, 60*time.Second)
	t.Logf("every registration fetchable from every phone %v after the kill", took.Round(time.Millisecond))
}

// TestChurnKillThird: 20 storing peers and 10 registered users (30 processes); a third of the
// storing peers are killed at once. Calls are tried during the repair; after it every
// registration is fetchable and calls between the users succeed.
func TestChurnKillThird(t *testing.T) {
	if testing.Short() {
		t.Skip("30 processes")
	}
	o := StartOverlay(t, "churn.test", 20)
	var phones []*phoneProc
	var users []string
	for i := 0; i < 10; i++ {
		u := fmt.Sprintf("user%d", i)
		phones = append(phones, startPhone(t, o, u, uint32(i+1), "--auto-answer"))
		users = append(users, u)
	}
	waitRepaired(t, phones[:1], users, 30*time.Second)

	rng := rand.New(rand.NewPCG(1, 2))
	victims := rng.Perm(19)[:7] // a third of the 20 storing peers, never the bootstrap
	killedAt := time.Now()
	for _, v := range victims {
		kill9(t, o.Peers[v+1])
	}
	// Calls during the repair: user0 calls user1..user4 while the ring heals.
	failed := 0
	for i := 1; i <= 4; i++ {
		if !tryCall(t, phones[0], phones[i]) {
			failed++
		}
	}
	waitRepaired(t, phones, users, 90*time.Second)
	t.Logf("killed 7 of 20 storing peers; every registration fetchable from every phone %v after the kill; %d of 4 calls during repair failed",
		time.Since(killedAt).Round(time.Millisecond), failed)
	// After repair, calls between the users succeed.
	for i := 5; i < 9; i++ {
		if !tryCall(t, phones[i], phones[i+1]) {
			t.Errorf("call %s -> %s failed after repair", users[i], users[i+1])
		}
	}
}

// tryCall makes one call from a to b (b answers automatically), hangs it up, and reports
// whether it was answered.
func tryCall(t *testing.T, a, b *phoneProc) bool {
	t.Helper()
	callee := b.Name
	a.Send(t, "call "+callee)
	for {
		e := a.Next(t, 30*time.Second)
		switch e["event"] {
		case "answered":
			b.Wait(t, "answered", 20*time.Second)
			a.Send(t, "hangup")
			a.Wait(t, "hangup", 20*time.Second)
			b.Wait(t, "hangup", 20*time.Second)
			return true
		case "hangup":
			t.Logf("call %s -> %s failed: %v", a.Name, callee, e["reason"])
			return false
		}
	}
}
