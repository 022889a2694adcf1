package phone

import (
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/app/join"
	"github.com/chordphone/chordphone/overlay/config"
)

// cachedConfig returns the copy of the configuration the peer kept for t (the last one
// fetched, or a newer one a ConfigUpdate brought: app/peer Config.ConfigSource), when
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
