package sipadapter

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// nonceLifetime: a nonce older than this gets a new challenge with stale=true (RFC 7616
// §3.3), so a captured response cannot be replayed for long.
const nonceLifetime = 5 * time.Minute

// authResult is what checking a request's credentials found.
type authResult int

const (
	authOK        authResult = iota
	authMissing              // no credentials for our realm: challenge (401/407)
	authStale                // our nonce, too old (or not ours): challenge with stale=true
	authForbidden            // unknown user or wrong password: 403, the same for both
	authMalformed            // credentials that cannot be parsed: 400
)

// authenticator checks SIP digest credentials (RFC 3261 §22, RFC 8760) against the
// accounts. Nonces are stateless: a time stamp and its HMAC under a key of this run, so a
// flood of requests holds no memory.
type authenticator struct {
	key      []byte
	accounts *Accounts
	now      func() time.Time
}

func newAuthenticator(acc *Accounts) *authenticator {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &authenticator{key: key, accounts: acc, now: time.Now}
}

func (a *authenticator) nonce() string {
	b := make([]byte, 8, 8+16)
	binary.BigEndian.PutUint64(b, uint64(a.now().UnixNano()))
	m := hmac.New(sha256.New, a.key)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b)[:8+16])
}

// nonceFresh: the nonce is ours and younger than nonceLifetime.
func (a *authenticator) nonceFresh(n string) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 8+16 {
		return false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false
	}
	age := a.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))))
	return age >= 0 && age < nonceLifetime
}

// challenge answers req with 401 (REGISTER) or 407 (other requests, RFC 3261 §22.3) and one
// challenge per algorithm of the account, SHA-256 first: the order of preference (RFC 8760
// §2.4).
func (a *authenticator) challenge(req *sip.Request, stale bool) *sip.Response {
	code, reason, hdr := 401, "Unauthorized", "WWW-Authenticate"
	if req.Method != sip.REGISTER {
		code, reason, hdr = 407, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	nonce := a.nonce()
	var user string // whose account says which algorithms (To of a REGISTER, else From)
	if h := req.To(); req.Method == sip.REGISTER && h != nil {
		user = h.Address.User
	} else if h := req.From(); h != nil {
		user = h.Address.User
	}
	for _, alg := range a.accounts.algorithms(user) {
		c := digest.Challenge{Realm: Realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		res.AppendHeader(sip.NewHeader(hdr, c.String()))
	}
	return res
}

// check verifies req's credentials for our realm (Authorization, or Proxy-Authorization
// for requests other than REGISTER) and returns the authenticated user.
func (a *authenticator) check(req *sip.Request) (string, authResult, error) {
	hdr := "Authorization"
	if req.Method != sip.REGISTER {
		hdr = "Proxy-Authorization"
	}
	var cred *digest.Credentials
	for _, h := range req.GetHeaders(hdr) {
		c, err := digest.ParseCredentials(h.Value())
		if err != nil {
			return "", authMalformed, fmt.Errorf("%s: %w", hdr, err)
		}
		if c.Realm == Realm {
			cred = c
			break
		}
	}
	if cred == nil {
		return "", authMissing, nil
	}
	if cred.Username == "" || cred.Response == "" || cred.URI == "" {
		return "", authMalformed, errors.New("credentials without username, uri or response")
	}
	if !a.nonceFresh(cred.Nonce) {
		return cred.Username, authStale, nil
	}
	ha1, ok, err := a.accounts.ha1For(cred.Username, cred.Algorithm)
	if err != nil {
		return "", authForbidden, err
	}
	if !ok {
		return cred.Username, authForbidden, nil
	}
	chal := &digest.Challenge{Realm: Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	if cred.QOP != "" && cred.QOP != "auth" {
		return cred.Username, authMalformed, fmt.Errorf("qop %q not offered", cred.QOP)
	}
	want, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: cred.URI,
		Username: cred.Username, A1: ha1, Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil {
		return cred.Username, authMalformed, err
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		return cred.Username, authForbidden, nil
	}
	return cred.Username, authOK, nil
}
