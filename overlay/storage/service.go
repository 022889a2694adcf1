package storage

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/chord"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Ring is the topology as storage uses it; *chord.Chord implements it.
type Ring interface {
	// Responsible reports whether this peer is responsible for id (§10.1).
	Responsible(id wire.NodeID) bool
	// Predecessors and Successors, closest first.
	Predecessors() []wire.NodeID
	Successors() []wire.NodeID
	// Replicas is the replica set: the next two successors, held down after a
	// successor failed (§10.4, §10.7.1).
	Replicas() []wire.NodeID
}

// Defaults of ServiceSettings.
const (
	DefaultRepairInterval       = 60 * time.Second
	DefaultSweepInterval        = 30 * time.Second
	DefaultStaleHold            = 60 * time.Second
	DefaultSettle               = 250 * time.Millisecond
	DefaultRegistrationLifetime = 10 * time.Minute
	DefaultAuditInterval        = 2 * time.Minute
	// maxMessageCerts bounds the certificates taken from one message.
	maxMessageCerts = 32
	// pushParallel bounds concurrent replica pushes of one repair pass.
	pushParallel = 8
)

// ServiceSettings configure a Service. Zero fields take defaults.
type ServiceSettings struct {
	// Engine is the local store (required). Its Kind registry is used to
	// parse storage bodies.
	Engine *Engine
	// Security, if the node signs through a Certifying wrapper, is told
	// where the certificates of stored values are found.
	Security *Certifying
	// Credentials sign this peer's own values (Register, Store helpers).
	Credentials *Credentials
	// Trust checks certificates of fetched values (default ValidityOnly).
	Trust TrustFunc
	// RepairInterval is how often every stored resource is checked against
	// the replica set even without a neighbour change: 60 s.
	RepairInterval time.Duration
	// SweepInterval is how often expired values are removed: 30 s.
	SweepInterval time.Duration
	// StaleHold is how long data outside this peer's replica range is kept
	// (after it was handed to the responsible peer) before it is dropped
	// (§10.7.3): 60 s.
	StaleHold time.Duration
	// Settle delays a repair pass after a neighbour change so that a burst
	// of changes gives one pass: 250 ms.
	Settle time.Duration
	// PushTimeout bounds one replica Store: 2 × the node's reliability timer.
	PushTimeout time.Duration
	// RegistrationLifetime is the lifetime of Register's SIP-REGISTRATION:
	// 10 minutes; it is refreshed at half its lifetime.
	RegistrationLifetime time.Duration
	// AuditInterval is how often Register checks (Stat) that the overlay
	// still holds its registration, and stores it again if not: 2 minutes.
	AuditInterval time.Duration
	Logger        *slog.Logger
	// UnknownKind, if set, is called in a node goroutine when a peer refused a Store with
	// Error_Unknown_Kind (RFC 6940 §7.4.1.2: the requester "MUST generate a ConfigUpdate
	// message which contains the appropriate Kind definition").
	UnknownKind func(ctx context.Context, peer wire.NodeID, kinds []wire.KindID)
}

// Service is the storing peer on a node: it answers Store, Fetch, Stat and
// Find (RFC 6940 §7.4), replicates to the next two successors (§10.4),
// migrates data when responsibility moves (§10.5 step 6, §10.7.3), and
// offers the client operations (Store, Fetch, Register, LookupAoR).
type Service struct {
	n    *node.Node
	ring Ring
	eng  *Engine
	reg  *kinds.Registry
	s    ServiceSettings
	log  *slog.Logger
	ver  *Verifier
	self wire.NodeID

	kickCh chan struct{}
	mu     sync.Mutex
	dirty  map[string]wire.ResourceID // resources to replicate now
	full   bool                       // a full repair pass is due
	stale  map[string]time.Time       // first seen outside the replica range
	handed map[string]handed          // stale data handed to the responsible peer
	nb     *chord.Neighbors

	regMu   sync.Mutex
	regs    map[string]*registration // by normalized AoR
	metrics Metrics
}

// Metrics count replication activity.
type Metrics struct {
	Passes, Pushes, PushFailures, Migrations, Dropped uint64
}

// NewService registers the storage handlers on n and starts the repair
// loop (a goroutine owned by n). If ring can take observers (chord.Chord)
// the Service registers itself as an observer of neighbour changes and
// admissions (registering it again is harmless).
func NewService(n *node.Node, ring Ring, s ServiceSettings) (*Service, error) {
	if s.Engine == nil {
		return nil, errors.New("storage: service without engine")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.RepairInterval, DefaultRepairInterval)
	def(&s.SweepInterval, DefaultSweepInterval)
	def(&s.StaleHold, DefaultStaleHold)
	def(&s.Settle, DefaultSettle)
	def(&s.PushTimeout, 2*n.Settings().ReliabilityTimer)
	def(&s.RegistrationLifetime, DefaultRegistrationLifetime)
	def(&s.AuditInterval, DefaultAuditInterval)
	if s.Logger == nil {
		s.Logger = n.Logger()
	}
	svc := &Service{
		n: n, ring: ring, eng: s.Engine, reg: s.Engine.Kinds(), s: s, log: s.Logger.With("component", "storage"),
		self:   n.ID(),
		kickCh: make(chan struct{}, 1),
		dirty:  map[string]wire.ResourceID{},
		stale:  map[string]time.Time{},
		handed: map[string]handed{},
		regs:   map[string]*registration{},
	}
	svc.ver = &Verifier{Kinds: svc.reg, Trust: s.Trust}
	if s.Security != nil {
		s.Security.bind(svc.reg, svc.certificateFor)
	}
	n.Handle(wire.CodeStoreReq, node.HandlerFunc(svc.serveStore))
	n.Handle(wire.CodeFetchReq, node.HandlerFunc(svc.serveFetch))
	n.Handle(wire.CodeStatReq, node.HandlerFunc(svc.serveStat))
	n.Handle(wire.CodeFindReq, node.HandlerFunc(svc.serveFind))
	if !n.Go(svc.loop) {
		return nil, node.ErrClosed
	}
	if o, ok := ring.(interface{ AddObserver(chord.Observer) }); ok {
		o.AddObserver(svc)
	}
	return svc, nil
}

// Engine returns the local store.
func (s *Service) Engine() *Engine { return s.eng }

// Metrics returns replication counters.
func (s *Service) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metrics
}

func (s *Service) count(f func(*Metrics)) {
	s.mu.Lock()
	f(&s.metrics)
	s.mu.Unlock()
}

// certificateFor finds a certificate (DER) for the Certifying wrapper:
// this peer's own, or one retained with stored data.
func (s *Service) certificateFor(id *wire.SignerIdentity) []byte {
	if c := s.s.Credentials; c != nil {
		if _, ok := matchIdentity(id, newCertEntry(c.Cert())); ok {
			return c.Cert().Raw
		}
	}
	return s.eng.CertificateFor(id)
}

// ---- handlers

func (s *Service) serveStore(ctx context.Context, req *node.Request) (wire.Body, error) {
	b, err := wire.ParseBody(req.Message, s.reg)
	if err != nil {
		return nil, err
	}
	sr := b.(*wire.StoreReq)
	o := Origin{Certs: s.eng.parseCertificates(req.Message.Security.Certificates, maxMessageCerts, true), From: req.Origin}
	rid := sr.Resource
	if sr.ReplicaNumber == 0 {
		// RFC 6940 §7.4.1.1: the peer MUST check that it is responsible.
		if !s.ring.Responsible(rid.NodeID()) {
			return nil, node.Errorf(wire.ErrNotFound, "not responsible for resource %s", rid)
		}
		if req.Signer != nil { // signatures are checked on this node
			cert, err := wire.FindCertificate(req.Message)
			if err != nil {
				return nil, node.Errorf(wire.ErrForbidden, "StoreReq signer certificate: %v", err)
			}
			o.Signer = cert
		}
	} else {
		if err := s.plausibleReplicaStore(rid, req); err != nil {
			return nil, err
		}
	}
	ans, err := s.eng.Store(sr, o)
	if err != nil {
		return nil, err
	}
	if sr.ReplicaNumber == 0 {
		// RFC 6940 §7.4.1.2: the replicas the data will be stored at; §10.4:
		// then store to the next two successors.
		reps := s.replicaSet()
		for i := range ans.KindResponses {
			ans.KindResponses[i].Replicas = reps
		}
		s.markDirty(rid)
	} else if s.ring.Responsible(rid.NodeID()) {
		s.markDirty(rid) // migrated to us: make sure our replicas have it
	}
	return ans, nil
}

// plausibleReplicaStore checks a replica store (RFC 6940 §7.4.1.1, §10.4): this peer
// expects to hold the resource, and the signed sender is plausible: the responsible peer
// or a node closer to the resource than this one (a closer member of the replica set, or
// a better node this peer does not know of yet). At the responsible peer itself a replica
// store is a hand-over (§10.5 step 6, §10.7.3): it is taken only from a node closer to
// the resource or from the first successors (the peer that was responsible before this
// one joined or took over, and its replicas); from anybody else it would let a stranger
// set the generation counter and values of data this peer is the authority for.
func (s *Service) plausibleReplicaStore(rid wire.ResourceID, req *node.Request) error {
	from := req.Origin
	if !req.SignedBy(from) {
		return node.Errorf(wire.ErrForbidden, "replica store not signed by its sender")
	}
	role, _ := s.role(rid)
	if role == roleStale {
		return node.Errorf(wire.ErrForbidden, "resource %s is outside this peer's replica range", rid)
	}
	x := rid.NodeID()
	if from != s.self && (from == x || between(from, x, s.self)) {
		return nil // between the resource and us: responsible, or a closer replica
	}
	if role == roleResponsible {
		succ := s.ring.Successors()
		if slices.Contains(succ[:min(3, len(succ))], from) {
			return nil
		}
		// §10.7.3: data handed over by a peer that held it before this one became
		// responsible (two rings merged, §10.7.4.4, or many joined at once) may come from
		// a node this peer does not yet count among its successors. It is taken when this
		// peer holds nothing there: there is no value or generation counter of its own for
		// the store to change, and each value is still verified as any store's is.
		if !s.eng.Holds(rid) {
			return nil
		}
	}
	return node.Errorf(wire.ErrForbidden, "replica store of %s from %s, which is not responsible for it nor closer to it than this peer", rid, from)
}

func (s *Service) serveFetch(ctx context.Context, req *node.Request) (wire.Body, error) {
	b, err := wire.ParseBody(req.Message, s.reg)
	if err != nil {
		return nil, err
	}
	ans, _, err := s.eng.fetch(b.(*wire.FetchReq))
	if err != nil {
		return nil, err
	}
	// The certificates travel in the answer's security block (Certifying).
	return ans, nil
}

func (s *Service) serveStat(ctx context.Context, req *node.Request) (wire.Body, error) {
	b, err := wire.ParseBody(req.Message, s.reg)
	if err != nil {
		return nil, err
	}
	return s.eng.Stat(b.(*wire.FetchReq))
}

func (s *Service) serveFind(ctx context.Context, req *node.Request) (wire.Body, error) {
	var fr wire.FindReq
	if err := fr.UnmarshalBinary(req.Message.Body); err != nil {
		return nil, err
	}
	// RFC 6940 §7.4.4.2: not responsible: Error_Not_Found.
	if !s.ring.Responsible(fr.Resource.NodeID()) {
		return nil, node.Errorf(wire.ErrNotFound, "not responsible for resource %s", fr.Resource)
	}
	return s.eng.Find(&fr, func(r wire.ResourceID) bool { return s.ring.Responsible(r.NodeID()) })
}

// ---- observer

// NeighborsChanged implements chord.Observer: a repair pass follows.
func (s *Service) NeighborsChanged(nb chord.Neighbors) {
	s.mu.Lock()
	s.nb = &nb
	s.full = true
	s.mu.Unlock()
	s.kick()
}

// Admitting implements chord.Admitter: before the joining peer becomes our
// predecessor, store to it the data it will be responsible for (RFC 6940
// §10.5 step 6).
func (s *Service) Admitting(ctx context.Context, joining wire.NodeID) {
	preds := s.ring.Predecessors()
	lo := s.self
	if len(preds) > 0 {
		lo = preds[0]
	}
	if !between(joining, lo, s.self) {
		return // not becoming our predecessor
	}
	for _, ri := range s.eng.Resources() {
		if between(ri.ID.NodeID(), lo, joining) && !s.eng.Pushed(ri.ID, joining) {
			if err := s.push(ctx, ri.ID, joining, 1); err != nil {
				s.log.Debug("migration to joining peer failed", "peer", joining, "resource", ri.ID, "err", err)
				continue
			}
			s.count(func(m *Metrics) { m.Migrations++ })
		}
	}
}

func (s *Service) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

func (s *Service) markDirty(rid wire.ResourceID) {
	s.mu.Lock()
	s.dirty[string(rid)] = rid
	s.mu.Unlock()
	s.kick()
}

// Repair runs one full repair pass now and returns when it is done (tests
// and tools; the service also repairs by itself).
func (s *Service) Repair(ctx context.Context) {
	s.pass(ctx, nil)
}
