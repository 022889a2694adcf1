package kinds

import "github.com/chordphone/chordphone/overlay/config"

// LimitsFromConfig turns the kind-blocks of an overlay configuration
// document (RFC 6940 §11.1 required-kinds) into Limits for Configure:
//
//	reg := kinds.Default()
//	if err := reg.Configure(kinds.LimitsFromConfig(doc.Kinds)); err != nil { ... }
func LimitsFromConfig(ks []config.Kind) []Limits {
	out := make([]Limits, 0, len(ks))
	for _, k := range ks {
		out = append(out, Limits{
			Name: k.Name, ID: k.ID, DataModel: k.DataModel, AccessControl: k.AccessControl,
			MaxCount: k.MaxCount, MaxSize: k.MaxSize, MaxNodeMultiple: k.MaxNodeMultiple,
		})
	}
	return out
}

// Apply configures r from an overlay configuration: the SIP-REGISTRATION Kind with the
// document's AoR domain restriction (RFC 7904 §3.3, §3.4), then the kind-blocks' limits
// (RFC 6940 §11.1). It is used at start and again when a ConfigUpdate brings a new document
// (§6.5.4).
func Apply(r *Registry, c *config.Config) error {
	d, err := DomainRestrictionOf(c)
	if err != nil {
		return err
	}
	r.Add(SIPRegistrationRestricted(d))
	return r.Configure(LimitsFromConfig(c.Kinds))
}

// DomainRestrictionOf returns the compiled RFC 7904 §3.4 restriction of c (nil: any AoR).
func DomainRestrictionOf(c *config.Config) (*DomainRestriction, error) {
	if c.DomainRestriction == nil {
		return nil, nil
	}
	return NewDomainRestriction(c.InstanceName, c.DomainRestriction.Enable, c.DomainRestriction.Patterns)
}
