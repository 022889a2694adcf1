package join

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Codes of the trouble a person can act on when joining a named overlay: the
// headless `error` events and `chordphone enroll` carry them as "code".
const (
	CodeWrongPassword   = "wrong_password"
	CodeUnknownUser     = "unknown_user"
	CodeNameTaken       = "name_taken"
	CodeRateLimited     = "rate_limited"
	CodeUnreachable     = "server_unreachable"
	CodeNotResolved     = "name_not_resolved"
	CodeCAMismatch      = "ca_fingerprint_mismatch"
	CodeCANotTrusted    = "ca_not_trusted"
	CodeBadCertificate  = "server_certificate_invalid"
	CodeBadConfig       = "bad_configuration"
	CodeEnrollFailed    = "enrollment_failed"
	CodeNeedsEnrollment = "needs_enrollment"
)

// Error is joining trouble with a sentence for a person (Message) and a stable code. Messages
// point neither to the GUI's Settings nor to command-line flags: each front end adds its own
// way out.
type Error struct {
	Code    string
	Message string
	// CAFingerprint is the CA the server presents (lower-case hex), for ca_not_trusted (to show
	// the person) and ca_fingerprint_mismatch.
	CAFingerprint string
	// Overlay is the overlay name asked for.
	Overlay string
	Err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of err, or "" when it is not joining trouble.
func CodeOf(err error) string {
	var je *Error
	if errors.As(err, &je) {
		return je.Code
	}
	return ""
}

// netError turns a failure to reach server (a host or "host:port") into a sentence; nil when
// err is not a network or TLS failure.
func netError(err error, overlay, server string) *Error {
	var (
		dns  *net.DNSError
		fm   *enroll.FingerprintMismatchError
		ua   x509.UnknownAuthorityError
		hn   x509.HostnameError
		ci   x509.CertificateInvalidError
		oe   *net.OpError
		what = fmt.Sprintf("The server of overlay %s (%s)", overlay, server)
	)
	e := &Error{Overlay: overlay, Err: err}
	switch {
	case errors.As(err, &fm):
		e.Code, e.CAFingerprint = CodeCAMismatch, fm.Got
		got := "no certificate authority"
		if fm.Got != "" {
			got = "the certificate authority " + fpText(fm.Got)
		}
		e.Message = fmt.Sprintf("%s presents %s, not the one you were given (%s). Someone may be intercepting the connection, or the invitation is out of date: ask the operator before you go on.",
			what, got, fpText(fm.Want))
	case errors.As(err, &dns):
		host := dns.Name
		if host == "" {
			host = server
		}
		if dns.IsNotFound {
			e.Code = CodeNotResolved
			e.Message = fmt.Sprintf("The name %s does not resolve to an address. Check its spelling, and that this computer's network (DNS) knows it.", strings.TrimSuffix(host, "."))
		} else {
			e.Code = CodeUnreachable
			e.Message = fmt.Sprintf("The name %s cannot be looked up now (no answer from DNS). Check this computer's network connection and try again.", strings.TrimSuffix(host, "."))
		}
	case errors.As(err, &ua):
		e.Code = CodeCANotTrusted
		e.Message = fmt.Sprintf("%s presents a certificate authority this phone does not know yet.", what)
	case errors.As(err, &hn), errors.As(err, &ci):
		e.Code = CodeBadCertificate
		e.Message = fmt.Sprintf("%s presents a certificate that is not valid for it (wrong name, or expired). Ask the operator to check the server's certificate.", what)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		e.Code = CodeUnreachable
		e.Message = fmt.Sprintf("%s did not answer in time. Check that the operator's server runs and that this network reaches it.", what)
	case errors.As(err, &oe):
		e.Code = CodeUnreachable
		why := "it cannot be reached"
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "the connection was refused"
		case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
			why = "there is no route to it"
		}
		e.Message = fmt.Sprintf("%s does not answer: %s. Check that the operator's server runs and that this network reaches it.", what, why)
	default:
		return nil
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// enrollError turns an enrollment refusal into its code; the message is enroll's, already
// written for people.
func enrollError(err error, overlay string) *Error {
	var ee *enroll.Error
	if !errors.As(err, &ee) {
		return nil
	}
	e := &Error{Code: CodeEnrollFailed, Message: ee.Error(), Overlay: overlay, Err: err}
	switch {
	case errors.Is(err, enroll.ErrUnknownUser):
		e.Code = CodeUnknownUser
	case errors.Is(err, enroll.ErrFailedAuthentication):
		e.Code = CodeWrongPassword
	case errors.Is(err, enroll.ErrUsernameNotAvailable):
		e.Code = CodeNameTaken
	case errors.Is(err, enroll.ErrTooManyAttempts):
		e.Code = CodeRateLimited
	}
	return e
}

// fpText is a fingerprint as people read it aloud: "SHA-256 ab12 cd34 …".
func fpText(fp string) string { return "SHA-256 " + identity.FormatFingerprint(fp) }

// FingerprintText is fp formatted for reading and comparing: groups of four hex digits.
func FingerprintText(fp string) string { return identity.FormatFingerprint(fp) }
