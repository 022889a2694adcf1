package peer

import (
	"context"
	"time"

	"github.com/chordphone/chordphone/overlay/mailbox"
	"github.com/chordphone/chordphone/overlay/storage"
)

// Mailbox is the store-and-forward of messages for offline users (overlay/mailbox), acting
// as this peer's user.
func (p *Peer) Mailbox() *mailbox.Client {
	return &mailbox.Client{Svc: p.storage, Cred: &storage.Credentials{Key: p.id.Key, Chain: p.id.Chain}, User: p.id.User()}
}

// certificateWait bounds how long Register waits for the certificate to be stored.
const certificateWait = 5 * time.Second

// awaitCertificates waits (briefly) until Join's first store of this peer's certificate is
// over: a registered user can be written to at once, since a message for it while it is
// offline is encrypted to the certificate stored under its name (RFC 6940 §8).
func (p *Peer) awaitCertificates(ctx context.Context) {
	ch := p.certsPublished.Load()
	if ch == nil {
		return
	}
	t := time.NewTimer(certificateWait)
	defer t.Stop()
	select {
	case <-*ch:
	case <-t.C:
	case <-ctx.Done():
	}
}
