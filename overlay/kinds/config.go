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
