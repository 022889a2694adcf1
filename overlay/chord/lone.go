package chord

import (
	"context"
	"time"
)

// maxRejoinWait caps the back-off between tries of a peer that lost every neighbour.
const maxRejoinWait = 15 * time.Second

// IsLone reports whether this joined peer has lost every routing peer while it knows
// bootstrap peers to find the overlay again through: it is then responsible for the whole
// ring only in its own eyes (RFC 6940 §10.7.1), and what it answers for others (and what
// it stored for itself) proves nothing about the overlay.
func (c *Chord) IsLone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loneLocked()
}

func (c *Chord) loneLocked() bool {
	return c.joined && !c.leaving && !c.s.Client && len(c.ring) == 0 && len(c.n.Settings().Bootstrap) > 0
}

// startRejoin starts the rejoin loop (rejoin) once a joined peer has lost every
// neighbour, unless it runs already.
func (c *Chord) startRejoin() {
	c.mu.Lock()
	start := c.loneLocked() && !c.rejoining && !c.s.NoPartitionCheck
	if start {
		c.rejoining = true
	}
	c.mu.Unlock()
	if start && !c.n.Go(c.rejoin) {
		c.mu.Lock()
		c.rejoining = false
		c.mu.Unlock()
	}
}

// rejoin brings a peer that lost all its neighbours back into the overlay (RFC 6940
// §10.7.1: with no successor left it must re-join; §10.7.4.4): after two reliability
// timers (a neighbour may come back by itself), then with a back-off doubling to
// maxRejoinWait, it runs the partition check through each bootstrap peer — a Ping for
// its own Node-ID answered by another peer S', then an Attach and an Update to S' — until
// it has a routing peer again. Without this the check runs only every chord-ping-interval
// (an hour by default).
func (c *Chord) rejoin(ctx context.Context) {
	defer func() {
		c.mu.Lock()
		c.rejoining = false
		c.mu.Unlock()
	}()
	wait := 2 * c.n.Settings().ReliabilityTimer
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(wait)):
		}
		if !c.IsLone() {
			return
		}
		for _, addr := range c.n.Settings().Bootstrap {
			if c.partitionCheck(ctx, addr) {
				c.n.Logger().Info("lone peer found the overlay again", "bootstrap", addr)
				break
			}
		}
		wait = min(2*wait, maxRejoinWait)
	}
}
