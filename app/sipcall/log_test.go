package sipcall

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSipgoLogsDemoted: sipgo's package-wide warnings reach the log at debug level only;
// its errors stay errors.
func TestSipgoLogsDemoted(t *testing.T) {
	var buf bytes.Buffer
	at := func(level slog.Level) *slog.Logger {
		buf.Reset()
		return slog.New(demoted{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})}).With("lib", "sipgo")
	}
	at(slog.LevelInfo).Warn("connection ref count below zero")
	if buf.Len() != 0 {
		t.Errorf("at info level: %q", buf.String())
	}
	at(slog.LevelDebug).Warn("connection ref count below zero")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "lib=sipgo") {
		t.Errorf("at debug level: %q", out)
	}
	at(slog.LevelInfo).Error("transport failed")
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("an error at info level: %q", buf.String())
	}
}
