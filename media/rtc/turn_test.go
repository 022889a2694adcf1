package rtc_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/turn/v2"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/rtc"
)

// startTURN runs a TURN server (RFC 5766) on 127.0.0.1 for the test.
func startTURN(t *testing.T) (url, user, pass string) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const realm = "chordphone.test"
	user, pass = "alice", "secret"
	key := turn.GenerateAuthKey(user, realm, pass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(u, r string, _ net.Addr) ([]byte, bool) {
			return key, u == user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP("127.0.0.1"), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("turn:%s?transport=udp", conn.LocalAddr()), user, pass
}

// Through a TURN relay only: audio arrives and Stats reports Relayed.
func TestCallThroughTURNRelay(t *testing.T) {
	url, user, pass := startTURN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mk := func(seed uint32) *peer {
		p := &peer{sig: analysis.TestSignal(audio.SampleRate*2, audio.SampleRate, seed)}
		p.src = audio.NewSampleSource(p.sig, audio.WAVSourceOptions{Loop: true})
		p.out = filepath.Join(t.TempDir(), "out.wav")
		var err error
		if p.sink, err = audio.CreateWAVSink(p.out); err != nil {
			t.Fatal(err)
		}
		p.s, err = rtc.NewSession(rtc.SessionConfig{
			Source: p.src, Sink: p.sink, LoopbackOnly: true, RelayOnly: true,
			ICEServers: []rtc.ICEServer{{URLs: []string{url}, Username: user, Credential: pass}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.s.Close(); p.sink.Close() })
		return p
	}
	a, b := mk(1), mk(2)
	offer, err := a.s.CreateOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := b.s.AcceptOffer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a.s, rtc.EventConnected)
	waitPackets(t, ctx, b.s, 200)
	st := a.s.Stats()
	t.Logf("b: %+v", b.s.Stats())
	t.Logf("a: local %s remote %s relayed %v", st.LocalCandidate, st.RemoteCandidate, st.Relayed)
	if !st.Relayed {
		t.Fatalf("media not relayed: %s -> %s", st.LocalCandidate, st.RemoteCandidate)
	}
	a.s.Close()
	b.s.Close()
	b.sink.Close()
	checkArrived(t, "a->b via TURN", a.sig, b.out)
}
