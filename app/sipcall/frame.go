package sipcall

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Limits of the framer. sipgo refuses messages longer than sip.ParseMaxMessageLength; a start
// line longer than maxStartLine without CRLF is garbage.
const (
	maxMessage   = 65535
	maxStartLine = 8192
)

// eventKind says what the framer found in the stream.
type eventKind int

const (
	evMessage eventKind = iota + 1 // msg is one whole, valid SIP message for sipgo
	evReply                        // reply is a response to write back (400/413); the message is dropped
	evPong                         // a double-CRLF keepalive ping: answer with one CRLF
	evDrop                         // bytes dropped (garbage or unanswerable malformed message)
)

type frameEvent struct {
	kind   eventKind
	msg    []byte
	reply  []byte
	reason string // why a message was dropped or answered with an error
}

// framer cuts a byte stream (the AppAttach connection) into SIP messages (RFC 3261 §7.5,
// §18.3: Content-Length delimits messages on streams) and checks each one with sipgo's own
// stream parser before it reaches sipgo. sipgo closes a TCP connection on any framing error;
// the framer makes sure it only ever sees whole, parsable messages, answers malformed
// requests with 400 itself and resynchronises after garbage, so one bad message does not end
// the calls on the connection.
//
// Each push is one read: on a DTLS connection one record. A message always starts a new
// record (the peer writes each message with its own writes), so when a message is still
// incomplete and a later record starts with a SIP start line, the incomplete message lost a
// datagram: it is dropped and framing goes on from that record (the peer retransmits).
type framer struct {
	buf    []byte
	skip   int   // body bytes of an oversized message still to discard
	bounds []int // offsets in buf where a pushed chunk (a record) began; never 0
}

const maxBounds = 64

func (f *framer) push(data []byte) {
	if len(f.buf) > 0 && len(data) > 0 {
		f.bounds = append(f.bounds, len(f.buf))
		if len(f.bounds) > maxBounds {
			f.bounds = f.bounds[1:]
		}
	}
	f.buf = append(f.buf, data...)
}

func (f *framer) consume(n int) {
	f.buf = f.buf[n:]
	if len(f.buf) == 0 {
		f.buf = nil // let the backing array go
	}
	keep := f.bounds[:0]
	for _, b := range f.bounds {
		if b > n {
			keep = append(keep, b-n)
		}
	}
	f.bounds = keep
}

// resync looks, while a message is incomplete, for a later record that starts a new
// message; if there is one it drops everything before it.
func (f *framer) resync() (frameEvent, bool) { return f.resyncBefore(len(f.buf)) }

// resyncBefore is resync for the message that would occupy buf[:end].
func (f *framer) resyncBefore(end int) (frameEvent, bool) {
	for _, b := range f.bounds {
		if b >= end {
			break
		}
		rest := f.buf[b:]
		eol := bytes.Index(rest, []byte("\r\n"))
		if eol > 0 && strictStartLine(string(rest[:eol])) {
			f.consume(b)
			f.skip = 0
			return frameEvent{kind: evDrop, reason: "incomplete message (lost datagram?) dropped"}, true
		}
	}
	return frameEvent{}, false
}

// next returns the next event, or ok == false when more data is needed. It is one piece:
// one pass over the buffer whose steps (body to skip, ping, stray CRLF, garbage, start line,
// header section, Content-Length, body, lost-datagram resync) each either end the pass with
// an event or consume bytes and go round again, in an order the resync rules depend on.
func (f *framer) next() (ev frameEvent, ok bool) {
	for {
		if f.skip > 0 {
			n := min(f.skip, len(f.buf))
			f.skip -= n
			f.consume(n)
			if f.skip > 0 {
				return f.resync()
			}
		}
		// RFC 5626 §3.5.1: a double CRLF between messages is a keepalive ping, a single CRLF
		// its pong; RFC 3261 §7.5: CRLFs before a start line are ignored.
		if bytes.HasPrefix(f.buf, []byte("\r\n\r\n")) {
			f.consume(4)
			return frameEvent{kind: evPong}, true
		}
		if len(f.buf) == 0 || len(f.buf) < 4 && bytes.HasPrefix([]byte("\r\n\r\n"), f.buf) {
			return frameEvent{}, false // maybe the start of a ping; a lone pong needs no action
		}
		if bytes.HasPrefix(f.buf, []byte("\r\n")) {
			f.consume(2)
			continue
		}
		// Bytes no start line can hold (control characters) are garbage: drop through them.
		eol := bytes.Index(f.buf, []byte("\r\n"))
		lineEnd := eol
		if lineEnd < 0 {
			lineEnd = len(f.buf)
		}
		if i := bytes.LastIndexFunc(f.buf[:lineEnd], func(r rune) bool { return r < 0x20 && r != '\t' && r != '\r' || r == 0x7f }); i >= 0 {
			f.consume(i + 1)
			return frameEvent{kind: evDrop, reason: "control characters outside a message"}, true
		}
		if eol < 0 {
			if len(f.buf) > maxStartLine {
				f.consume(len(f.buf))
				return frameEvent{kind: evDrop, reason: "start line too long"}, true
			}
			return frameEvent{}, false
		}
		start := string(f.buf[:eol])
		if !plausibleStartLine(start) {
			// Drop this line and the complete lines after it up to a plausible start line,
			// as one event (the tail of a message that lost a datagram is many lines).
			n, lines := eol+2, 1
			for {
				next := bytes.Index(f.buf[n:], []byte("\r\n"))
				if next < 0 || plausibleStartLine(string(f.buf[n:n+next])) {
					break
				}
				n += next + 2
				lines++
			}
			f.consume(n)
			return frameEvent{kind: evDrop, reason: fmt.Sprintf("not SIP (%d lines)", lines)}, true
		}
		hend := bytes.Index(f.buf, []byte("\r\n\r\n"))
		if hend < 0 {
			if len(f.buf) > maxMessage {
				f.consume(len(f.buf))
				return frameEvent{kind: evDrop, reason: "header section too long"}, true
			}
			return f.resync()
		}
		if ev, ok := f.resyncBefore(hend); ok {
			return ev, true
		}
		head := f.buf[:hend+2] // start line and header lines, each ending in CRLF
		bodyOff := hend + 4
		lines := unfoldHeaderLines(string(head[eol+2:]))
		clen, clErr := contentLength(lines)
		if clErr != nil {
			// Without a usable Content-Length the end of the body is unknown: take the
			// header section as the whole message (RFC 3261 §18.3 makes it malformed).
			f.consume(bodyOff)
			return rejectEvent(start, lines, 400, "Bad Request", clErr.Error()), true
		}
		total := bodyOff + clen
		if total > maxMessage {
			f.consume(bodyOff)
			f.skip = clen
			return rejectEvent(start, lines, 413, "Request Entity Too Large", "message longer than 65535 bytes"), true
		}
		if ev, ok := f.resyncBefore(min(total, len(f.buf))); ok {
			return ev, true // a message inside this one: this one lost a datagram
		}
		if len(f.buf) < total {
			return frameEvent{}, false
		}
		msg := bytes.Clone(f.buf[:total])
		f.consume(total)
		if reason := checkMessage(msg); reason != "" {
			return rejectEvent(start, lines, 400, "Bad Request", reason), true
		}
		return frameEvent{kind: evMessage, msg: msg}, true
	}
}

// plausibleStartLine accepts "METHOD SP Request-URI SP SIP/2.0" and
// "SIP/2.0 SP 3DIGIT SP Reason" shapes (RFC 3261 §7.1, §7.2); details are sipgo's to check.
func plausibleStartLine(line string) bool {
	a, rest, ok1 := strings.Cut(line, " ")
	b, c, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || a == "" || b == "" {
		return false
	}
	if strings.EqualFold(a, "SIP/2.0") {
		return len(b) == 3 && b[0] >= '1' && b[0] <= '6' && isDigits(b)
	}
	return isToken(a) && strings.EqualFold(c, "SIP/2.0")
}

// strictStartLine accepts only start lines of the methods and version we speak, so that the
// tail of a line split across reads ("TIONS sip:...") is never taken for a start line.
func strictStartLine(line string) bool {
	if !plausibleStartLine(line) {
		return false
	}
	a, rest, _ := strings.Cut(line, " ")
	if a == "SIP/2.0" {
		return true
	}
	switch a {
	case "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE":
		return strings.HasPrefix(rest, "sip:") || strings.HasPrefix(rest, "sips:")
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isToken: RFC 3261 §25.1 token characters.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

// unfoldHeaderLines splits a header section (lines ending in CRLF) into logical header lines,
// joining continuation lines (RFC 3261 §7.3.1).
func unfoldHeaderLines(section string) []string {
	var out []string
	for _, l := range strings.Split(section, "\r\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += " " + strings.TrimSpace(l)
			continue
		}
		out = append(out, l)
	}
	return out
}

// splitHeader splits "Name : value" into the canonical lower-case long name and the value.
func splitHeader(line string) (name, value string, ok bool) {
	n, v, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", false
	}
	n = strings.ToLower(strings.TrimSpace(n))
	switch n { // RFC 3261 §7.3.3 compact forms
	case "l":
		n = "content-length"
	case "v":
		n = "via"
	case "f":
		n = "from"
	case "t":
		n = "to"
	case "i":
		n = "call-id"
	case "c":
		n = "content-type"
	case "m":
		n = "contact"
	}
	return n, strings.TrimSpace(v), true
}

// checkParser is sipgo's default parser; its streams only read it.
var checkParser = sip.NewParser()

var errNoContentLength = errors.New("missing Content-Length")

// contentLength reads the body length from the header lines. RFC 3261 §18.3 / §20.14: it is
// mandatory on stream transports; several values must agree.
func contentLength(lines []string) (int, error) {
	found := -1
	for _, l := range lines {
		name, v, ok := splitHeader(l)
		if !ok || name != "content-length" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || !isDigits(v) {
			return 0, errors.New("invalid Content-Length")
		}
		if found >= 0 && found != n {
			return 0, errors.New("conflicting Content-Length headers")
		}
		found = n
	}
	if found < 0 {
		return 0, errNoContentLength
	}
	return found, nil
}

// checkMessage runs msg through sipgo's stream parser, exactly as its TCP transport will, and
// checks the headers every request and response must carry (RFC 3261 §8.1.1). It returns why
// the message is not acceptable, or "".
func checkMessage(msg []byte) string {
	par := checkParser.NewSIPStream()
	defer par.Close()
	var got []sip.Message
	if err := par.ParseSIPStream(msg, func(m sip.Message) { got = append(got, m) }); err != nil {
		return "unparsable: " + err.Error()
	}
	if len(got) != 1 {
		return "not exactly one message"
	}
	m := got[0]
	if m.Via() == nil || m.From() == nil || m.To() == nil || m.CallID() == nil || m.CSeq() == nil {
		return "missing one of Via, From, To, Call-ID, CSeq"
	}
	if m.ContentLength() == nil || int(*m.ContentLength()) != len(m.Body()) {
		return "Content-Length does not match the body"
	}
	if req, ok := m.(*sip.Request); ok {
		if req.CSeq().MethodName != req.Method {
			return "CSeq method does not match the request method" // RFC 3261 §8.1.1.5
		}
		if req.Recipient.Scheme != "sip" && req.Recipient.Scheme != "sips" {
			return "Request-URI is not a SIP URI"
		}
		if req.Via().Params == nil {
			return "Via without branch"
		}
		if b, _ := req.Via().Params.Get("branch"); b == "" {
			return "Via without branch"
		}
	}
	return ""
}

// rejectEvent answers a malformed request with code when it carries enough to be answered
// (RFC 3261 §8.1.1: Via, From, To, Call-ID, CSeq copied into the response, §8.2.6.2); anything
// else, and malformed responses and ACKs, are dropped.
func rejectEvent(start string, lines []string, code int, reasonPhrase, why string) frameEvent {
	method, _, _ := strings.Cut(start, " ")
	if strings.EqualFold(method, "SIP/2.0") || strings.EqualFold(method, "ACK") {
		return frameEvent{kind: evDrop, reason: why}
	}
	reply := buildReply(lines, code, reasonPhrase, why)
	if reply == nil {
		return frameEvent{kind: evDrop, reason: why}
	}
	return frameEvent{kind: evReply, reply: reply, reason: why}
}

// buildReply writes a response to a request known only by its raw header lines. It returns
// nil if Via, From, To, Call-ID or CSeq is missing or holds characters that cannot be copied.
func buildReply(lines []string, code int, reasonPhrase, why string) []byte {
	var vias []string
	single := map[string]string{}
	for _, l := range lines {
		name, v, ok := splitHeader(l)
		if !ok || !cleanValue(v) {
			continue
		}
		switch name {
		case "via":
			vias = append(vias, v)
		case "from", "to", "call-id", "cseq":
			if _, dup := single[name]; !dup {
				single[name] = v
			}
		}
	}
	if len(vias) == 0 || len(single) != 4 {
		return nil
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(code) + " " + reasonPhrase + "\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	b.WriteString("From: " + single["from"] + "\r\n")
	b.WriteString("To: " + single["to"] + "\r\n")
	b.WriteString("Call-ID: " + single["call-id"] + "\r\n")
	b.WriteString("CSeq: " + single["cseq"] + "\r\n")
	b.WriteString(`Warning: 399 chordphone "` + warnText(why) + "\"\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// cleanValue: no control characters but tab, so a copied value cannot break the framing.
func cleanValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 && v[i] != '\t' || v[i] == 0x7f {
			return false
		}
	}
	return v != ""
}

// warnText makes s fit a quoted-string (RFC 3261 §20.43 warn-text).
func warnText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			r = ' '
		}
		b.WriteRune(r)
		if b.Len() > 200 {
			break
		}
	}
	return b.String()
}
