package node

import (
	"sync"

	"github.com/chordphone/chordphone/overlay/wire"
)

// MessageCount is how many messages of one code this node sent and received.
type MessageCount struct{ Sent, Received uint64 }

// msgCounts counts messages by code: the requests this node originates and the answers to
// them, the requests it serves and its answers (RFC 7851 §5.3 MESSAGES_SENT_RCVD). What it
// only forwards is not decoded, so not counted by code.
type msgCounts struct {
	mu sync.Mutex
	m  map[wire.MessageCode]MessageCount
}

func (c *msgCounts) add(code wire.MessageCode, sent bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[wire.MessageCode]MessageCount{}
	}
	v := c.m[code]
	if sent {
		v.Sent++
	} else {
		v.Received++
	}
	c.m[code] = v
}

// MessageCounts returns the messages sent and received by code (see msgCounts).
func (n *Node) MessageCounts() map[wire.MessageCode]MessageCount {
	n.counts.mu.Lock()
	defer n.counts.mu.Unlock()
	out := make(map[wire.MessageCode]MessageCount, len(n.counts.m))
	for k, v := range n.counts.m {
		out[k] = v
	}
	return out
}
