// Package kinds defines the RELOAD Kinds Chordphone stores (RFC 6940 §7,
// §8, §9; RFC 7904 §7), their data models, their access control policies
// (RFC 6940 §7.3) and their per-Kind limits (max-count, max-size from the
// overlay configuration, RFC 6940 §11.1).
//
// A Registry maps Kind-IDs to Kind definitions. It implements
// wire.KindModels, so it can be handed to the codec to decode Store, Fetch
// and Stat bodies. Kind.Authorize decides whether a signer may write a
// value at a Resource-ID; it is used by the storing peer (overlay/storage)
// and by a fetching peer that checks what it received.
package kinds

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/chordphone/chordphone/overlay/wire"
)

// Policy is an access control policy (RFC 6940 §7.3).
type Policy uint8

// Access control policies (RFC 6940 §7.3, §14.4).
const (
	PolicyInvalid Policy = iota
	UserMatch            // §7.3.1
	NodeMatch            // §7.3.2
	UserNodeMatch        // §7.3.3
	NodeMultiple         // §7.3.4
	// Custom is a policy the Kind defines in Kind.Access (RFC 6940 §7.3: "new policies can
	// be defined"); it has no configuration name, so only code can give it (overlay/mailbox).
	Custom
)

var policyNames = map[Policy]string{
	UserMatch:     "USER-MATCH",
	NodeMatch:     "NODE-MATCH",
	UserNodeMatch: "USER-NODE-MATCH",
	NodeMultiple:  "NODE-MULTIPLE",
}

func (p Policy) String() string {
	if s, ok := policyNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy parses the configuration document's access-control string.
func ParsePolicy(s string) (Policy, error) {
	for p, n := range policyNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return p, nil
		}
	}
	return PolicyInvalid, fmt.Errorf("kinds: unknown access control policy %q", s)
}

// ParseDataModel parses the configuration document's data-model string.
func ParseDataModel(s string) (wire.DataModel, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "SINGLE", "SINGLE-VALUE", "SINGLE_VALUE":
		return wire.DataModelSingle, nil
	case "ARRAY":
		return wire.DataModelArray, nil
	case "DICTIONARY":
		return wire.DataModelDictionary, nil
	}
	return wire.DataModelInvalid, fmt.Errorf("kinds: unknown data model %q", s)
}

// Kind names registered by RFC 6940 §14.6 and RFC 7904 §9.1.
const (
	NameSIPRegistration   = "SIP-REGISTRATION"
	NameTURNService       = "TURN-SERVICE"
	NameCertificateByNode = "CERTIFICATE_BY_NODE"
	NameCertificateByUser = "CERTIFICATE_BY_USER"
)

// Signer is the verified author of a value: the certificate a signature was
// checked against (it may be nil when only its names were retained), with
// the user name and Node-IDs it carries. NodeID is the
// Node-ID the SignerIdentity names (cert_hash_node_id); it is zero for a
// cert_hash identity, which names the certificate but none of its Node-IDs
// in particular (then every Node-ID of the certificate is a candidate).
type Signer struct {
	Cert    *x509.Certificate
	User    string // user@overlay, the certificate's rfc822Name
	NodeIDs []wire.NodeID
	NodeID  wire.NodeID
}

// candidates returns the Node-IDs the policies may match against: the one
// named by the signer identity, else all of the certificate.
func (s *Signer) candidates() []wire.NodeID {
	if !s.NodeID.IsZero() {
		if slices.Contains(s.NodeIDs, s.NodeID) {
			return []wire.NodeID{s.NodeID}
		}
		return nil
	}
	return s.NodeIDs
}

// Kind is one Kind definition (RFC 6940 §7.4.5).
type Kind struct {
	ID     wire.KindID
	Name   string
	Model  wire.DataModel
	Policy Policy
	// MaxCount is the largest number of values of this Kind at one
	// Resource-ID (entries for arrays and dictionaries), MaxSize the largest
	// value in bytes (RFC 6940 §11.1 max-count, max-size).
	MaxCount int
	MaxSize  int
	// MaxNodeMultiple is the largest i of NODE-MULTIPLE (RFC 6940 §7.3.4).
	MaxNodeMultiple int
	// Access decides a Custom policy: nil allows s to write v at resource.
	Access func(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error
	// Validate, when set, checks the value of an existing (exists = true)
	// entry beyond the access control policy (usage rules such as RFC 7904
	// §3.3). It returns an error to refuse the store with Error_Forbidden.
	Validate func(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error
}

// ErrForbidden is wrapped by every refusal of Authorize.
var ErrForbidden = errors.New("forbidden")

func forbid(format string, a ...any) error {
	return &wire.Error{Code: wire.ErrForbidden, Op: "access control", Msg: fmt.Sprintf(format, a...), Err: ErrForbidden}
}

// Authorize decides whether s may write v at resource under this Kind's
// access control policy (RFC 6940 §7.3) and usage rules. A refusal is a
// *wire.Error with code Error_Forbidden that wraps ErrForbidden.
func (k *Kind) Authorize(resource wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
	if s == nil {
		return forbid("kind %s: unsigned value", k)
	}
	if v.Model != k.Model {
		return forbid("kind %s: value has data model %v, kind is %v", k, v.Model, k.Model)
	}
	switch k.Policy {
	case UserMatch: // RFC 6940 §7.3.1
		if s.User == "" || !same(UserResourceID(s.User), resource) {
			return forbid("kind %s (USER-MATCH): user %q does not hash to resource %s", k, s.User, resource)
		}
	case NodeMatch: // RFC 6940 §7.3.2
		ok := false
		for _, n := range s.candidates() {
			ok = ok || same(NodeResourceID(n), resource)
		}
		if !ok {
			return forbid("kind %s (NODE-MATCH): no Node-ID of the signer hashes to resource %s", k, resource)
		}
	case UserNodeMatch: // RFC 6940 §7.3.3
		if k.Model != wire.DataModelDictionary {
			return forbid("kind %s: USER-NODE-MATCH needs a dictionary", k)
		}
		if s.User == "" || !same(UserResourceID(s.User), resource) {
			return forbid("kind %s (USER-NODE-MATCH): user %q does not hash to resource %s", k, s.User, resource)
		}
		key := v.Dictionary.Key
		ok := false
		for _, n := range s.candidates() {
			ok = ok || string(key) == string(n[:])
		}
		if !ok {
			return forbid("kind %s (USER-NODE-MATCH): dictionary key %x is not the signer's Node-ID", k, key)
		}
	case NodeMultiple: // RFC 6940 §7.3.4
		ok := false
		for _, n := range s.candidates() {
			for i := 1; i <= k.MaxNodeMultiple && !ok; i++ {
				ok = same(NodeMultipleResourceID(n, i), resource)
			}
		}
		if !ok {
			return forbid("kind %s (NODE-MULTIPLE): no H(Node-ID || i), i <= %d, of the signer is resource %s", k, k.MaxNodeMultiple, resource)
		}
	case Custom:
		if k.Access == nil {
			return forbid("kind %s: custom policy without a definition", k)
		}
		if err := k.Access(resource, v, s); err != nil {
			return forbid("kind %s: %v", k, err)
		}
	default:
		return forbid("kind %s: no access control policy", k)
	}
	if k.Validate != nil && v.Data().Exists {
		if err := k.Validate(resource, v, s); err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return err
			}
			return forbid("kind %s: %v", k, err)
		}
	}
	return nil
}

func (k *Kind) String() string {
	if k.Name != "" {
		return k.Name
	}
	return fmt.Sprintf("%d", uint32(k.ID))
}

// ---- Resource-IDs

func same(a, b wire.ResourceID) bool { return string(a) == string(b) }

// UserResourceID is the Resource-ID of a user name (user@domain, an AoR
// without "sip:"): the overlay hash of the name (RFC 6940 §7.3.1, §10.2),
// after NormalizeAoR so that "sip:alice@Example.org" and the certificate's
// "alice@example.org" meet at one resource.
func UserResourceID(user string) wire.ResourceID {
	if n, err := NormalizeAoR(user); err == nil {
		user = n
	}
	return wire.ResourceIDFromName(user)
}

// NodeResourceID is the Resource-ID a Node-ID hashes to (RFC 6940 §7.3.2,
// §8: CERTIFICATE_BY_NODE is stored at a hash of the Node-ID, never at the
// Node-ID itself). The resource name is the 16 raw Node-ID bytes.
func NodeResourceID(n wire.NodeID) wire.ResourceID { return wire.ResourceIDFromName(string(n[:])) }

// NodeMultipleResourceID is H(Node-ID || i) (RFC 6940 §7.3.4, §9): the
// resource name is the 16 Node-ID bytes followed by i as one byte (the
// TurnServer iteration is a uint8).
func NodeMultipleResourceID(n wire.NodeID, i int) wire.ResourceID {
	b := make([]byte, 0, wire.NodeIDSize+1)
	b = append(b, n[:]...)
	b = append(b, byte(i))
	return wire.ResourceIDFromName(string(b))
}

// ---- Registry

// Registry holds the Kinds of an overlay. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[wire.KindID]*Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[wire.KindID]*Kind{}} }

// Default limits of the built-in Kinds, used when the configuration
// document gives none.
const (
	DefaultSIPMaxCount  = 16   // devices per AoR
	DefaultSIPMaxSize   = 1024 // bytes per SipRegistration
	DefaultCertMaxCount = 4    // old and new certificates (RFC 6940 §8)
	DefaultCertMaxSize  = 8192
	DefaultTURNMaxCount = 1
	DefaultTURNMaxSize  = 64
	DefaultTURNMaxIter  = 20 // RFC 6940 §9
)

// Default returns a registry with SIP-REGISTRATION (RFC 7904 §7),
// CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER (RFC 6940 §8) and
// TURN-SERVICE (RFC 6940 §9) with default limits. Values are validated
// against their formats (SipRegistration, X.509 certificate, TurnServer).
func Default() *Registry {
	r := NewRegistry()
	r.Add(SIPRegistration())
	r.Add(&Kind{
		ID: wire.KindCertificateByNode, Name: NameCertificateByNode,
		Model: wire.DataModelArray, Policy: NodeMatch,
		MaxCount: DefaultCertMaxCount, MaxSize: DefaultCertMaxSize,
		Validate: validateCertificate,
	})
	r.Add(&Kind{
		ID: wire.KindCertificateByUser, Name: NameCertificateByUser,
		Model: wire.DataModelArray, Policy: UserMatch,
		MaxCount: DefaultCertMaxCount, MaxSize: DefaultCertMaxSize,
		Validate: validateCertificate,
	})
	r.Add(&Kind{
		ID: wire.KindTURNService, Name: NameTURNService,
		Model: wire.DataModelSingle, Policy: NodeMultiple,
		MaxCount: DefaultTURNMaxCount, MaxSize: DefaultTURNMaxSize,
		MaxNodeMultiple: DefaultTURNMaxIter,
		Validate:        validateTurn,
	})
	return r
}

// Add registers (or replaces) a Kind. The Kind must not be changed after.
func (r *Registry) Add(k *Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds[k.ID] = k
}

// Kind returns the Kind with id.
func (r *Registry) Kind(id wire.KindID) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[id]
	return k, ok
}

// ByName returns the Kind with an IANA name.
func (r *Registry) ByName(name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.Name == name {
			return k, true
		}
	}
	return nil, false
}

// IDs returns the registered Kind-IDs in ascending order.
func (r *Registry) IDs() []wire.KindID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]wire.KindID, 0, len(r.kinds))
	for id := range r.kinds {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DataModel implements wire.KindModels.
func (r *Registry) DataModel(id wire.KindID) (wire.DataModel, bool) {
	k, ok := r.Kind(id)
	if !ok {
		return wire.DataModelInvalid, false
	}
	return k.Model, true
}

// Limits is the part of a configuration kind-block this package honours
// (RFC 6940 §11.1). Name is the IANA name, or "" with a private ID.
type Limits struct {
	Name            string
	ID              uint32
	DataModel       string
	AccessControl   string
	MaxCount        int
	MaxSize         int
	MaxNodeMultiple int
}

// Configure applies the kind-blocks of an overlay configuration: a known
// Kind takes the block's limits (its data model and policy must agree with
// the Kind's definition); a private Kind-ID (given by id) is added with
// the block's data model and policy. Unknown names are an error.
func (r *Registry) Configure(blocks []Limits) error {
	for _, b := range blocks {
		var k *Kind
		var ok bool
		if b.Name != "" {
			if k, ok = r.ByName(b.Name); !ok {
				return fmt.Errorf("kinds: configuration names unknown kind %q", b.Name)
			}
		} else if k, ok = r.Kind(wire.KindID(b.ID)); !ok {
			m, err := ParseDataModel(b.DataModel)
			if err != nil {
				return fmt.Errorf("kinds: kind %d: %w", b.ID, err)
			}
			p, err := ParsePolicy(b.AccessControl)
			if err != nil {
				return fmt.Errorf("kinds: kind %d: %w", b.ID, err)
			}
			k = &Kind{ID: wire.KindID(b.ID), Model: m, Policy: p}
		}
		nk := *k
		if b.DataModel != "" {
			if m, err := ParseDataModel(b.DataModel); err != nil || m != k.Model {
				return fmt.Errorf("kinds: kind %s: configuration data model %q, kind is %v", k, b.DataModel, k.Model)
			}
		}
		if b.AccessControl != "" {
			if p, err := ParsePolicy(b.AccessControl); err != nil || p != k.Policy {
				return fmt.Errorf("kinds: kind %s: configuration access control %q, kind is %v", k, b.AccessControl, k.Policy)
			}
		}
		if nk.Policy == UserNodeMatch && nk.Model != wire.DataModelDictionary {
			return fmt.Errorf("kinds: kind %s: USER-NODE-MATCH needs the dictionary data model (RFC 6940 §7.3.3)", k)
		}
		nk.MaxCount, nk.MaxSize = b.MaxCount, b.MaxSize
		if b.MaxNodeMultiple > 0 {
			nk.MaxNodeMultiple = b.MaxNodeMultiple
		}
		if nk.Policy == NodeMultiple && nk.MaxNodeMultiple < 1 {
			return fmt.Errorf("kinds: kind %s: NODE-MULTIPLE needs max-node-multiple", k)
		}
		r.Add(&nk)
	}
	return nil
}

func validateCertificate(_ wire.ResourceID, v *wire.StoredDataValue, s *Signer) error {
	cert, err := x509.ParseCertificate(v.Data().Value)
	if err != nil {
		return fmt.Errorf("value is not an X.509 certificate: %w", err)
	}
	// RFC 6940 §8: a user/node stores its own certificate.
	pub, ok := cert.PublicKey.(interface{ Equal(x crypto.PublicKey) bool })
	sameKey := ok && s.Cert != nil && pub.Equal(s.Cert.PublicKey)
	if !sameKey && !sameUserOrNode(cert, s) {
		return errors.New("stored certificate belongs to neither the signer's user nor its Node-IDs")
	}
	return nil
}

func sameUserOrNode(cert *x509.Certificate, s *Signer) bool {
	sig := SignerFromCert(cert)
	if sig.User != "" && sig.User == s.User {
		return true
	}
	for _, n := range sig.NodeIDs {
		if slices.Contains(s.NodeIDs, n) {
			return true
		}
	}
	return false
}
