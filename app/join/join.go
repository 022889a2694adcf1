// Package join is how a phone (GUI or headless) and `chordphone enroll` get into a named
// overlay: the configuration document (RFC 6940 §11.2) from a server trusted through an
// invitation's pinned CA or the person's confirmed fingerprint, then enrollment (§11.3).
// Every failure a person can act on is an *Error with a code and a plain sentence; no raw
// x509 or network error reaches a person.
package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
)

// TrustFile in a profile remembers, per overlay, the CA the person trusts (lower-case hex
// SHA-256): from an invitation, `--ca-fingerprint`, or a confirmed fingerprint.
const TrustFile = "trusted-cas.json"

var trustMu sync.Mutex

// TrustedCA is the CA fingerprint remembered for overlay in profile, or "".
func TrustedCA(profile, overlay string) string {
	trustMu.Lock()
	defer trustMu.Unlock()
	m, _ := readTrust(profile)
	return m[strings.ToLower(overlay)]
}

// Remember keeps fp as the trusted CA of overlay in profile.
func Remember(profile, overlay, fp string) error {
	trustMu.Lock()
	defer trustMu.Unlock()
	m, err := readTrust(profile)
	if err != nil {
		return err
	}
	m[strings.ToLower(overlay)] = fp
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return err
	}
	if err := identity.WriteFileAtomic(filepath.Join(profile, TrustFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("remembering the trusted CA of %s: %w", overlay, err)
	}
	return nil
}

func readTrust(profile string) (map[string]string, error) {
	m := map[string]string{}
	data, err := os.ReadFile(filepath.Join(profile, TrustFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		// A damaged file trusts nothing; the person is asked again.
		return map[string]string{}, nil
	}
	return m, nil
}

// Target names the overlay to join.
type Target struct {
	// Overlay is the overlay name; its configuration is at https://NAME/.well-known/reload-config.
	Overlay string
	// Config is a configuration URL or file, instead of (or beside) the name.
	Config string
	// CAFingerprint pins the overlay's CA (invitation, --ca-fingerprint, confirmed by the
	// person). Empty: the one remembered in the profile, else the system's roots.
	CAFingerprint string
}

// Source is where the configuration comes from.
func (t Target) Source() string {
	if t.Config != "" {
		return t.Config
	}
	if t.Overlay != "" {
		return config.URLFor(t.Overlay)
	}
	return ""
}

// name is the overlay as the person knows it.
func (t Target) name() string {
	if t.Overlay != "" {
		return t.Overlay
	}
	if u, err := url.Parse(t.Config); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return t.Config
}

func isHTTPS(src string) bool { return strings.HasPrefix(src, "https://") }

// Fetch gets and verifies the overlay's configuration. It returns the document and the CA
// fingerprint it trusted ("" when the system's roots were enough and no pin was given).
func Fetch(ctx context.Context, profile string, t Target) (*config.Config, string, error) {
	src := t.Source()
	if src == "" {
		return nil, "", errors.New("no overlay name or configuration given")
	}
	pin := t.CAFingerprint
	if pin == "" && profile != "" {
		pin = TrustedCA(profile, t.name())
	}
	f := &config.Fetcher{}
	if pin != "" && isHTTPS(src) {
		f.Client = enroll.PinnedClient(pin)
	}
	sel := t.Overlay // a document from an explicit URL or file is taken as it comes, as before
	if t.Config != "" {
		sel = ""
	}
	doc, err := f.Fetch(ctx, src, sel)
	if err != nil {
		return nil, "", fetchError(ctx, err, t, pin)
	}
	if pin != "" {
		if err := enroll.PinnedRootCert(doc.RootCerts, pin); err != nil {
			return nil, "", netError(err, doc.InstanceName, hostOf(src))
		}
	}
	return doc, pin, nil
}

// fetchError classifies a failed fetch; ca_not_trusted carries the fingerprint of the CA the
// server presents, read without trusting it, for the person to compare.
func fetchError(ctx context.Context, err error, t Target, pin string) error {
	src := t.Source()
	if !isHTTPS(src) {
		return &Error{Code: CodeBadConfig, Overlay: t.name(), Err: err,
			Message: fmt.Sprintf("The configuration file %s cannot be used: %v.", src, err)}
	}
	host := hostOf(src)
	if e := netError(err, t.name(), host); e != nil {
		if e.Code == CodeCANotTrusted {
			addr := host
			if _, _, serr := net.SplitHostPort(addr); serr != nil {
				addr = net.JoinHostPort(addr, "443")
			}
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			ca, perr := enroll.ProbeCA(pctx, addr, strings.Split(host, ":")[0])
			if perr != nil {
				e.Message += " It presents no certificate authority to compare: ask the operator for an invitation."
				return e
			}
			e.CAFingerprint = enroll.CAFingerprint(ca)
			e.Message = fmt.Sprintf("The server of overlay %s presents a certificate authority this phone does not trust yet, with the fingerprint %s. Compare it with the fingerprint the operator gave you.",
				t.name(), fpText(e.CAFingerprint))
		}
		return e
	}
	return &Error{Code: CodeBadConfig, Overlay: t.name(), Err: err,
		Message: fmt.Sprintf("The configuration of overlay %s cannot be used (%s). Ask the operator.", t.name(), plain(err))}
}

// plain is the last part of an error chain, which is the one that says what was wrong,
// without the Go-specific prefixes.
func plain(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	return strings.TrimSuffix(s, ".")
}

func hostOf(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return src
	}
	return u.Host
}

// Request is an enrollment: Target plus the account.
type Request struct {
	Target
	User, Password string
}

// Result is a successful Join.
type Result struct {
	Config        *config.Config
	Identity      *identity.Identity
	CAFingerprint string // the CA trusted and remembered, "" when none was pinned
}

// Enroll fetches the configuration and makes sure the profile holds a certificate the overlay
// accepts for the user (enrolling with the password when needed, RFC 6940 §11.3). The pinned
// CA is remembered for the overlay only once everything succeeded; on error the profile is
// left as it was.
func Enroll(ctx context.Context, profile string, r Request) (*Result, error) {
	doc, pin, err := Fetch(ctx, profile, r.Target)
	if err != nil {
		return nil, err
	}
	if pin == "" && !isHTTPS(r.Source()) && len(doc.RootCerts) > 0 {
		// A configuration file the person chose is the trust anchor: its root-cert is the CA
		// the enrollment server's certificate must chain to.
		pin = enroll.CAFingerprint(doc.RootCerts[0])
	}
	req := enroll.Request{Username: r.User, Password: r.Password}
	if pin != "" {
		req.HTTPClient = enroll.PinnedClient(pin)
	}
	id, err := enroll.Ensure(ctx, profile, doc, r.User, req)
	if err != nil {
		if e := enrollError(err, doc.InstanceName); e != nil {
			return nil, e
		}
		server := doc.InstanceName
		if len(doc.EnrollmentServers) > 0 {
			server = hostOf(doc.EnrollmentServers[0])
		}
		if e := netError(err, doc.InstanceName, server); e != nil {
			if e.Code == CodeCANotTrusted {
				e.Message = fmt.Sprintf("The enrollment server of overlay %s (%s) presents a certificate authority that is not the overlay's. Ask the operator.", doc.InstanceName, server)
				e.Code = CodeBadCertificate
			}
			return nil, e
		}
		return nil, &Error{Code: CodeEnrollFailed, Overlay: doc.InstanceName, Err: err,
			Message: fmt.Sprintf("Enrollment in overlay %s failed (%s).", doc.InstanceName, plain(err))}
	}
	if pin != "" && profile != "" {
		if err := Remember(profile, doc.InstanceName, pin); err != nil {
			return nil, err
		}
	}
	return &Result{Config: doc, Identity: id, CAFingerprint: pin}, nil
}
