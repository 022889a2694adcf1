package enroll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Ensure returns an identity in dir that overlay cfg accepts for user,
// making one when needed:
//
//   - an identity already in dir that cfg accepts (VerifyPeer) and that
//     names user is returned as it is;
//   - in a self-signed overlay (self-signed-permitted), a self-signed
//     certificate is made (RFC 6940 §11.3.1), keeping the key of an
//     identity already in dir, so pins held by contacts stay valid;
//   - otherwise the phone enrolls (RFC 6940 §11.3) with req's account.
//
// user may be a bare name ("alice") or a full user name
// ("alice@overlay"). On error dir is left as it was.
func Ensure(ctx context.Context, dir string, cfg *config.Config, user string, req Request) (*identity.Identity, error) {
	name, err := identity.UserName(user, cfg.InstanceName)
	if err != nil {
		return nil, err
	}
	old, err := identity.Load(dir)
	if err != nil && !errors.Is(err, identity.ErrNoIdentity) {
		return nil, err
	}
	if old != nil {
		if p, err := cfg.VerifyPeer(old.Chain, time.Now()); err == nil && strings.EqualFold(p.User, name) &&
			time.Until(old.Cert().NotAfter) > 7*24*time.Hour {
			return old, nil
		}
	}
	if cfg.SelfSignedPermitted {
		kt, err := keyTypeFor(cfg, req.KeyType)
		if err != nil {
			return nil, err
		}
		var id *identity.Identity
		if old != nil && (cfg.IdentityKey == "" || keyIs(old.Key, kt)) {
			id, err = identity.NewSelfSigned(old.Key, name, cfg.InstanceName, cfg.SelfSignedDigest)
		} else {
			key, kerr := identity.GenerateKey(kt)
			if kerr != nil {
				return nil, kerr
			}
			id, err = identity.NewSelfSigned(key, name, cfg.InstanceName, cfg.SelfSignedDigest)
		}
		if err != nil {
			return nil, err
		}
		if err := id.Save(dir); err != nil {
			return nil, err
		}
		return id, nil
	}
	if len(cfg.EnrollmentServers) == 0 {
		return nil, fmt.Errorf("overlay %s has neither an enrollment server nor self-signed certificates", cfg.InstanceName)
	}
	req.Config = cfg
	if req.User == "" {
		req.User = name
	}
	if req.Username == "" {
		req.Username, _, _ = strings.Cut(name, "@")
	}
	return Enroll(ctx, dir, req)
}
