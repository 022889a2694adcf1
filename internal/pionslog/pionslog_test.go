package pionslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPionLogsReachSlogAtDebug(t *testing.T) {
	var buf bytes.Buffer
	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := New(debug).NewLogger("ice")
	l.Errorf("failed to ping %s", "10.0.0.1:5000")
	l.Trace("checking")
	out := buf.String()
	for _, want := range []string{`msg="failed to ping 10.0.0.1:5000"`, "pion=ice", "pion_level=error", "msg=checking", "pion_level=trace", "level=DEBUG"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}

	buf.Reset()
	info := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l = New(info).NewLogger("dtls")
	l.Errorf("handshake %d failed", 1)
	l.Warn("retrying")
	if buf.Len() != 0 {
		t.Errorf("at --log-level info pion wrote %q", buf.String())
	}
}
