package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	o, err := Parse([]string{"--headless", "--profile", "/tmp/p", "--user", "alice", "--overlay", "example.org",
		"--bootstrap", "127.0.0.1:1, 127.0.0.1:2", "--listen", "127.0.0.1:0", "--auto-answer", "--client"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Headless || o.Profile != "/tmp/p" || o.User != "alice" || o.Overlay != "example.org" || !o.AutoAnswer || !o.Client {
		t.Fatalf("unexpected options %+v", o)
	}
	if len(o.Bootstrap) != 2 || o.Bootstrap[1] != "127.0.0.1:2" {
		t.Fatalf("bootstrap = %q", o.Bootstrap)
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"--frobnicate"}, &out)
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("err = %v, want a UsageError naming the flag", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--version"}, &out); !errors.Is(err, ErrVersion) || !strings.HasPrefix(out.String(), "chordphone ") {
		t.Fatalf("--version: err=%v out=%q", err, out.String())
	}
	out.Reset()
	if _, err := Parse([]string{"--help"}, &out); !errors.Is(err, ErrHelp) || !strings.Contains(out.String(), "--headless") {
		t.Fatalf("--help: err=%v out=%q", err, out.String())
	}
}

func TestDefaultProfile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	o, err := Parse(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(o.Profile, "chordphone") {
		t.Fatalf("profile = %q", o.Profile)
	}
}

// TestInvitationArgument: a join link as the one argument (the desktop entry's %u) is taken as
// the invitation; anything else stays an unexpected argument.
func TestInvitationArgument(t *testing.T) {
	link := "chordphone:join?overlay=lab.test&ca=sha256:" + strings.Repeat("ab", 32)
	o, err := Parse([]string{"--profile", "/tmp/p", link}, &bytes.Buffer{})
	if err != nil || o.Invite != link {
		t.Fatalf("invite %q, err %v", o.Invite, err)
	}
	var ue *UsageError
	if _, err := Parse([]string{link, "extra"}, &bytes.Buffer{}); !errors.As(err, &ue) {
		t.Errorf("two arguments: %v", err)
	}
}
