package wire

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var dictKey2 = nid(0x41)

// tsharkPacket is what the test expects tshark to make of one frame.
type tsharkPacket struct {
	frame    uint32 // framing type: 128 data, 129 ack
	code     MessageCode
	label    string            // method label expected in the Info column
	fragment bool              // a non-final fragment: no message contents yet
	fields   map[string]string // tshark field -> expected value(s), ';'-joined
}

// checkedFields are compared where the dissector decodes them correctly.
// (It reads IceCandidate.priority from the wrong offset, so that is not
// compared; ports, addresses and everything else are.)
var checkedFields = []string{
	"reload.port", "reload.ipv4addr", "reload.ipv6addr", "reload.application", "reload.chordupdate.type", "reload.nodeid",
	"reload.sipregistration.type", "reload.kindid", "reload.ping.response_id",
}

func expectFields(m *Message) map[string]string {
	body, err := ParseBody(m, nil)
	if err != nil {
		return nil
	}
	join := func(v ...string) string { return strings.Join(v, ";") }
	cands := func(cs []IceCandidate) map[string]string {
		var ports, v4, v6 []string
		for _, c := range cs {
			for _, ap := range []netip.AddrPort{c.AddrPort, c.RelAddrPort} {
				if !ap.IsValid() {
					continue
				}
				ports = append(ports, strconv.Itoa(int(ap.Port())))
				if ap.Addr().Is4() {
					v4 = append(v4, ap.Addr().String())
				} else {
					v6 = append(v6, ap.Addr().String())
				}
			}
		}
		return map[string]string{"reload.port": join(ports...), "reload.ipv4addr": join(v4...), "reload.ipv6addr": join(v6...)}
	}
	switch b := body.(type) {
	case *AttachReqAns:
		return cands(b.Candidates)
	case *AppAttachReq:
		f := cands(b.Candidates)
		f["reload.application"] = strconv.Itoa(int(b.Application))
		return f
	case *ChordUpdate:
		var ids []string
		for _, l := range [][]NodeID{b.Predecessors, b.Successors, b.Fingers} {
			for _, n := range l {
				ids = append(ids, n.String())
			}
		}
		return map[string]string{"reload.chordupdate.type": strconv.Itoa(int(b.Type)), "reload.nodeid": join(ids...)}
	case *PingAns:
		return map[string]string{"reload.ping.response_id": strconv.FormatUint(b.ResponseID, 10)}
	case *FindReq:
		var ks []string
		for _, k := range b.Kinds {
			ks = append(ks, strconv.Itoa(int(k)))
		}
		return map[string]string{"reload.kindid": join(ks...)}
	case *StoreReq:
		var types []string
		for _, kd := range b.KindData {
			for _, v := range kd.Values {
				if kd.Kind == KindSIPRegistration {
					var r SipRegistration
					if r.UnmarshalBinary(v.Value.Dictionary.Value.Value) == nil {
						types = append(types, strconv.Itoa(int(r.Type)))
					}
				}
			}
		}
		return map[string]string{"reload.sipregistration.type": join(types...)}
	case *ErrorResponse:
		if b.Code == ErrUnknownKind {
			ks, _ := ParseUnknownKinds(b.Info)
			var out []string
			for _, k := range ks {
				out = append(out, strconv.FormatUint(uint64(k), 10))
			}
			return map[string]string{"reload.kindid": join(out...)}
		}
	}
	return nil
}

var methodLabel = map[MessageCode]string{
	CodeProbeReq: "Probe", CodeAttachReq: "Attach", CodeStoreReq: "Store", CodeFetchReq: "Fetch",
	CodeFindReq: "Find", CodeJoinReq: "Join", CodeLeaveReq: "Leave", CodeUpdateReq: "Update",
	CodeRouteQueryReq: "RouteQuery", CodePingReq: "Ping", CodeStatReq: "Stat",
	CodeAppAttachReq: "AppAttach", CodeConfigUpdateReq: "ConfigUpdate",
}

func labelFor(c MessageCode) string {
	if c == CodeError {
		return "Error Response"
	}
	if c.IsRequest() {
		return methodLabel[c] + " Request"
	}
	return methodLabel[c.Request()] + " Response"
}

// tsharkMessages builds realistic, signed messages of every method,
// requests and answers, plus an ErrorResponse for every error code.
func tsharkMessages(t *testing.T) []*Message {
	k := testKeys(t)["rsa"]
	id := CertHashIdentity(k.cert)
	res := ResourceIDFromName("sip:alice@example.org")
	signSD := func(sd StoredData, kind KindID) StoredData {
		if err := SignStoredData(&sd, res, kind, k.signer, id); err != nil {
			t.Fatal(err)
		}
		return sd
	}
	route := mustMarshal(&SipRegistration{Type: SipRegistrationRoute, ContactPrefs: []byte("+sip.instance=\"<urn:uuid:1>\""),
		DestinationList: []Destination{NodeDestination(nid(0x70)), NodeDestination(nid(0x80))}})
	uri := mustMarshal(sampleSipReg())
	sipURI := signSD(StoredData{StorageTime: 1700000000000, Lifetime: 3600, Value: DictionaryValue(dictKey[:], uri)}, KindSIPRegistration)
	sipRoute := signSD(StoredData{StorageTime: 1700000000001, Lifetime: 3600, Value: DictionaryValue(dictKey2[:], route)}, KindSIPRegistration)
	certVal := signSD(StoredData{StorageTime: 1700000000002, Lifetime: 86400, Value: ArrayValue(0, k.cert.Raw)}, KindCertificateByNode)

	var msgs []*Message
	add := func(code MessageCode, body Body) {
		m := sampleMessage(sample{code, body}, uint64(0x1000+len(msgs)/2))
		msgs = append(msgs, m)
	}
	for _, s := range sampleBodies() {
		switch s.code {
		case CodeStoreReq:
			add(s.code, &StoreReq{Resource: res, KindData: []StoreKindData{
				{Kind: KindSIPRegistration, GenerationCounter: 0, Values: []StoredData{sipURI, sipRoute}},
				{Kind: KindCertificateByNode, GenerationCounter: 0, Values: []StoredData{certVal}},
			}})
		case CodeFetchAns:
			add(s.code, &FetchAns{KindResponses: []FetchKindResponse{
				{Kind: KindSIPRegistration, Generation: 2, Values: []StoredData{sipURI, sipRoute}},
				{Kind: KindCertificateByNode, Generation: 1, Values: []StoredData{certVal}},
			}})
		case CodeConfigUpdateReq:
			add(s.code, &ConfigUpdateReq{Type: ConfigUpdateConfig, ConfigData: []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
				`<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><configuration instance-name="chordphone.example" sequence="7"/></overlay>`)})
			add(s.code, &ConfigUpdateReq{Type: ConfigUpdateKind, Kinds: [][]byte{[]byte(
				`<kind xmlns="urn:ietf:params:xml:ns:p2p:config-base" name="SIP-REGISTRATION"><data-model>DICTIONARY</data-model>` +
					`<access-control>USER-NODE-MATCH</access-control><max-count>10</max-count><max-size>1000</max-size></kind>`)}})
		case CodeError:
			// one ErrorResponse per error code of RFC 6940 §14.9
			for code := ErrForbidden; code <= ErrInvalidMessage; code++ {
				er := &ErrorResponse{Code: code, Phrase: code.String()}
				switch code {
				case ErrUnknownKind:
					er.Info, _ = UnknownKindsInfo([]KindID{0xf0000001, 77})
				case ErrGenerationCounterTooLow:
					er.Info = mustMarshal(&StoreAns{KindResponses: []StoreKindResponse{{Kind: KindSIPRegistration, GenerationCounter: 9, Replicas: []NodeID{}}}})
				}
				add(CodeError, er)
			}
		default:
			add(s.code, s.body)
		}
	}
	for _, m := range msgs {
		m.Security.Certificates = []GenericCertificate{{Type: CertificateX509, Certificate: k.cert.Raw}}
		if err := Sign(m, k.signer, id); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// TestTsharkIndependentDecode writes a pcap of framed messages on UDP 6084
// and has Wireshark's RELOAD dissectors decode it.
func TestTsharkIndependentDecode(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	var buf bytes.Buffer
	pw := newPcapWriter(&buf)
	alice, bob := [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 2}
	var want []tsharkPacket
	var seq uint32
	send := func(from, to [4]byte, payload []byte, p tsharkPacket) {
		pw.writeUDP(from, to, 6084, 6084, payload)
		want = append(want, p)
	}
	for _, m := range tsharkMessages(t) {
		raw, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		// Our own decoder accepts and verifies what we hand to tshark.
		if back, err := Decode(raw, 1<<16); err != nil {
			t.Fatalf("%v: %v", m.Code, err)
		} else if err := Verify(back, testKeys(t)["rsa"].cert); err != nil {
			t.Fatalf("%v: verify: %v", m.Code, err)
		}
		f, err := DataFrame(seq, raw)
		if err != nil {
			t.Fatal(err)
		}
		p := tsharkPacket{frame: 128, code: m.Code, label: labelFor(m.Code), fields: expectFields(m)}
		from, to := alice, bob
		if m.Code.IsAnswer() {
			from, to = bob, alice
		}
		send(from, to, f, p)
		// Acknowledge each data frame (RFC 6940 §6.6.2).
		send(to, from, AckFrame(seq, 0), tsharkPacket{frame: 129})
		seq++
	}
	// A fragmented StoreReq (RFC 6940 §6.7): tshark reassembles it.
	big := sampleMessage(sample{CodeStoreReq, &StoreReq{Resource: ResourceID{1, 2, 3}, KindData: []StoreKindData{
		{Kind: KindTURNService, Values: []StoredData{sampleStoredData(DataModelSingle, bytes.Repeat([]byte{0x42}, 2500))}}}}}, 0xbeef)
	k := testKeys(t)["rsa"]
	big.Security.Certificates = []GenericCertificate{{Type: CertificateX509, Certificate: k.cert.Raw}}
	if err := Sign(big, k.signer, CertHashIdentity(k.cert)); err != nil {
		t.Fatal(err)
	}
	raw, _ := Encode(big)
	frags, err := Fragment(raw, 1000)
	if err != nil || len(frags) < 3 {
		t.Fatalf("fragment: %d %v", len(frags), err)
	}
	for i, fr := range frags {
		f, _ := DataFrame(seq, fr)
		seq++
		send(alice, bob, f, tsharkPacket{frame: 128, code: CodeStoreReq, label: "Store Request", fragment: i < len(frags)-1})
	}
	if pw.err != nil {
		t.Fatal(pw.err)
	}
	pcap := filepath.Join(t.TempDir(), "reload.pcap")
	if err := os.WriteFile(pcap, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("WIRE_KEEP_PCAP") != "" {
		_ = os.WriteFile(os.Getenv("WIRE_KEEP_PCAP"), buf.Bytes(), 0o644)
	}

	cmd := exec.Command(tshark, "-n", "-r", pcap, "-T", "fields",
		"-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;",
		"-e", "frame.number", "-e", "reload_framing.type", "-e", "reload.message.code",
		"-e", "_ws.col.Info", "-e", "_ws.expert.severity", "-e", "_ws.expert.message", "-e", "_ws.malformed",
		"-e", "reload.forwarding.version", "-e", "reload.error_response.code")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("tshark printed %d packets, wrote %d", len(lines), len(want))
	}
	seen := map[MessageCode]bool{}
	errCodes := map[string]bool{}
	for i, line := range lines {
		f := strings.Split(line, "|")
		for len(f) < 9 {
			f = append(f, "")
		}
		w := want[i]
		ctx := fmt.Sprintf("packet %d (%s)", i+1, line)
		if f[1] != strconv.Itoa(int(w.frame)) {
			t.Errorf("%s: framing type %q, want %d", ctx, f[1], w.frame)
		}
		if w.frame == 129 {
			if f[2] != "" || hasError(f[4]) || f[6] != "" {
				t.Errorf("%s: ack frame decoded with errors", ctx)
			}
			continue
		}
		if w.fragment {
			if !strings.Contains(f[3], "Fragment") && f[2] != "" {
				t.Errorf("%s: fragment not shown as such", ctx)
			}
			continue
		}
		// The error code is displayed as "Error" by the dissector.
		if w.code == CodeError {
			if !strings.Contains(f[3], "Error Response") || f[8] == "" {
				t.Errorf("%s: not an error response", ctx)
			}
			errCodes[f[8]] = true
		} else if f[2] != strconv.Itoa(int(w.code)) {
			t.Errorf("%s: message_code %q, want %d (%v)", ctx, f[2], w.code, w.code)
		}
		if !strings.Contains(f[3], w.label) {
			t.Errorf("%s: Info %q does not name %q", ctx, f[3], w.label)
		}
		if f[7] != "10" && f[7] != "0x0a" { // the dissector names 0x0a "Unknown" but shows the value
			t.Errorf("%s: version %q", ctx, f[7])
		}
		if hasError(f[4]) || f[6] != "" {
			t.Errorf("%s: malformed or error expert info: %s", ctx, f[5])
		}
		seen[w.code] = true
	}
	// Field values, where the dissector decodes them.
	args := []string{"-n", "-r", pcap, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;"}
	for _, f := range checkedFields {
		args = append(args, "-e", f)
	}
	cmd = exec.Command(tshark, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("tshark fields: %v", err)
	}
	compared := 0
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if i >= len(want) || want[i].fields == nil {
			continue
		}
		got := strings.Split(line, "|")
		for j, name := range checkedFields {
			exp, ok := want[i].fields[name]
			if !ok {
				continue
			}
			compared++
			if j >= len(got) || got[j] != exp {
				t.Errorf("packet %d %v: %s = %q, want %q", i+1, want[i].code, name, got[j], exp)
			}
		}
	}
	if compared < 15 {
		t.Errorf("only %d field values compared", compared)
	}
	t.Logf("%d packets decoded by tshark, %d field values compared", len(want), compared)
	for c := range methodLabel {
		if !seen[c] || !seen[c.Answer()] {
			t.Errorf("method %v: request or answer not checked", c)
		}
	}
	if len(errCodes) != int(ErrInvalidMessage-ErrForbidden)+1 {
		t.Errorf("tshark saw %d distinct error codes: %v", len(errCodes), errCodes)
	}
}

// hasError reports an expert severity of Error (0x00800000) in a ';' list.
func hasError(sev string) bool {
	for _, s := range strings.Split(sev, ";") {
		if v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32); err == nil && v >= 0x00800000 {
			return true
		}
	}
	return false
}
