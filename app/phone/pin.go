package phone

import (
	"crypto/x509"

	"github.com/chordphone/chordphone/overlay/identity"
)

// checkPin remembers the first key seen for user and warns plainly when it changes: in a
// self-signed overlay anybody can claim a name (issue: trust on first use).
func (p *Phone) checkPin(c *call, user string, cert *x509.Certificate) {
	if cert == nil || p.pins == nil {
		return
	}
	changed, old, err := p.pins.Check(user, cert)
	if err != nil {
		p.log.Warn("checking the pinned key", "user", user, "err", err)
		return
	}
	if changed {
		p.emit(Event{Kind: EventError, Code: CodePinnedKeyChanged, CallID: c.info.ID, Peer: user, Message: identity.PinWarning(user, old, cert)})
		return
	}
	if ct, err := p.store.ContactByUser(user); err == nil && ct.Fingerprint == "" {
		ct.Fingerprint = identity.FormatFingerprint(identity.KeyFingerprint(cert))
		if err := p.store.UpdateContact(ct); err != nil {
			p.log.Warn("saving the contact's key", "user", user, "err", err)
		}
	}
}
