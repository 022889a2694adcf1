package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
)

// WellKnownPath is where a configuration server serves the document
// (RFC 6940 §11.2, RFC 5785).
const WellKnownPath = "/.well-known/reload-config"

// URLFor returns the configuration URL of an overlay name (RFC 6940 §11.2).
func URLFor(overlay string) string { return "https://" + overlay + WellKnownPath }

// Fetcher gets configuration documents (RFC 6940 §11.2).
type Fetcher struct {
	// Client makes the HTTPS request; nil uses a client with a 30 s
	// timeout and the system roots. Tests give one trusting their CA.
	Client *http.Client
	// Resolver looks up the _reload-config._tcp SRV record of an overlay
	// name; nil uses net.DefaultResolver.
	Resolver *net.Resolver
	// RootCAs, when Client is nil, are the CAs trusted for the HTTPS
	// server instead of the system roots (an operator whose certificate is
	// issued by the overlay's own CA: "chordphone overlay-server ca").
	RootCAs *x509.CertPool
	// NoSRV skips the SRV lookup and connects to NAME:443.
	NoSRV bool
	// Previous is the configuration accepted before, if any (see
	// VerifyOptions.Previous).
	Previous *Config
	// AllowUnsigned accepts unsigned documents fetched over HTTPS. Files
	// may always be unsigned (the person chose them), but a signature that
	// is present must verify.
	AllowUnsigned bool
}

// Fetch gets the configuration named by src with a default Fetcher.
func Fetch(ctx context.Context, src string) (*Config, error) {
	return (&Fetcher{}).Fetch(ctx, src, "")
}

// Fetch gets, parses and verifies a configuration. src is one of:
//
//   - an https: URL (the "optional URL for the configuration server");
//   - a file path (out-of-band configuration, e.g. sent by e-mail);
//   - an overlay name: SRV lookup of _reload-config._tcp.NAME, then GET
//     https://NAME/.well-known/reload-config, the server certificate
//     matching NAME.
//
// overlay, when not empty, selects the configuration with that
// instance-name; for an overlay name src it defaults to src. The document
// must contain it (RFC 6940 §11.2: otherwise it "SHOULD be discarded").
func (f *Fetcher) Fetch(ctx context.Context, src, overlay string) (*Config, error) {
	var data []byte
	var err error
	fromFile := false
	switch {
	case strings.HasPrefix(src, "https://"):
		data, err = f.get(ctx, src, "", "")
		if err == nil && overlay == "" {
			// A URL of the well-known form names the overlay (§11.2):
			// prefer its configuration when the document has several.
			if u, perr := url.Parse(src); perr == nil && u.Path == WellKnownPath {
				if cs, perr := Parse(data); perr == nil && len(cs) > 1 {
					for _, c := range cs {
						if strings.EqualFold(c.InstanceName, u.Hostname()) {
							overlay = c.InstanceName
						}
					}
				}
			}
		}
	case strings.HasPrefix(src, "http://"):
		return nil, fmt.Errorf("configuration URL %s: must be https (RFC 6940 §11.2)", src)
	case isFile(src):
		fromFile = true
		data, err = readFileLimited(src)
	default:
		if err := identity.ValidOverlayName(src); err != nil {
			return nil, fmt.Errorf("%q is neither an https URL, a file, nor an overlay name", src)
		}
		if overlay == "" {
			overlay = src
		}
		host, port := "", ""
		if !f.NoSRV {
			host, port = f.lookupSRV(ctx, src)
		}
		data, err = f.get(ctx, URLFor(src), host, port)
	}
	if err != nil {
		return nil, err
	}
	c, err := ParseOverlay(data, overlay)
	if err != nil {
		return nil, fmt.Errorf("configuration from %s: %w", src, err)
	}
	if err := c.Verify(VerifyOptions{Previous: f.Previous, AllowUnsigned: f.AllowUnsigned || fromFile}); err != nil {
		return nil, fmt.Errorf("configuration from %s: %w", src, err)
	}
	return c, nil
}

func isFile(src string) bool {
	if _, err := os.Stat(src); err == nil {
		return true
	}
	return strings.ContainsAny(src, `/\`) || strings.HasSuffix(src, ".xml")
}

func readFileLimited(p string) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", p, err)
	}
	return data, nil
}

// lookupSRV returns the configuration server of name from its
// _reload-config._tcp SRV record (RFC 6940 §11.2), or "" when there is none.
func (f *Fetcher) lookupSRV(ctx context.Context, name string) (host, port string) {
	r := f.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, srvs, err := r.LookupSRV(ctx, "reload-config", "tcp", name)
	if err != nil || len(srvs) == 0 {
		return "", ""
	}
	// LookupSRV sorts by priority and randomises by weight.
	return strings.TrimSuffix(srvs[0].Target, "."), strconv.Itoa(int(srvs[0].Port))
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	if f.RootCAs != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: f.RootCAs, MinVersion: tls.VersionTLS12}
		cl.Transport = tr
	}
	return cl
}

// get fetches url; with dialHost set, connections go to dialHost:dialPort
// while TLS still checks the URL's host name.
func (f *Fetcher) get(ctx context.Context, url, dialHost, dialPort string) ([]byte, error) {
	cl := f.client()
	if dialHost != "" {
		var base *http.Transport
		switch t := cl.Transport.(type) {
		case nil:
			base = http.DefaultTransport.(*http.Transport)
		case *http.Transport:
			base = t
		}
		if base != nil {
			tr := base.Clone()
			d := &net.Dialer{Timeout: 10 * time.Second}
			target := net.JoinHostPort(dialHost, dialPort)
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, target)
			}
			c2 := *cl
			c2.Transport = tr
			cl = &c2
			defer tr.CloseIdleConnections()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("configuration URL %s: %w", url, err)
	}
	req.Header.Set("Accept", ContentType)
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch configuration: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch configuration %s: server answered %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch configuration %s: %w", url, err)
	}
	if len(data) > MaxDocumentSize {
		return nil, errors.New("fetch configuration: document too large")
	}
	return data, nil
}
