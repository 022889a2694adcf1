package rtc

import "testing"

func FuzzParseTelephoneEvent(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x12, 0xc0})
	f.Add([]byte{11, 0x0a, 0x03, 0xc0})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseTelephoneEvent(b)
		if err != nil {
			return
		}
		// marshal(parse(x)) keeps the fields RFC 4733 §2.3 defines
		e2, err := parseTelephoneEvent(e.marshal())
		if err != nil || e2 != e {
			t.Fatalf("round trip %+v -> %+v (%v)", e, e2, err)
		}
	})
}

func FuzzInspectSDP(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n")
	f.Add("v=0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := inspectSDP(s)
		if err == nil {
			if d2, err := inspectSDP(setDirection(s, d.Reverse())); err != nil || (d2 != d.Reverse() && d2 != d) {
				// setDirection only rewrites existing attributes; a
				// description without one stays sendrecv.
				if err != nil {
					t.Fatalf("rewritten SDP no longer parses: %v", err)
				}
			}
		}
	})
}

func TestDirectionAlgebra(t *testing.T) {
	for _, c := range []struct{ d, rev Direction }{{SendRecv, SendRecv}, {SendOnly, RecvOnly}, {RecvOnly, SendOnly}, {Inactive, Inactive}} {
		if c.d.Reverse() != c.rev {
			t.Errorf("%v reversed = %v", c.d, c.d.Reverse())
		}
	}
	sdp := "v=0\r\na=sendrecv\r\nm=audio 9 RTP/AVP 111\r\na=recvonly\r\n"
	if got := setDirection(sdp, Inactive); got != "v=0\r\na=inactive\r\nm=audio 9 RTP/AVP 111\r\na=inactive\r\n" {
		t.Fatalf("setDirection: %q", got)
	}
}

func TestDigits(t *testing.T) {
	for i, r := range dtmfDigits {
		e, err := digitToEvent(r)
		if err != nil || int(e) != i {
			t.Fatalf("%c -> %d, %v", r, e, err)
		}
		if d, ok := eventToDigit(e); !ok || d != r {
			t.Fatalf("%d -> %c", e, d)
		}
	}
	if e, _ := digitToEvent('b'); e != 13 {
		t.Fatal("lower-case B")
	}
	if _, ok := eventToDigit(16); ok {
		t.Fatal("event 16 (flash) is not a digit")
	}
}
