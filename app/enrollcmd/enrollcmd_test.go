package enrollcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/app/store"
	"github.com/chordphone/chordphone/overlay/enroll"
)

// operator makes an operator directory with user alice, as the README's commands do.
func operator(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	op := &Operator{Stdout: io.Discard, Stderr: io.Discard, BcryptCost: bcrypt.MinCost}
	if code := op.Run(context.Background(), []string{"init", "--dir", dir, "--name", "lab.test"}); code != 0 {
		t.Fatalf("init: %d", code)
	}
	op.Stdin = strings.NewReader("alice-password\n")
	if code := op.Run(context.Background(), []string{"user", "add", "alice", "--dir", dir}); code != 0 {
		t.Fatalf("user add: %d", code)
	}
	return dir
}

// TestInvite: the link names the overlay, pins the CA and the user; the QR code is a PNG.
func TestInvite(t *testing.T) {
	dir := operator(t)
	var out, errb bytes.Buffer
	if code := Invite([]string{"--dir", dir, "--user", "alice"}, &out, &errb); code != 0 {
		t.Fatalf("invite: %d %s", code, errb.String())
	}
	inv, err := enroll.ParseInvitation(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	srv, _, err := enroll.LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Overlay != "lab.test" || inv.User != "alice" || inv.CAFingerprint != enroll.CAFingerprint(srv.CA.Cert) {
		t.Errorf("invitation %+v", inv)
	}
	f, err := os.Open(filepath.Join(dir, "invite-alice.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 256 {
		t.Errorf("QR code: %v", err)
	}
	if code := Invite([]string{"--user", "alice"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("no --dir: exit %d", code)
	}
}

// TestEnrollCommand: `chordphone enroll --invite LINK` with the password on stdin enrolls the
// profile and makes the overlay its own; a wrong password is an error event with its code.
func TestEnrollCommand(t *testing.T) {
	dir := operator(t)
	srv, _, err := enroll.LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Users.Cost = bcrypt.MinCost
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.EnrollURL = "https://" + ln.Addr().String() + enroll.EnrollPath
	tlsID, err := srv.CA.IssueTLS([]string{"lab.test", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, tlsID.TLSCertificate()) }()
	defer func() { cancel(); <-done }()
	link := enroll.Invitation{Overlay: "lab.test", CAFingerprint: enroll.CAFingerprint(srv.CA.Cert), User: "alice",
		Config: "https://" + ln.Addr().String() + "/.well-known/reload-config"}.String()

	profile := t.TempDir()
	run := func(password string, args ...string) (int, map[string]any) {
		var out, errb bytes.Buffer
		code := Enroll(context.Background(), append([]string{"--profile", profile}, args...), strings.NewReader(password+"\n"), &out, &errb)
		var e map[string]any
		if out.Len() > 0 {
			if err := json.Unmarshal(out.Bytes(), &e); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
		}
		return code, e
	}
	if code, e := run("guess", "--invite", link); code != 1 || e["event"] != "error" || e["code"] != join.CodeWrongPassword {
		t.Errorf("wrong password: %d %v", code, e)
	}
	if code, e := run("alice-password", "--config", "https://"+ln.Addr().String()+"/.well-known/reload-config", "--user", "alice"); code != 1 ||
		e["code"] != join.CodeCANotTrusted || !strings.Contains(e["message"].(string), "--ca-fingerprint "+enroll.CAFingerprint(srv.CA.Cert)) ||
		strings.Contains(e["message"].(string), "Settings") {
		t.Errorf("no pin: %d %v", code, e)
	}
	code, e := run("alice-password", "--invite", link)
	if code != 0 || e["event"] != "enrolled" || e["user"] != "alice@lab.test" || e["overlay"] != "lab.test" {
		t.Fatalf("enroll: %d %v", code, e)
	}
	st, err := store.Open(profile)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for key, want := range map[string]string{"overlay": "lab.test", "user": "alice", "config": "https://" + ln.Addr().String() + "/.well-known/reload-config"} {
		if v, _, _ := st.Setting(key); v != want {
			t.Errorf("setting %s = %q, want %q", key, v, want)
		}
	}
	if code, _ := run("x", "--overlay", "lab.test"); code != 2 {
		t.Errorf("no --user: exit %d", code)
	}
}
