package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// configServer serves doc at the well-known URL over HTTPS with a
// certificate for name issued by ca.
func configServer(t *testing.T, ca *testCA, name string, doc []byte) *httptest.Server {
	t.Helper()
	key, cert := ca.issueTLS(t, name)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		_, _ = w.Write(doc)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// clientFor trusts ca and sends every connection to addr (as DNS would).
func clientFor(ca *testCA, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func TestFetchByName(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	doc, err := Encode(signer, operatorConfig(t, ca, signer))
	if err != nil {
		t.Fatal(err)
	}
	srv := configServer(t, ca, "overlay.test", doc)
	f := &Fetcher{Client: clientFor(ca, srv.Listener.Addr().String()), NoSRV: true}
	c, err := f.Fetch(context.Background(), "overlay.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.InstanceName != "overlay.test" || c.MaxMessageSize != 8000 {
		t.Errorf("got %+v", c)
	}
	// Same document under another name: the instance-name does not match (§11.2).
	srv2 := configServer(t, ca, "other.test", doc)
	f2 := &Fetcher{Client: clientFor(ca, srv2.Listener.Addr().String()), NoSRV: true}
	if _, err := f2.Fetch(context.Background(), "other.test", ""); err == nil || !strings.Contains(err.Error(), `no configuration for overlay "other.test"`) {
		t.Errorf("name mismatch: %v", err)
	}
	// Server certificate for another name (§11.2: MUST match the overlay name).
	srv3 := configServer(t, ca, "impostor.test", doc)
	f3 := &Fetcher{Client: clientFor(ca, srv3.Listener.Addr().String()), NoSRV: true}
	if _, err := f3.Fetch(context.Background(), "overlay.test", ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong server name: %v", err)
	}
	// Tampered in transit or at rest.
	tampered := []byte(strings.Replace(string(doc), "<initial-ttl>40", "<initial-ttl>41", 1))
	srv4 := configServer(t, ca, "overlay.test", tampered)
	f4 := &Fetcher{Client: clientFor(ca, srv4.Listener.Addr().String()), NoSRV: true}
	if _, err := f4.Fetch(context.Background(), "overlay.test", ""); err == nil || !strings.Contains(err.Error(), "altered after signing") {
		t.Errorf("tampered: %v", err)
	}
	// By URL.
	if c, err := f.Fetch(context.Background(), "https://overlay.test"+WellKnownPath, ""); err != nil || c.InstanceName != "overlay.test" {
		t.Errorf("by URL: %v", err)
	}
	if _, err := f.Fetch(context.Background(), "https://overlay.test/missing", ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, err := f.Fetch(context.Background(), "http://overlay.test/x", ""); err == nil || !strings.Contains(err.Error(), "must be https") {
		t.Errorf("http: %v", err)
	}
	if _, err := f.Fetch(context.Background(), "not a name", ""); err == nil {
		t.Error("bad source accepted")
	}
}

func TestFetchFile(t *testing.T) {
	dir := t.TempDir()
	unsigned, _ := Encode(nil, SelfSigned("lan.test"))
	p := filepath.Join(dir, "lan.xml")
	if err := os.WriteFile(p, unsigned, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Fetch(context.Background(), p)
	if err != nil || !c.SelfSignedPermitted || c.InstanceName != "lan.test" {
		t.Fatalf("file: %v %+v", err, c)
	}
	if _, err := Fetch(context.Background(), filepath.Join(dir, "missing.xml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestFetchSRV runs a DNS server that answers the _reload-config._tcp SRV
// query of RFC 6940 §11.2 with the configuration server's port.
func TestFetchSRV(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	doc, _ := Encode(signer, operatorConfig(t, ca, signer))
	srv := configServer(t, ca, "overlay.test", doc)
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var port uint16
	for _, ch := range portStr {
		port = port*10 + uint16(ch-'0')
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go serveSRV(pc, "_reload-config._tcp.overlay.test.", "localhost.", port)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	f := &Fetcher{
		RootCAs: pool,
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", pc.LocalAddr().String())
		}},
	}
	c, err := f.Fetch(context.Background(), "overlay.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.InstanceName != "overlay.test" {
		t.Errorf("got %q", c.InstanceName)
	}
}

func serveSRV(pc net.PacketConn, qname, target string, port uint16) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if q.Type == dnsmessage.TypeSRV && strings.EqualFold(q.Name.String(), qname) {
			_ = b.SRVResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.SRVResource{Priority: 1, Weight: 1, Port: port, Target: dnsmessage.MustNewName(target)})
		}
		out, err := b.Finish()
		if err == nil {
			_, _ = pc.WriteTo(out, from)
		}
	}
}

func TestFetchURLPrefersItsOverlay(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	first := SelfSigned("first.test")
	first.ConfigurationSigners = []string{nodeHex(signer)}
	first.RootCerts = append(first.RootCerts, ca.cert)
	doc, err := Encode(signer, first, operatorConfig(t, ca, signer))
	if err != nil {
		t.Fatal(err)
	}
	srv := configServer(t, ca, "overlay.test", doc)
	f := &Fetcher{Client: clientFor(ca, srv.Listener.Addr().String())}
	c, err := f.Fetch(context.Background(), URLFor("overlay.test"), "")
	if err != nil || c.InstanceName != "overlay.test" {
		t.Errorf("got %v %v", c, err)
	}
}
