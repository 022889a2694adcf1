package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST API credentials use
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/wire"
)

// DefaultCredentialLifetime is how long credentials from NewCredentials stay valid.
const DefaultCredentialLifetime = time.Hour

// OverlaySecret returns the secret the overlay's TURN servers and clients share: an HMAC of
// the configuration's shared-secret when it has one (RFC 6940 §11.1), otherwise a hash of the
// overlay name and its root certificates. See the package documentation.
func OverlaySecret(c *config.Config) []byte {
	if c.SharedSecret != "" {
		m := hmac.New(sha256.New, []byte("chordphone TURN v1"))
		m.Write([]byte(c.SharedSecret))
		return m.Sum(nil)
	}
	h := sha256.New()
	h.Write([]byte("chordphone TURN v1\x00"))
	h.Write([]byte(c.InstanceName))
	for _, rc := range c.RootCerts {
		h.Write([]byte{0})
		h.Write(rc.Raw)
	}
	return h.Sum(nil)
}

// NewCredentials returns TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2)
// for node, valid until expiry.
func NewCredentials(secret []byte, node wire.NodeID, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + node.String()
	return username, credentialPassword(secret, username)
}

func credentialPassword(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrCredentialsExpired is returned by ParseUsername for a username past its expiry.
var ErrCredentialsExpired = errors.New("turn: credentials expired")

// ParseUsername checks a username's form and expiry and returns the Node-ID it names.
func ParseUsername(username string, now time.Time) (wire.NodeID, error) {
	ts, id, ok := strings.Cut(username, ":")
	if !ok {
		return wire.NodeID{}, fmt.Errorf("turn: username %q is not expiry:node-id", username)
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return wire.NodeID{}, fmt.Errorf("turn: username %q: expiry: %w", username, err)
	}
	n, err := wire.ParseNodeID(id)
	if err != nil {
		return wire.NodeID{}, fmt.Errorf("turn: username %q: %w", username, err)
	}
	if now.Unix() > exp {
		return n, fmt.Errorf("%w: %s", ErrCredentialsExpired, username)
	}
	return n, nil
}
