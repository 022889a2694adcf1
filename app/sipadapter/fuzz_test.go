package sipadapter

import (
	"log/slog"
	"net"
	"testing"
)

const fuzzOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"

// FuzzSetRemote: any SDP from a UA is taken or refused with an error, never a panic.
func FuzzSetRemote(f *testing.F) {
	f.Add([]byte(fuzzOffer))
	f.Add([]byte("v=0\r\nc=IN IP4 x\r\nm=audio 1 RTP/AVP 0\r\n"))
	l, err := newLeg("127.0.0.1", slog.Default())
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = l.setRemote(b)
		_ = l.sdp("127.0.0.1", l.codec())
	})
}

// FuzzReceive: any datagram on the RTP socket, plain or with SRTP keys set, is used or
// dropped, never a panic.
func FuzzReceive(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xff, 0xff}, false)
	f.Add([]byte{0x80, 101, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 5, 0x8a, 0, 160}, true)
	l, err := newLeg("127.0.0.1", slog.Default())
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	plain := l.srtp
	if err := l.setRemote([]byte(fuzzOffer)); err != nil {
		f.Fatal(err)
	}
	keys := l.srtp
	l.onDTMF = func(rune) {}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	f.Fuzz(func(t *testing.T, b []byte, srtp bool) {
		l.mu.Lock()
		l.srtp = plain
		if srtp {
			l.srtp = keys
		}
		l.mu.Unlock()
		l.receive(b, from, &rxState{ended: true})
	})
}

// FuzzInfoDigit: any SIP INFO body gives one valid digit or none.
func FuzzInfoDigit(f *testing.F) {
	f.Add([]byte("Signal=5\r\nDuration=160\r\n"))
	f.Add([]byte("#"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, ok := infoDigit(b); ok && len(d) != 1 {
			t.Fatalf("digit %q", d)
		}
	})
}
