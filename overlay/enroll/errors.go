// Package enroll is RELOAD's certificate enrollment (RFC 6940 §11.3): the
// client a phone uses to get its certificate from an overlay's enrollment
// server, and the operator's server that runs an overlay (configuration
// document, CA, user accounts, enrollment service).
//
// # Phone side
//
//	cfg, err := (&config.Fetcher{}).Fetch(ctx, "example.org", "")   // §11.2
//	id, err := enroll.Ensure(ctx, identity.OverlayDir(profile, cfg.InstanceName),
//		cfg, "alice", enroll.Request{Password: pw})                  // §11.3 / §11.3.1
//
// Refusals are *Error values whose Error() is written for people; test them
// with errors.Is(err, enroll.ErrFailedAuthentication) and the like.
//
// # Operator side
//
// An operator directory (InitDir, LoadServer, Settings) is what the command line
// "chordphone overlay-server" (app/enrollcmd) works on:
//
//	chordphone overlay-server init --dir /srv/overlay --name example.org --bootstrap 203.0.113.5:6084
//	echo 'alice-password' | chordphone overlay-server user add alice --dir /srv/overlay
//	chordphone overlay-server --dir /srv/overlay --listen :443 [--tls-cert fullchain.pem --tls-key key.pem]
//
// The directory keeps the CA (the overlay's root-cert), the configuration
// signer, the bootstrap peer's identity, the HTTPS certificate and users.json
// (bcrypt hashes), all mode 0600. Without --tls-cert the HTTPS certificate is
// issued by the overlay's own CA, which phones then have to trust
// (config.Fetcher.RootCAs, from "overlay-server ca"). With --open anybody
// can create an account by enrolling with a new name. Repeated wrong
// passwords from one address are answered 429 for ten minutes.
package enroll

import (
	"errors"
	"fmt"
	"strings"
)

// Error tokens of RFC 6940 §11.3, sent as the text/plain body of a 403.
const (
	TokenFailedAuthentication = "failed_authentication"
	TokenUsernameNotAvailable = "username_not_available"
	TokenNodeIDsNotAvailable  = "Node-IDs_not_available"
	TokenBadCSR               = "bad_CSR"
)

// Sentinel errors; an *Error from the client wraps one of them.
var (
	ErrFailedAuthentication = errors.New(TokenFailedAuthentication)
	ErrUsernameNotAvailable = errors.New(TokenUsernameNotAvailable)
	ErrNodeIDsNotAvailable  = errors.New(TokenNodeIDsNotAvailable)
	ErrBadCSR               = errors.New(TokenBadCSR)
	ErrUnknown              = errors.New("enrollment failed")
	// ErrTooManyAttempts: the server stopped taking logins from this
	// address for a while (HTTP 429).
	ErrTooManyAttempts = errors.New("too many failed attempts")
	// ErrUnknownUser: failed_authentication because the server has no
	// account of that name (it said so in ReasonHeader).
	ErrUnknownUser = errors.New("unknown user")
)

// ReasonHeader on a 403 failed_authentication says why, beyond RFC 6940
// §11.3's token: ReasonUnknownUser when there is no such account.
const (
	ReasonHeader      = "Chordphone-Reason"
	ReasonUnknownUser = "unknown_user"
)

// Error is an enrollment refusal, with a message a person understands.
type Error struct {
	Token   string // as received from the server
	Overlay string
	User    string // the user name asked for
	NodeIDs int
	Status  int // HTTP status
	kind    error
}

func (e *Error) Unwrap() error { return e.kind }

func (e *Error) Error() string {
	switch e.kind {
	case ErrFailedAuthentication:
		return fmt.Sprintf("The user name or password is not right for overlay %s. Check them and try again.", e.Overlay)
	case ErrUsernameNotAvailable:
		return fmt.Sprintf("The name %s is not available on overlay %s: someone else has it, or the operator does not allow it. Choose another name.", e.User, e.Overlay)
	case ErrNodeIDsNotAvailable:
		return fmt.Sprintf("The enrollment server of overlay %s will not give %d Node-IDs.", e.Overlay, e.NodeIDs)
	case ErrUnknownUser:
		return fmt.Sprintf("Overlay %s has no user %s. Check the user name, or ask the operator to add you.", e.Overlay, e.username())
	case ErrTooManyAttempts:
		return fmt.Sprintf("Too many failed logins to overlay %s from this network. Wait ten minutes and try again.", e.Overlay)
	case ErrBadCSR:
		return fmt.Sprintf("The enrollment server of overlay %s rejected the certificate request (an incompatible server, or a bug).", e.Overlay)
	default:
		return fmt.Sprintf("Enrollment in overlay %s failed (server answered %d %q).", e.Overlay, e.Status, e.Token)
	}
}

// username is the account part of the user name asked for.
func (e *Error) username() string {
	name, _, _ := strings.Cut(e.User, "@")
	return name
}

func tokenError(token string) error {
	switch token {
	case TokenFailedAuthentication:
		return ErrFailedAuthentication
	case TokenUsernameNotAvailable:
		return ErrUsernameNotAvailable
	case TokenNodeIDsNotAvailable:
		return ErrNodeIDsNotAvailable
	case TokenBadCSR:
		return ErrBadCSR
	}
	// RFC 6940 §11.3: "an unknown token ... SHOULD treat it as a failure
	// for an unknown reason".
	return ErrUnknown
}
