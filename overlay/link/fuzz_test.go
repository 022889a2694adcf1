package link

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/pion/stun"

	"github.com/chordphone/chordphone/overlay/node"
)

// FuzzSTUNResponse feeds arbitrary datagrams to the STUN answerer of the listen port: it
// must never panic, and answer only Binding requests, with the sender's address.
func FuzzSTUNResponse(f *testing.F) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	f.Add(req.Raw)
	f.Add([]byte{0, 1, 0, 0})
	f.Add([]byte{})
	from := netip.MustParseAddrPort("192.0.2.7:4242")
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, ok := stunResponse(b, from)
		if !ok {
			return
		}
		m := &stun.Message{Raw: resp}
		if err := m.Decode(); err != nil {
			t.Fatalf("our response does not decode: %v", err)
		}
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(m); err != nil || xa.Port != 4242 || !xa.IP.Equal(from.Addr().AsSlice()) {
			t.Fatalf("mapped address %v, %v", xa, err)
		}
	})
}

type countingReceiver struct{ got []uint32 }

func (c *countingReceiver) Receive(_ node.Link, msg []byte) {
	c.got = append(c.got, binary.BigEndian.Uint32(msg))
}

// FuzzInOrderReceiver feeds data frames with arbitrary (duplicated, reordered, far-off)
// sequence numbers to the in-order receiver: what it delivers is always 0, 1, 2, ... with no
// gap or duplicate, and everything up to the first missing number is delivered.
func FuzzInOrderReceiver(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{3, 2, 1, 0, 0, 1})
	f.Add([]byte{1, 1, 200, 0, 255, 2})
	f.Fuzz(func(t *testing.T, seqs []byte) {
		rec := &countingReceiver{}
		l := &Link{t: &Transport{recv: rec}, s: &Settings{MaxMessageSize: 1 << 20}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), inOrder: true, early: map[uint32][]byte{}}
		seen := map[uint32]bool{}
		for i := 0; i+1 < len(seqs); i += 2 {
			seq := uint32(binary.BigEndian.Uint16(seqs[i:])) % 600
			seen[seq] = true
			msg := binary.BigEndian.AppendUint32(nil, seq)
			l.acceptData(seq, msg)
		}
		for i, s := range rec.got {
			if s != uint32(i) {
				t.Fatalf("delivered %v", rec.got)
			}
		}
		want := 0
		for seen[uint32(want)] {
			want++
		}
		// Frames more than reorderSpan ahead of the next expected one are dropped (the sender
		// never has them in flight), so only demand the prefix reachable within the span.
		if len(rec.got) > want {
			t.Fatalf("delivered %d, only %d contiguous", len(rec.got), want)
		}
	})
}
