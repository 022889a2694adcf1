package sipcall

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzServe feeds arbitrary bytes to an Endpoint as a peer would send them on an AppAttach
// connection (RFC 7904 §5.1): framing, sipgo's parser and transaction layer and the
// Endpoint's handlers must never panic, whatever arrives (issue 12 point 3). Incoming calls
// are rejected with 488, as the phone does for an unusable offer.
func FuzzServe(f *testing.F) {
	for _, s := range []string{validOptions, validInvite, validOptions + validInvite, "\r\n\r\n" + validOptions,
		strings.Replace(validInvite, "CSeq: 1 INVITE", "CSeq: 1 BYE", 1),
		strings.Replace(validInvite, "INVITE sip:", "ACK sip:", 1),
		strings.Replace(validOptions, "OPTIONS sip:", "BYE sip:", 1),
		strings.Replace(validOptions, "OPTIONS sip:", "CANCEL sip:", 1),
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	ep, err := NewEndpoint(Settings{User: "bob", Overlay: "chord.test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Keepalive: -1, IdleTimeout: -1, RingTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	defer ep.Close()
	ep.OnInvite(func(in *Incoming) { _ = in.Reject(488) })
	f.Fuzz(func(t *testing.T, data []byte) {
		peer, conn := net.Pipe()
		if err := ep.Serve(conn, "fuzz-peer"); err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() { // owner: this run; ends when the pipe closes
			_, _ = io.Copy(io.Discard, peer)
			close(drained)
		}()
		_ = peer.SetWriteDeadline(time.Now().Add(2 * time.Second))
		for len(data) > 0 { // one record per write, at most 1200 bytes, as over DTLS
			n := min(len(data), 1200)
			if _, err := peer.Write(data[:n]); err != nil {
				break
			}
			data = data[n:]
		}
		_ = peer.Close()
		<-drained
	})
}
