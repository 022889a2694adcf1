package storage

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ErrNotRegistered is returned by LookupAoR when an AoR has no
// registration.
var ErrNotRegistered = errors.New("storage: not registered")

// ErrRetrying is wrapped by Register's error when the first store failed
// for a passing reason and the registration is being retried in the
// background (Unregister stops it).
var ErrRetrying = errors.New("storage: registration will be retried in the background")

// ErrNoCredentials is returned by operations that sign values when the
// Service has no Credentials.
var ErrNoCredentials = errors.New("storage: no credentials to sign with")

func resourceDest(rid wire.ResourceID) []wire.Destination {
	return []wire.Destination{{Type: wire.DestinationResource, Resource: rid}}
}

// Store stores values of one Kind at a resource (an original store, routed
// to the responsible peer, RFC 6940 §7.4.1) and returns the StoreAns.
// A refusal is a *node.RemoteError carrying the RELOAD error code.
func (s *Service) Store(ctx context.Context, rid wire.ResourceID, kind wire.KindID, values ...wire.StoredData) (*wire.StoreAns, error) {
	req := &wire.StoreReq{Resource: rid, KindData: []wire.StoreKindData{{Kind: kind, Values: values}}}
	resp, err := s.n.Request(ctx, resourceDest(rid), wire.CodeStoreReq, req)
	if err != nil {
		var re *node.RemoteError
		if errors.As(err, &re) && re.Code == wire.ErrUnknownKind && s.s.UnknownKind != nil {
			s.n.Go(func(ctx context.Context) { s.s.UnknownKind(ctx, re.From, []wire.KindID{kind}) })
		}
		return nil, fmt.Errorf("storage: store at %s: %w", rid, err)
	}
	b, err := resp.Body(s.reg)
	if err != nil {
		return nil, fmt.Errorf("storage: store answer: %w", err)
	}
	ans, ok := b.(*wire.StoreAns)
	if !ok {
		return nil, fmt.Errorf("storage: store answer is %T", b)
	}
	return ans, nil
}

// FetchResult is the verified answer to a Fetch.
type FetchResult struct {
	Kinds []wire.FetchKindResponse // only values that verified
	// Dropped counts values discarded because their signature, certificate
	// or access control check failed (RFC 6940 §7.4.2.2).
	Dropped int
	From    wire.NodeID
	Certs   []*x509.Certificate
}

// Fetch fetches from the peer responsible for rid (RFC 6940 §7.4.2) and
// verifies every value: signature, certificate and the Kind's policy.
// Unsigned synthetic nonexistent values are left out.
func (s *Service) Fetch(ctx context.Context, rid wire.ResourceID, specs ...wire.StoredDataSpecifier) (*FetchResult, error) {
	for i := range specs {
		if specs[i].Model == wire.DataModelInvalid {
			m, ok := s.reg.DataModel(specs[i].Kind)
			if !ok {
				return nil, fmt.Errorf("storage: fetch: unknown kind %d", specs[i].Kind)
			}
			specs[i].Model = m
		}
	}
	req := &wire.FetchReq{Resource: rid, Specifiers: specs}
	resp, err := s.n.Request(ctx, resourceDest(rid), wire.CodeFetchReq, req)
	if err != nil {
		return nil, fmt.Errorf("storage: fetch from %s: %w", rid, err)
	}
	b, err := resp.Body(s.reg)
	if err != nil {
		return nil, fmt.Errorf("storage: fetch answer: %w", err)
	}
	ans, ok := b.(*wire.FetchAns)
	if !ok {
		return nil, fmt.Errorf("storage: fetch answer is %T", b)
	}
	certs := s.eng.parseCertificates(resp.Message.Security.Certificates, maxMessageCerts, false)
	out := &FetchResult{From: resp.From, Certs: certs}
	for i := range ans.KindResponses {
		kr := &ans.KindResponses[i]
		good, bad := s.ver.FilterValid(rid, kr, certs)
		out.Dropped += bad
		out.Kinds = append(out.Kinds, wire.FetchKindResponse{Kind: kr.Kind, Generation: kr.Generation, Values: good})
	}
	return out, nil
}

// ---- SIP-REGISTRATION (RFC 7904)

// Registration is one reachable device of an AoR (RFC 7904 §4.2).
type Registration struct {
	// AoR is where the registration was found (after following URI
	// indirections), as user@domain.
	AoR string
	// Node is the dictionary key: the Node-ID of the peer that stored it.
	Node wire.NodeID
	// Destinations is the destination list to AppAttach to; its last entry
	// is the callee's Node-ID (RFC 7904 §5.1).
	Destinations []wire.Destination
	// ContactPrefs are the callee's contact preferences (RFC 7904 §3.2).
	ContactPrefs string
	// User is the signer's user name.
	User        string
	StorageTime time.Time
	Expires     time.Time
}

// Target is the Node-ID at the end of the destination list.
func (r *Registration) Target() wire.NodeID {
	if n := len(r.Destinations); n > 0 && r.Destinations[n-1].Type == wire.DestinationNode {
		return r.Destinations[n-1].Node
	}
	return wire.NodeID{}
}

type registration struct {
	aor    string
	rid    wire.ResourceID
	value  []byte
	stored wire.StoredData
	retry  bool // the first store failed: try again soon
	cancel context.CancelFunc
	done   chan struct{}
}

// Register stores this peer's SIP-REGISTRATION for aor (RFC 7904 §3):
// dictionary key = this peer's Node-ID, value a route whose destination
// list is this peer's Node-ID with contact as contact_prefs, or, when
// contact is a SIP AoR ("sip:bob@example.org"), a uri registration that
// forwards to it. The AoR must be the certificate's user name
// (USER-NODE-MATCH). The registration is refreshed at half its lifetime
// until Unregister or the node closes. If the first store fails for a
// reason that may pass (a timeout, no route yet), Register returns the
// error but keeps trying in the background.
func (s *Service) Register(ctx context.Context, aor, contact string) error {
	cred := s.s.Credentials
	if cred == nil {
		return ErrNoCredentials
	}
	name, err := kinds.NormalizeAoR(aor)
	if err != nil {
		return err
	}
	signer := kinds.SignerFromCert(cred.Cert())
	if own, _ := kinds.NormalizeAoR(signer.User); own != name {
		return fmt.Errorf("storage: register %s: the certificate is for %q (RFC 7904 §3.3)", name, signer.User)
	}
	var value []byte
	if strings.HasPrefix(strings.ToLower(contact), "sip:") || strings.HasPrefix(strings.ToLower(contact), "sips:") {
		value, err = kinds.URIRegistration(contact)
	} else {
		value, err = kinds.RouteRegistration(s.self, contact)
	}
	if err != nil {
		return err
	}
	r := &registration{aor: name, rid: kinds.UserResourceID(name), value: value, done: make(chan struct{})}
	storeErr := s.storeRegistration(ctx, r, true)
	if storeErr != nil && permanent(storeErr) {
		return storeErr
	}
	// A transient failure (timeout, no route yet) is retried in the background.
	r.retry = storeErr != nil
	s.regMu.Lock()
	old := s.regs[name]
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	s.regs[name] = r
	s.regMu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
	}
	if !s.n.Go(func(nctx context.Context) {
		defer close(r.done)
		ctx, stop := context.WithCancel(nctx)
		defer stop()
		defer context.AfterFunc(rctx, stop)()
		s.refresh(ctx, r)
	}) {
		close(r.done)
	}
	if storeErr != nil {
		return fmt.Errorf("%w: %w", storeErr, ErrRetrying)
	}
	return nil
}

// permanent reports whether a refused store would be refused again.
func permanent(err error) bool {
	for _, c := range []wire.ErrorCode{wire.ErrForbidden, wire.ErrDataTooLarge, wire.ErrUnknownKind, wire.ErrInvalidMessage} {
		if node.IsCode(err, c) {
			return true
		}
	}
	return false
}

// refresh re-stores r at half its lifetime, retrying failures sooner. Every
// AuditInterval it also checks (with a Stat) that the overlay still holds
// the value and stores it again if not: a registration whose three copies
// died together comes back without waiting for the refresh.
func (s *Service) refresh(ctx context.Context, r *registration) {
	next := time.Now().Add(s.s.RegistrationLifetime / 2)
	if r.retry {
		next = time.Now().Add(retryDelay(s.s.RegistrationLifetime))
	}
	audit := time.NewTicker(s.s.AuditInterval)
	defer audit.Stop()
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-audit.C:
			t.Stop()
			actx, cancel := context.WithTimeout(ctx, s.s.PushTimeout)
			ok, err := s.holds(actx, r)
			cancel()
			if ok || err != nil {
				continue // present, or the overlay cannot tell now
			}
			s.log.Info("SIP registration missing from the overlay: storing it again", "aor", r.aor)
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, s.s.RegistrationLifetime/4)
		err := s.storeRegistration(sctx, r, true)
		cancel()
		if err == nil {
			next = time.Now().Add(s.s.RegistrationLifetime / 2)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("SIP registration refresh failed", "aor", r.aor, "err", err)
		next = time.Now().Add(retryDelay(s.s.RegistrationLifetime))
	}
}

// errLone: the audit cannot tell while this peer has no neighbour (holds).
var errLone = errors.New("storage: this peer has lost its neighbours: the overlay cannot be asked")

// retryDelay is how soon a failed registration store is tried again: well
// before the stored value expires, at most 30 s.
func retryDelay(life time.Duration) time.Duration {
	return min(life/16+rand.N(life/16+1), 30*time.Second)
}

// holds asks the responsible peer (Stat, RFC 6940 §7.4.3) whether it has
// this peer's latest registration value.
func (s *Service) holds(ctx context.Context, r *registration) (bool, error) {
	if l, ok := s.ring.(interface{ IsLone() bool }); ok && l.IsLone() {
		// A peer that lost every neighbour is responsible for everything in its own
		// eyes only (RFC 6940 §10.7.1): its own copy proves nothing about the overlay.
		return false, errLone
	}
	ans, err := s.Stat(ctx, r.rid, wire.StoredDataSpecifier{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary, Keys: [][]byte{s.self[:]}})
	if err != nil {
		return false, err
	}
	s.regMu.Lock()
	want := r.stored.StorageTime
	s.regMu.Unlock()
	for _, kr := range ans.KindResponses {
		for _, md := range kr.Values {
			if md.MetaData.MetaData.Exists && md.StorageTime >= want {
				return true, nil
			}
		}
	}
	return false, nil
}

// Stat asks the peer responsible for rid for metadata (RFC 6940 §7.4.3).
func (s *Service) Stat(ctx context.Context, rid wire.ResourceID, specs ...wire.StoredDataSpecifier) (*wire.StatAns, error) {
	resp, err := s.n.Request(ctx, resourceDest(rid), wire.CodeStatReq, &wire.StatReq{Resource: rid, Specifiers: specs})
	if err != nil {
		return nil, fmt.Errorf("storage: stat at %s: %w", rid, err)
	}
	if resp.Message.Code != wire.CodeStatAns {
		return nil, fmt.Errorf("storage: stat answered with %v", resp.Message.Code)
	}
	var ans wire.StatAns
	if err := ans.UnmarshalKinds(resp.Message.Body, s.reg); err != nil {
		return nil, fmt.Errorf("storage: stat answer: %w", err)
	}
	return &ans, nil
}

// Find asks the peer responsible for rid for the closest Resource-IDs it
// holds of each Kind (RFC 6940 §7.4.4).
func (s *Service) Find(ctx context.Context, rid wire.ResourceID, kinds ...wire.KindID) (*wire.FindAns, error) {
	var ans wire.FindAns
	if _, err := s.n.Call(ctx, resourceDest(rid), wire.CodeFindReq, &wire.FindReq{Resource: rid, Kinds: kinds}, &ans); err != nil {
		return nil, fmt.Errorf("storage: find at %s: %w", rid, err)
	}
	return &ans, nil
}

// storeRegistration signs and stores r's value (exists) or a deletion.
// On Error_Data_Too_Old (a clock behind the stored value) it retries once
// just after the stored storage time (RFC 6940 §7).
func (s *Service) storeRegistration(ctx context.Context, r *registration, exists bool) error {
	// A store this peer is responsible for completes locally without looking at ctx: an
	// ended ctx must still end the attempt.
	if err := ctx.Err(); err != nil {
		return err
	}
	cred := s.s.Credentials
	v := wire.StoredDataValue{Model: wire.DataModelDictionary, Dictionary: wire.DictionaryEntry{Key: append([]byte(nil), s.self[:]...), Value: wire.DataValue{Exists: exists}}}
	if exists {
		v.Dictionary.Value.Value = r.value
	}
	at := time.Now()
	s.regMu.Lock()
	prev := r.stored.StorageTime
	s.regMu.Unlock()
	if last := time.UnixMilli(int64(prev)); !at.After(last) {
		at = last.Add(time.Millisecond)
	}
	for attempt := 0; ; attempt++ {
		sd, err := NewValue(r.rid, wire.KindSIPRegistration, v, at, s.s.RegistrationLifetime, cred)
		if err != nil {
			return err
		}
		_, err = s.Store(ctx, r.rid, wire.KindSIPRegistration, sd)
		if err == nil {
			s.regMu.Lock()
			r.stored = sd
			s.regMu.Unlock()
			return nil
		}
		if attempt > 0 || !node.IsCode(err, wire.ErrDataTooOld) {
			return fmt.Errorf("storage: register %s: %w", r.aor, err)
		}
		res, ferr := s.Fetch(ctx, r.rid, wire.StoredDataSpecifier{Kind: wire.KindSIPRegistration, Keys: [][]byte{s.self[:]}})
		if ferr != nil {
			return fmt.Errorf("storage: register %s: %w", r.aor, err)
		}
		for _, kr := range res.Kinds {
			for _, sd := range kr.Values {
				if t := time.UnixMilli(int64(sd.StorageTime)); !at.After(t) {
					at = t.Add(time.Millisecond)
				}
			}
		}
	}
}

// Unregister removes this peer's registration of aor: it stores a
// nonexistent value with the full registration lifetime (RFC 6940
// §7.4.1.3) and stops refreshing.
func (s *Service) Unregister(ctx context.Context, aor string) error {
	name, err := kinds.NormalizeAoR(aor)
	if err != nil {
		return err
	}
	s.regMu.Lock()
	r := s.regs[name]
	delete(s.regs, name)
	s.regMu.Unlock()
	if r == nil {
		return fmt.Errorf("storage: %s is not registered by this peer", name)
	}
	r.cancel()
	<-r.done
	return s.storeRegistration(ctx, r, false)
}

// UnregisterAll unregisters every AoR this peer registered (on quit).
func (s *Service) UnregisterAll(ctx context.Context) error {
	s.regMu.Lock()
	var aors []string
	for a := range s.regs {
		aors = append(aors, a)
	}
	s.regMu.Unlock()
	var errs []error
	for _, a := range aors {
		if err := s.Unregister(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxIndirections bounds URI indirections followed by LookupAoR.
const maxIndirections = 5

// LookupAoR resolves an AoR (RFC 7904 §4.2): it fetches every dictionary
// entry of its SIP-REGISTRATION, verifies them, follows URI registrations
// to other AoRs, and returns the route registrations without duplicate
// destination lists. ErrNotRegistered when nothing is found.
func (s *Service) LookupAoR(ctx context.Context, aor string) ([]Registration, error) {
	start, err := kinds.NormalizeAoR(aor)
	if err != nil {
		return nil, err
	}
	var out []Registration
	seenDest := map[string]bool{}
	visited := map[string]bool{}
	queue := []string{start}
	var firstErr error
	for depth := 0; len(queue) > 0 && depth <= maxIndirections; depth++ {
		var next []string
		for _, a := range queue {
			if visited[a] {
				continue
			}
			visited[a] = true
			rid := kinds.UserResourceID(a)
			res, err := s.fetchRegistrations(ctx, rid)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			for _, kr := range res.Kinds {
				for _, sd := range kr.Values {
					dv := sd.Value.Dictionary.Value
					if !dv.Exists {
						continue
					}
					reg, err := kinds.ParseSipRegistration(dv.Value)
					if err != nil {
						continue
					}
					switch reg.Type {
					case wire.SipRegistrationURI:
						if n, err := kinds.NormalizeAoR(reg.URI); err == nil && !visited[n] {
							next = append(next, n)
						}
					case wire.SipRegistrationRoute:
						key, err := destKey(reg.DestinationList)
						if err != nil || seenDest[key] {
							continue
						}
						seenDest[key] = true
						r := Registration{
							AoR: a, Destinations: reg.DestinationList, ContactPrefs: string(reg.ContactPrefs),
							StorageTime: time.UnixMilli(int64(sd.StorageTime)),
							Expires:     time.Now().Add(time.Duration(sd.Lifetime) * time.Second),
						}
						copy(r.Node[:], sd.Value.Dictionary.Key)
						if sg, err := s.ver.Verify(rid, wire.KindSIPRegistration, &sd, res.Certs); err == nil {
							r.User = sg.User
						}
						out = append(out, r)
					}
				}
			}
		}
		queue = next
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, start)
	}
	return out, nil
}

// fetchRegistrations fetches every SIP-REGISTRATION entry of rid. When the
// whole dictionary with its signers' certificates does not fit in one
// answer (Error_Response_Too_Large, RFC 6940 §6.3.2: an AoR with many
// devices, each signed by its own certificate), it learns the dictionary
// keys with a StatReq (RFC 6940 §7.4.3) and fetches them in batches,
// halving a batch until its answer fits.
func (s *Service) fetchRegistrations(ctx context.Context, rid wire.ResourceID) (*FetchResult, error) {
	spec := wire.StoredDataSpecifier{Kind: wire.KindSIPRegistration, Model: wire.DataModelDictionary}
	res, err := s.Fetch(ctx, rid, spec)
	if err == nil || !node.IsCode(err, wire.ErrResponseTooLarge) {
		return res, err
	}
	st, serr := s.Stat(ctx, rid, spec)
	if serr != nil {
		return nil, fmt.Errorf("%w (stat to fetch in batches: %w)", err, serr)
	}
	var keys [][]byte
	for _, kr := range st.KindResponses {
		if kr.Kind != wire.KindSIPRegistration {
			continue
		}
		for _, md := range kr.Values {
			keys = append(keys, md.MetaData.Key)
		}
	}
	out := &FetchResult{}
	var fetch func(keys [][]byte) error
	fetch = func(keys [][]byte) error {
		sp := spec
		sp.Keys = keys
		r, err := s.Fetch(ctx, rid, sp)
		if err != nil && len(keys) > 1 && node.IsCode(err, wire.ErrResponseTooLarge) {
			h := len(keys) / 2
			if err := fetch(keys[:h]); err != nil {
				return err
			}
			return fetch(keys[h:])
		}
		if err != nil {
			return err
		}
		out.From = r.From
		out.Dropped += r.Dropped
		out.Certs = append(out.Certs, r.Certs...)
		for _, kr := range r.Kinds {
			if i := slices.IndexFunc(out.Kinds, func(k wire.FetchKindResponse) bool { return k.Kind == kr.Kind }); i >= 0 {
				out.Kinds[i].Values = append(out.Kinds[i].Values, kr.Values...)
			} else {
				out.Kinds = append(out.Kinds, kr)
			}
		}
		return nil
	}
	if err := fetch(keys); err != nil {
		return nil, err
	}
	return out, nil
}

func destKey(ds []wire.Destination) (string, error) {
	var b strings.Builder
	for _, d := range ds {
		switch d.Type {
		case wire.DestinationNode:
			b.WriteString("n" + d.Node.String() + "/")
		case wire.DestinationResource:
			b.WriteString("r" + d.Resource.String() + "/")
		case wire.DestinationOpaque:
			b.WriteString(fmt.Sprintf("o%x/", []byte(d.Opaque)))
		default:
			return "", fmt.Errorf("destination type %d", d.Type)
		}
	}
	return b.String(), nil
}
