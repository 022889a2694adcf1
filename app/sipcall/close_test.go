package sipcall

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// holdConn holds back every write that starts with prefix until release is closed.
type holdConn struct {
	net.Conn
	prefix  []byte
	held    chan struct{} // closed at the first held write
	release chan struct{}
	once    sync.Once
	rel     sync.Once
}

func newHoldConn(t *testing.T, c net.Conn, prefix string) *holdConn {
	h := &holdConn{Conn: c, prefix: []byte(prefix), held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.letGo) // before the phones close (LIFO)
	return h
}

// letGo sends the held writes and lets every later one through.
func (c *holdConn) letGo() { c.rel.Do(func() { close(c.release) }) }

func (c *holdConn) Write(b []byte) (int, error) {
	if bytes.HasPrefix(b, c.prefix) {
		c.once.Do(func() { close(c.held) })
		<-c.release
	}
	return c.Conn.Write(b)
}

// TestCloseBeforeAckSaysBye: the callee's Endpoint closes while the caller's ACK to the 200 is
// still on its way. RFC 3261 §15: the callee sends BYE only after the ACK; Close waits for
// it (briefly) instead of dropping the call, takes the ACK although it is closing, and says
// BYE: the caller sees a remote hangup, not a lost connection.
func TestCloseBeforeAckSaysBye(t *testing.T) {
	alice, bob := newPhone(t, "alice", nil), newPhone(t, "bob", nil)
	aRaw, bConn := dtlsPair(t, nil)
	aConn := newHoldConn(t, aRaw, "ACK ")
	if err := bob.ep.Serve(bConn, "alice-node"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := alice.ep.Invite(ctx, aConn, "bob", []byte(offerSDP))
	if err != nil {
		t.Fatal(err)
	}
	in := bob.nextIncoming(t)
	answered := make(chan error, 1)
	go func() { answered <- in.Answer(ctx, []byte(answerSDP)) }()
	waited := make(chan error, 1)
	go func() { _, err := out.Wait(ctx); waited <- err }() // returns once the ACK is written
	select {
	case <-aConn.held:
	case err := <-waited:
		t.Fatalf("Wait = %v before the ACK", err)
	case <-time.After(wait):
		t.Fatal("the caller sent no ACK")
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = bob.ep.Close()
	}()
	// Let the ACK go once Close has begun.
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		bob.ep.mu.Lock()
		closing := bob.ep.closing
		bob.ep.mu.Unlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not begin")
		}
	}
	aConn.letGo()
	if r := waitDone(t, "caller", out.Call); r.Cause != CauseRemoteHangup {
		t.Errorf("caller end reason %+v, want remote hangup", r)
	}
	if r := waitDone(t, "callee", in.Call); r.Cause != CauseClosed {
		t.Errorf("callee end reason %+v, want closed", r)
	}
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatal("Close did not return")
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait: %v", err)
	}
	<-answered
}
