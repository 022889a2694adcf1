package sipcall_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/chordphone/chordphone/app/sipcall"
)

// The phone's use of an Endpoint: bob serves the connections the overlay accepts for him
// (AppAttach, application 5060), alice calls over the connection she opened. Here a
// net.Pipe stands in for the AppAttach DTLS connection.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	alice, _ := sipcall.NewEndpoint(sipcall.Settings{User: "alice", Overlay: "chord.test", Logger: quiet})
	bob, _ := sipcall.NewEndpoint(sipcall.Settings{User: "bob", Overlay: "chord.test", Logger: quiet})
	defer alice.Close()
	defer bob.Close()

	bob.OnInvite(func(in *sipcall.Incoming) {
		// A busy phone would call in.Reject(486); an unusable offer gets in.Reject(488).
		fmt.Println("incoming call from", in.From)
		_ = in.Ringing()
		_ = in.Answer(context.Background(), []byte("v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 111\r\n"))
	})

	aConn, bConn := net.Pipe()
	_ = bob.Serve(bConn, "node-id-of-alice")

	ctx := context.Background()
	call, err := alice.Invite(ctx, aConn, "bob", []byte("v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 111\r\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for r := range call.Responses() {
		_ = r // 100 Trying, 180 Ringing (the phone's "ringing" event), then the final one
	}
	answer, err := call.Wait(ctx)
	if err != nil {
		fmt.Println("call failed:", err, call.EndReason())
		return
	}
	fmt.Println("answered; answer is valid SDP:", sipcall.CheckSDP(answer) == nil)
	_ = call.Bye(ctx)
	<-call.Done()
	fmt.Println("ended:", call.EndReason())
	// Output:
	// incoming call from alice
	// answered; answer is valid SDP: true
	// ended: hangup
}
