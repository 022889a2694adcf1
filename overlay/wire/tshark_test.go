package wire

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestTsharkExplore(t *testing.T) {
	if os.Getenv("WIRE_EXPLORE") == "" {
		t.Skip()
	}
	var buf bytes.Buffer
	pw := newPcapWriter(&buf)
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	for i, s := range sampleBodies() {
		raw, err := Encode(sampleMessage(s, uint64(1000+i/2)))
		if err != nil {
			t.Fatal(err)
		}
		f, _ := DataFrame(uint32(i), raw)
		if s.code.IsRequest() {
			pw.writeUDP(a, b, 6084, 6084, f)
		} else {
			pw.writeUDP(b, a, 6084, 6084, f)
		}
	}
	p := filepath.Join("/tmp", "wire-explore.pcap")
	os.WriteFile(p, buf.Bytes(), 0o644)
	out, _ := exec.Command("tshark", "-r", p).CombinedOutput()
	t.Logf("%s", out)
}
