package phone

import (
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/overlay/config"
)

// cacheConfig keeps a configuration document just fetched and verified in the profile
// (overlay/config SaveCached), for starts when it cannot be fetched.
func (p *Phone) cacheConfig(t join.Target, doc *config.Config) {
	if err := config.SaveCached(p.cfg.Profile, t.Source(), doc); err != nil {
		p.log.Warn("keeping a copy of the overlay configuration", "err", err)
	}
}

// cachedConfig returns the copy of the configuration kept from the last fetch of t, when
// fetching failed with fetchErr (the network is down, the server unreachable), and says
// so in a config_cached warning; nil when there is none (or it is expired or altered), and
// when the server could be reached but refused or failed a check.
// The phone then joins with it once the overlay's bootstrap peers can be reached.
func (p *Phone) cachedConfig(t join.Target, fetchErr error) *config.Config {
	switch join.CodeOf(fetchErr) {
	case "", join.CodeUnreachable, join.CodeNotResolved:
	default:
		return nil // the server answered, and what it said (e.g. an untrusted CA) matters
	}
	doc, saved, err := config.LoadCached(p.cfg.Profile, t.Source(), t.Overlay)
	if errors.Is(err, config.ErrNotCached) {
		return nil
	}
	if err != nil {
		p.log.Warn("the kept copy of the overlay configuration cannot be used", "err", err)
		return nil
	}
	p.log.Warn("cannot read the overlay configuration; using the copy kept from the last time",
		"config", t.Source(), "saved", saved.Format(time.RFC3339), "err", fetchErr)
	p.emit(Event{Kind: EventWarning, Code: CodeConfigCached, Message: fmt.Sprintf(
		"The configuration of %s cannot be read now (%v); the phone uses the copy from %s and joins "+
			"once the overlay can be reached.", doc.InstanceName, fetchErr, saved.Format("2 Jan 2006 15:04"))})
	return doc
}
