package sipcall

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const validOptions = "OPTIONS sip:bob@chord.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@chord.test>;tag=a\r\nTo: <sip:bob@chord.test>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

const validInvite = "INVITE sip:bob@chord.test SIP/2.0\r\nv: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK2\r\nf: <sip:alice@chord.test>;tag=a\r\nt: <sip:bob@chord.test>\r\ni: c2\r\nCSeq: 1 INVITE\r\nc: application/sdp\r\nl: 4\r\n\r\nv=0\n"

func drain(f *framer) []frameEvent {
	var evs []frameEvent
	for {
		ev, ok := f.next()
		if !ok {
			return evs
		}
		evs = append(evs, ev)
	}
}

func TestFramerSplitsStream(t *testing.T) {
	stream := validOptions + "\r\n\r\n" + validInvite + validOptions
	// Byte by byte and all at once give the same messages.
	for _, step := range []int{1, 7, len(stream)} {
		var f framer
		var got []frameEvent
		for i := 0; i < len(stream); i += step {
			f.push([]byte(stream[i:min(i+step, len(stream))]))
			got = append(got, drain(&f)...)
		}
		var kinds []eventKind
		for _, ev := range got {
			kinds = append(kinds, ev.kind)
		}
		want := []eventKind{evMessage, evPong, evMessage, evMessage}
		if len(kinds) != len(want) {
			t.Fatalf("step %d: events %v, want %v", step, kinds, want)
		}
		for i := range want {
			if kinds[i] != want[i] {
				t.Fatalf("step %d: events %v, want %v", step, kinds, want)
			}
		}
		if string(got[2].msg) != validInvite {
			t.Fatalf("step %d: INVITE framed as %q", step, got[2].msg)
		}
	}
}

func TestFramerRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     eventKind
		code     string
	}{
		{"no content-length", strings.Replace(validOptions, "Content-Length: 0\r\n", "", 1), evReply, "400"},
		{"bad content-length", strings.Replace(validOptions, "Content-Length: 0", "Content-Length: x", 1), evReply, "400"},
		{"conflicting content-length", strings.Replace(validOptions, "Content-Length: 0", "Content-Length: 0\r\nl: 3", 1), evReply, "400"},
		{"cseq method", strings.Replace(validOptions, "CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1), evReply, "400"},
		{"no call-id", strings.Replace(validOptions, "Call-ID: c1\r\n", "", 1), evDrop, ""},
		{"bad uri", strings.Replace(validOptions, "sip:bob@chord.test SIP", "sip:bob@[::1 SIP", 1), evReply, "400"},
		{"no branch", strings.Replace(validOptions, ";branch=z9hG4bK1", "", 1), evReply, "400"},
		{"malformed ACK is never answered", strings.Replace(strings.Replace(validOptions, "OPTIONS", "ACK", 2), "CSeq: 1 ACK", "CSeq: x ACK", 1), evDrop, ""},
		{"malformed response", "SIP/2.0 200 OK\r\nCSeq: nope\r\nContent-Length: 0\r\n\r\n", evDrop, ""},
		{"too large", strings.Replace(validOptions, "Content-Length: 0", "Content-Length: 70000", 1), evReply, "413"},
		{"not sip", "HELLO\r\n", evDrop, ""},
		{"binary", "\x16\x03\x01", evDrop, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f framer
			f.push([]byte(tc.in))
			evs := drain(&f)
			if len(evs) == 0 || evs[0].kind != tc.kind {
				t.Fatalf("events %+v, want first of kind %d", evs, tc.kind)
			}
			if tc.code != "" && !strings.HasPrefix(string(evs[0].reply), "SIP/2.0 "+tc.code+" ") {
				t.Fatalf("reply %q, want %s", evs[0].reply, tc.code)
			}
			// The reply is itself a valid SIP message.
			if tc.kind == evReply && checkMessage(evs[0].reply) != "" {
				t.Fatalf("reply %q is not valid SIP: %s", evs[0].reply, checkMessage(evs[0].reply))
			}
		})
	}
}

func TestFramerResyncsAfterGarbage(t *testing.T) {
	var f framer
	f.push([]byte("\x00\x00junk\x01more junk\r\nnot sip at all\r\n" + validOptions))
	evs := drain(&f)
	last := evs[len(evs)-1]
	if last.kind != evMessage || string(last.msg) != validOptions {
		t.Fatalf("events %+v: the valid message after the garbage was not recovered", evs)
	}
	// An oversized body is skipped whole and the next message still found.
	f = framer{}
	big := strings.Replace(validOptions, "Content-Length: 0", "Content-Length: 70000", 1) + strings.Repeat("x", 70000)
	f.push([]byte(big + validOptions))
	evs = drain(&f)
	if len(evs) != 2 || evs[0].kind != evReply || evs[1].kind != evMessage {
		t.Fatalf("events after oversized message: %+v", evs)
	}
}

// checkStream asserts the fuzz invariants: whatever the peer sends, sipgo's stream parser (as
// its TCP transport runs it) parses everything the framer passes on without an error, the
// framer's replies are whole messages, and its buffer stays bounded.
func checkStream(t *testing.T, data []byte, split int) {
	var f framer
	var passed bytes.Buffer
	chunk := max(1, split%97)
	for i := 0; i < len(data); i += chunk {
		f.push(data[i:min(i+chunk, len(data))])
		for {
			ev, ok := f.next()
			if !ok {
				break
			}
			switch ev.kind {
			case evMessage:
				passed.Write(ev.msg)
			case evReply:
				if !bytes.HasPrefix(ev.reply, []byte("SIP/2.0 4")) || !bytes.HasSuffix(ev.reply, []byte("\r\nContent-Length: 0\r\n\r\n")) {
					t.Fatalf("reply %q", ev.reply)
				}
				if bytes.Count(ev.reply, []byte("\r\n\r\n")) != 1 {
					t.Fatalf("reply %q has more than one header section end", ev.reply)
				}
			}
		}
		if len(f.buf) > maxMessage+chunk {
			t.Fatalf("framer holds %d bytes", len(f.buf))
		}
	}
	par := sip.NewParser().NewSIPStream()
	defer par.Close()
	n := 0
	if err := par.ParseSIPStream(passed.Bytes(), func(sip.Message) { n++ }); err != nil {
		t.Fatalf("sipgo cannot parse what the framer passed: %v\n%q", err, passed.Bytes())
	}
}

func FuzzFramer(f *testing.F) {
	for _, s := range []string{validOptions, validInvite, validOptions + validInvite, "\r\n\r\n", "garbage\r\n" + validOptions,
		strings.Replace(validOptions, "Content-Length: 0\r\n", "", 1),
		strings.Replace(validOptions, "CSeq: 1", "CSeq: x", 1)} {
		f.Add([]byte(s), uint16(1000))
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		checkStream(t, data, int(split))
	})
}

func FuzzUserOf(f *testing.F) {
	for _, s := range []string{"sip:alice@chord.test", "sips:bob@x", "sip:@x", "tel:+123", "sip:a%20b@x", "sip:" + strings.Repeat("a", 65) + "@x", "sip:al;ice@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil {
			return
		}
		user, err := userOf(u)
		if err != nil {
			return
		}
		if user != u.User || validUser(user) != nil || user == "" || len(user) > 64 {
			t.Fatalf("userOf(%q) = %q", s, user)
		}
	})
}

func FuzzCheckSDP(f *testing.F) {
	f.Add([]byte(offerSDP))
	f.Add([]byte(answerSDP))
	f.Add([]byte("v=0\nm=audio 1 RTP/AVP 0\n"))
	f.Add([]byte("v=1\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckSDP(b) != nil {
			return
		}
		if !bytes.HasPrefix(b, []byte("v=")) || !bytes.Contains(b, []byte("\nm=")) {
			t.Fatalf("CheckSDP accepted %q", b)
		}
	})
}

func TestCheckSDP(t *testing.T) {
	if err := CheckSDP([]byte(offerSDP)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "hello", "v=0\r\n", "o=x\r\nv=0\r\n", "v=0\r\no=x\r\ns=-\r\nt=0 0\r\nm=audio\x00\r\n", "v=0\r\no=x\r\ns=-\r\nt=0 0\r\n"} {
		if CheckSDP([]byte(bad)) == nil {
			t.Errorf("CheckSDP(%q) accepted", bad)
		}
	}
}

func TestFramerRecoversFromLostRecord(t *testing.T) {
	body := "v=0\r\n" + strings.Repeat("a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n", 60)
	msg := strings.Replace(validInvite, "l: 4\r\n\r\nv=0\n", fmt.Sprintf("l: %d\r\n\r\n%s", len(body), body), 1)
	records := func(s string) []string {
		var out []string
		for len(s) > maxRecord {
			out = append(out, s[:maxRecord])
			s = s[maxRecord:]
		}
		return append(out, s)
	}
	recs := records(msg)
	if len(recs) < 3 {
		t.Fatalf("test message too short: %d records", len(recs))
	}
	for lost := range recs {
		var f framer
		var evs []frameEvent
		for i, r := range recs {
			if i != lost {
				f.push([]byte(r))
				evs = append(evs, drain(&f)...)
			}
		}
		for _, r := range recs { // the retransmission
			f.push([]byte(r))
			evs = append(evs, drain(&f)...)
		}
		var msgs []string
		for _, ev := range evs {
			if ev.kind == evMessage {
				msgs = append(msgs, string(ev.msg))
			}
		}
		if len(msgs) != 1 || msgs[0] != msg {
			t.Errorf("record %d lost: %d messages delivered, want the retransmitted one intact", lost, len(msgs))
		}
	}
}
