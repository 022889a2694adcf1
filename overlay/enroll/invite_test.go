package enroll

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestInvitationRoundTrip(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	inv := Invitation{Overlay: "lab.test", CAFingerprint: fp, User: "alice", Config: "https://cfg.lab.test:8443/.well-known/reload-config"}
	link := inv.String()
	if !strings.HasPrefix(link, "chordphone:join?overlay=lab.test&ca=sha256:"+fp+"&user=alice&config=") {
		t.Errorf("link %s", link)
	}
	got, err := ParseInvitation(link)
	if err != nil || got != inv {
		t.Fatalf("parse %s: %+v %v", link, got, err)
	}
	for _, bad := range []string{
		"https://lab.test", "chordphone:call?x", "chordphone:join?overlay=lab.test",
		"chordphone:join?overlay=lab.test&ca=sha256:abcd", "chordphone:join?overlay=-x&ca=sha256:" + fp,
		"chordphone:join?overlay=lab.test&ca=sha256:" + fp + "&config=http://lab.test/c",
	} {
		if _, err := ParseInvitation(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	upper := strings.ToUpper(fp[:4]) + ":" + fp[4:]
	if n, err := NormalizeFingerprint("SHA256:" + upper); err != nil || n != fp {
		t.Errorf("normalize: %s %v", n, err)
	}
}

// TestPinnedClient: a client pinned to the overlay's CA reaches its
// server; pinned to another CA it gets a FingerprintMismatchError naming
// the CA the server presented; ProbeCA reads that CA without trusting it.
func TestPinnedClient(t *testing.T) {
	o := startOverlay(t, false)
	fp := CAFingerprint(o.srv.CA.Cert)
	dialTo := func(cl *http.Client) *http.Client {
		tr := cl.Transport.(*http.Transport)
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, o.addr)
		}
		return cl
	}
	resp, err := dialTo(PinnedClient(fp)).Get("https://overlay.test/.well-known/reload-config")
	if err != nil {
		t.Fatalf("pinned to the right CA: %v", err)
	}
	resp.Body.Close()
	other := strings.Repeat("01", 32)
	_, err = dialTo(PinnedClient(other)).Get("https://overlay.test/.well-known/reload-config")
	var fm *FingerprintMismatchError
	if !errors.As(err, &fm) || fm.Got != fp || fm.Want != other {
		t.Fatalf("pinned to another CA: %v", err)
	}
	// The right CA but the wrong name: the certificate is for overlay.test only.
	cl := PinnedClient(fp)
	cl.Transport.(*http.Transport).TLSClientConfig.ServerName = "other.test"
	if _, err := dialTo(cl).Get("https://overlay.test/"); err == nil {
		t.Error("a certificate for another name was accepted")
	}
	ca, err := ProbeCA(context.Background(), o.addr, "overlay.test")
	if err != nil || CAFingerprint(ca) != fp {
		t.Fatalf("probe: %v", err)
	}
	if err := PinnedRootCert(o.fetch(t).RootCerts, fp); err != nil {
		t.Error(err)
	}
}
