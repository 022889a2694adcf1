package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chordphone/chordphone/internal/wanemu"
)

// TestBenchCallsWAN: `chordphone bench calls --wan` runs the call benchmark with every process
// in its own namespace behind the delaying router; each call pays at least the INVITE's round
// trip before ringing and hears audio only after ringing. (Speed itself is the bench's figure.)
func TestBenchCallsWAN(t *testing.T) {
	if err := wanemu.Available(); err != nil {
		t.Skip(err)
	}
	const oneWay = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "bench", "calls", "--peers", "4", "--calls", "2", "--wan", oneWay.String())
	cmd.Env = IsolatedEnv(t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench calls --wan: %v", err)
	}
	var r struct {
		Failed     int     `json:"failed"`
		Ringing    float64 `json:"dial_to_ringing_median_ms"`
		FirstAudio float64 `json:"dial_to_first_audio_median_ms"`
		WAN        *struct {
			OneWayMs float64 `json:"one_way_delay_ms"`
		} `json:"wan"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("bench output %q: %v", out, err)
	}
	t.Logf("%s", out)
	if r.Failed != 0 || r.WAN == nil || r.WAN.OneWayMs != 20 {
		t.Fatalf("failed calls or no emulated network in the report: %s", out)
	}
	if r.Ringing < 2*20 {
		t.Errorf("dial to ringing %.1f ms: less than one round trip of the emulated network", r.Ringing)
	}
	if r.FirstAudio < r.Ringing {
		t.Errorf("first audio %.1f ms before ringing %.1f ms", r.FirstAudio, r.Ringing)
	}
}
