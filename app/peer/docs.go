package peer

import (
	"errors"

	"github.com/chordphone/chordphone/overlay/config"
)

// The configuration in force outlives a restart: a document a ConfigUpdate brought (RFC
// 6940 §6.5.4) is kept in the profile's configuration cache, and a start uses it rather
// than an older one fetched from a server that does not publish it yet.

// newestDocument returns doc, or the copy kept for cfg.ConfigSource when that copy is newer
// and signed by a configuration-signer of doc (§11.1: "signed by one of the
// configuration-signer elements from the previous extant configuration"). The one returned
// is kept.
func newestDocument(cfg Config, doc *config.Config) *config.Config {
	if cfg.Profile == "" || cfg.ConfigSource == "" || doc.Signature == nil {
		return doc
	}
	kept, _, err := config.LoadCached(cfg.Profile, cfg.ConfigSource, doc.InstanceName)
	switch {
	case errors.Is(err, config.ErrNotCached):
	case err != nil:
		cfg.Logger.Warn("the kept copy of the overlay configuration cannot be used", "err", err)
	case sequenceNewer(kept.Sequence, doc.Sequence):
		if err := kept.Verify(config.VerifyOptions{Previous: doc}); err != nil {
			cfg.Logger.Warn("the kept configuration is newer but not signed by the overlay's configuration-signer",
				"sequence", kept.Sequence, "err", err)
			break
		}
		cfg.Logger.Info("using the newer configuration a ConfigUpdate brought", "sequence", kept.Sequence, "fetched", doc.Sequence)
		return kept
	}
	saveDocument(cfg, doc)
	return doc
}

// keepDocument keeps a configuration a ConfigUpdate put in force for the next start.
func (p *Peer) keepDocument(doc *config.Config) { saveDocument(p.cfg, doc) }

func saveDocument(cfg Config, doc *config.Config) {
	if cfg.Profile == "" || cfg.ConfigSource == "" {
		return
	}
	if err := config.SaveCached(cfg.Profile, cfg.ConfigSource, doc); err != nil {
		cfg.Logger.Warn("keeping a copy of the overlay configuration", "err", err)
	}
}
