package jitter_test

import (
	"testing"
	"time"

	"github.com/chordphone/chordphone/media/jitter"
)

var t0 = time.Unix(1000, 0)

func pkt(seq int) jitter.Packet {
	return jitter.Packet{Seq: uint16(seq), Timestamp: uint32(seq * 960), Payload: []byte{byte(seq)}}
}

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func kinds(b *jitter.Buffer, n int) []jitter.Frame {
	var out []jitter.Frame
	for range n {
		f := b.Pop()
		f.Payload = append([]byte(nil), f.Payload...)
		out = append(out, f)
	}
	return out
}

func TestInOrderPlaysEveryPacket(t *testing.T) {
	b := jitter.New(jitter.Config{})
	if f := b.Pop(); f.Kind != jitter.Silence {
		t.Fatalf("empty buffer played %v", f.Kind)
	}
	played := 0
	for i := range 100 {
		b.Push(pkt(i), at(i*20))
		if f := b.Pop(); f.Kind == jitter.Normal {
			if int(f.Payload[0]) != played%256 {
				t.Fatalf("played seq %d, want %d", f.Payload[0], played)
			}
			played++
		}
	}
	if played < 98 {
		t.Fatalf("played %d of 100", played)
	}
	if s := b.Stats(); s.Concealed != 0 || s.Late != 0 || s.Target != 20*time.Millisecond {
		t.Fatalf("stats %+v", s)
	}
}

func TestReorderedPacketsPlayInOrder(t *testing.T) {
	b := jitter.New(jitter.Config{MinDelay: 60 * time.Millisecond})
	order := []int{0, 2, 1, 3, 5, 4, 6, 7, 9, 8, 10, 11, 12, 13, 14, 15}
	var got []int
	for i, s := range order {
		b.Push(pkt(s), at(i*20))
		f := b.Pop()
		switch f.Kind {
		case jitter.Normal:
			got = append(got, int(f.Payload[0]))
		case jitter.Silence:
		default:
			t.Fatalf("slot %d: %v", f.Seq, f.Kind)
		}
	}
	if len(got) < 12 {
		t.Fatalf("played only %v", got)
	}
	for i, s := range got {
		if s != i {
			t.Fatalf("played %v", got)
		}
	}
}

func TestLossUsesFECThenConcealment(t *testing.T) {
	b := jitter.New(jitter.Config{MinDelay: 60 * time.Millisecond})
	for _, s := range []int{0, 1, 3, 4, 7, 8, 9} { // 2 lost (3 here: FEC), 5,6 lost (6 missing: conceal 5, FEC 6 from 7)
		b.Push(pkt(s), at(s*20))
	}
	want := []jitter.Kind{jitter.Normal, jitter.Normal, jitter.FEC, jitter.Normal, jitter.Normal, jitter.Conceal, jitter.FEC, jitter.Normal}
	for i, f := range kinds(b, len(want)) {
		if f.Kind != want[i] {
			t.Fatalf("slot %d: %v, want %v", i, f.Kind, want[i])
		}
		if f.Kind == jitter.FEC && int(f.Payload[0]) != i+1 {
			t.Fatalf("slot %d: FEC from packet %d, want %d", i, f.Payload[0], i+1)
		}
	}
	if s := b.Stats(); s.FECRecovered != 2 || s.Concealed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDuplicateAndLatePackets(t *testing.T) {
	b := jitter.New(jitter.Config{})
	b.Push(pkt(0), at(0))
	b.Push(pkt(0), at(1))
	b.Push(pkt(2), at(40))
	kinds(b, 2) // plays 0, then conceals 1 (2 is here)
	b.Push(pkt(1), at(50))
	s := b.Stats()
	if s.Duplicates != 1 || s.Late != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestUnderrunHoldsPlayoutThenSilence(t *testing.T) {
	b := jitter.New(jitter.Config{SilenceAfter: 3})
	b.Push(pkt(0), at(0))
	b.Pop()
	fs := kinds(b, 5)
	want := []jitter.Kind{jitter.Conceal, jitter.Conceal, jitter.Conceal, jitter.Silence, jitter.Silence}
	for i, f := range fs {
		if f.Kind != want[i] || f.Seq != 1 {
			t.Fatalf("pop %d: %v seq %d", i, f.Kind, f.Seq)
		}
	}
	b.Push(pkt(1), at(120)) // the sender resumes: nothing was lost
	if f := b.Pop(); f.Kind != jitter.Normal || f.Seq != 1 {
		t.Fatalf("after resume: %v seq %d", f.Kind, f.Seq)
	}
}

// simulate delivers packets seq 0..n-1 sent every 20 ms with extra(seq) ms
// of delay, popping one frame per 20 ms (10 ms after each send), and calls
// check after each pop.
func simulate(b *jitter.Buffer, from, n int, extra func(int) int, check func()) {
	type arrival struct{ seq, ms int }
	var q []arrival
	for s := from; s < from+n; s++ {
		q = append(q, arrival{s, s*20 + extra(s)})
	}
	for tick := from; tick < from+n; tick++ {
		now := tick*20 + 10
		// push everything that has arrived, in arrival order
		for {
			best := -1
			for i, a := range q {
				if a.ms <= now && (best < 0 || a.ms < q[best].ms) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			b.Push(pkt(q[best].seq), at(q[best].ms))
			q = append(q[:best], q[best+1:]...)
		}
		b.Pop()
		check()
	}
}

// Under jitter the buffer grows; once the network calms down it shrinks back
// towards the minimum; it never exceeds the maximum.
func TestAdaptsToJitterWithinBounds(t *testing.T) {
	b := jitter.New(jitter.Config{})
	bounded := func() {
		if d := b.Stats().Delay; d > 220*time.Millisecond {
			t.Fatalf("delay %v above the maximum", d)
		}
	}
	// 10 s with up to 100 ms of jitter (deterministic pattern)
	simulate(b, 0, 500, func(s int) int { return (s * 37) % 100 }, bounded)
	high := b.Stats()
	if high.Target < 100*time.Millisecond || high.Target > 200*time.Millisecond {
		t.Fatalf("target under 100 ms jitter: %v", high.Target)
	}
	if high.Late > 25 {
		t.Fatalf("%d of 500 packets late under 100 ms jitter", high.Late)
	}
	// 10 s of a calm network
	simulate(b, 500, 500, func(int) int { return 0 }, bounded)
	s := b.Stats()
	t.Logf("under jitter: %+v", high)
	t.Logf("after calm:   %+v", s)
	if s.Target > 40*time.Millisecond || s.Delay > 60*time.Millisecond || s.Dropped == 0 {
		t.Fatalf("did not shrink: %+v", s)
	}
}

func TestSequenceJumpRestarts(t *testing.T) {
	b := jitter.New(jitter.Config{})
	b.Push(pkt(0), at(0))
	b.Pop()
	b.Push(pkt(30000), at(20))
	b.Push(pkt(30001), at(40))
	if s := b.Stats(); s.Resets != 1 {
		t.Fatalf("stats %+v", s)
	}
	if f := b.Pop(); f.Kind != jitter.Normal || f.Seq != 30000 {
		t.Fatalf("after jump: %v %d", f.Kind, f.Seq)
	}
}

func TestSequenceWrapAround(t *testing.T) {
	b := jitter.New(jitter.Config{})
	for i := 65530; i < 65546; i++ {
		b.Push(pkt(i), at(i*20))
		if f := b.Pop(); f.Kind == jitter.Conceal {
			t.Fatalf("concealed at %d", i)
		}
	}
	if s := b.Stats(); s.Resets != 0 || s.Concealed != 0 {
		t.Fatalf("stats %+v", s)
	}
}
