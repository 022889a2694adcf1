package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// ConfigUpdate (RFC 6940 §6.5.4): a node that finds another with an older configuration
// sends it the document; a peer that accepts a newer one applies it (kind limits, domain
// restriction, sequence) without a restart and passes it on to the peers it is linked to.

// configUpdateTimeout bounds one ConfigUpdate request.
const configUpdateTimeout = 10 * time.Second

// sequenceNewer reports whether configuration sequence a is newer than b, modulo 65535
// "as in TCP" (RFC 6940 §6.3.2.1).
func sequenceNewer(a, b int) bool { return int16(uint16(a)-uint16(b)) > 0 }

// serveConfigUpdate verifies and applies a ConfigUpdateReq (RFC 6940 §6.5.4.2).
func (p *Peer) serveConfigUpdate(ctx context.Context, req *node.Request) (wire.Body, error) {
	b, err := req.Body()
	if err != nil {
		return nil, err
	}
	cu, ok := b.(*wire.ConfigUpdateReq)
	if !ok {
		return nil, node.Errorf(wire.ErrInvalidMessage, "not a ConfigUpdateReq")
	}
	switch cu.Type {
	case wire.ConfigUpdateConfig:
		err = p.applyDocument(cu.ConfigData)
	case wire.ConfigUpdateKind:
		err = p.applyKinds(cu.Kinds)
	default:
		return nil, node.Errorf(wire.ErrInvalidMessage, "ConfigUpdate type %d not supported", cu.Type)
	}
	if err != nil {
		return nil, err
	}
	return &wire.ConfigUpdateAns{}, nil
}

// ErrConfigRefused is wrapped by the errors of a ConfigUpdate this peer does not apply.
var ErrConfigRefused = errors.New("configuration update refused")

// applyDocument applies a configuration document received in a ConfigUpdate: it "MUST be
// processed only if" its sequence is greater than the current one and it is "correctly
// digitally signed" (RFC 6940 §6.5.4.2) — by a configuration-signer of the configuration in
// force (§11.1), so a self-signed overlay, which has none, takes no updates.
func (p *Peer) applyDocument(doc []byte) error {
	cur := p.document()
	next, err := config.ParseOverlay(doc, cur.InstanceName)
	if err != nil {
		return node.Errorf(wire.ErrInvalidMessage, "configuration document: %v", err)
	}
	if !sequenceNewer(next.Sequence, cur.Sequence) {
		return node.Errorf(wire.ErrConfigTooOld, "configuration sequence %d is not newer than %d", next.Sequence, cur.Sequence)
	}
	if err := next.Verify(config.VerifyOptions{Previous: cur}); err != nil {
		p.log.Warn("configuration update refused", "sequence", next.Sequence, "err", err)
		return node.Errorf(wire.ErrForbidden, "%v: %v", ErrConfigRefused, err)
	}
	if err := next.Supported(); err != nil {
		return node.Errorf(wire.ErrForbidden, "%v: %v", ErrConfigRefused, err)
	}
	if err := p.useDocument(next); err != nil {
		return node.Errorf(wire.ErrForbidden, "%v: %v", ErrConfigRefused, err)
	}
	return nil
}

// UpdateConfig applies a newer configuration of this overlay given locally (the
// overlay-server's own peer after the operator changed the document): the same checks and
// effects as a ConfigUpdate from the overlay.
func (p *Peer) UpdateConfig(next *config.Config) error {
	if next.Document == nil {
		return errors.New("peer: configuration without its document")
	}
	return p.applyDocument(next.Document)
}

// useDocument puts a verified, newer configuration in force and passes it on.
func (p *Peer) useDocument(next *config.Config) error {
	p.cfgMu.Lock()
	defer p.cfgMu.Unlock()
	cur := p.document()
	if !sequenceNewer(next.Sequence, cur.Sequence) {
		return nil // a concurrent update got here first
	}
	if err := kinds.Apply(p.reg, next); err != nil {
		return err
	}
	p.docp.Store(next)
	p.node.SetConfigurationSequence(uint16(next.Sequence))
	p.keepDocument(next)
	p.log.Info("applied a new overlay configuration", "overlay", next.InstanceName, "sequence", next.Sequence, "was", cur.Sequence)
	if cur.TopologyPlugin != next.TopologyPlugin || cur.NodeIDLength != next.NodeIDLength {
		p.log.Warn("the new configuration changes the topology: restart the phone to use it")
	}
	// Pass it on to every linked node: each applies it once (its sequence is then not
	// newer), so the update floods the overlay over its links.
	for _, id := range p.node.Links() {
		p.sendConfigUpdate([]wire.Destination{wire.NodeDestination(id)})
	}
	return nil
}

// configStale sends the configuration in force to a node found with an older one
// (node.Settings.ConfigStale), at most once per node and sequence.
func (p *Peer) configStale(ctx context.Context, route []wire.Destination) {
	p.sendConfigUpdateCtx(ctx, route)
}

func (p *Peer) sendConfigUpdate(route []wire.Destination) {
	p.node.Go(func(ctx context.Context) { p.sendConfigUpdateCtx(ctx, route) })
}

func (p *Peer) sendConfigUpdateCtx(ctx context.Context, route []wire.Destination) {
	doc := p.document()
	if len(doc.Document) == 0 || doc.Signature == nil {
		return // nothing another node could verify (self-signed overlay)
	}
	target := route[len(route)-1].Node
	if !p.updated.first(target, doc.Sequence) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, configUpdateTimeout)
	defer cancel()
	_, err := p.node.Request(ctx, route, wire.CodeConfigUpdateReq,
		&wire.ConfigUpdateReq{Type: wire.ConfigUpdateConfig, ConfigData: doc.Document},
		node.WithConfigurationSequence(0xffff)) // accepted whatever its sequence (§6.3.2.1)
	if err != nil && !node.IsCode(err, wire.ErrConfigTooOld) {
		p.log.Debug("ConfigUpdate", "to", target, "sequence", doc.Sequence, "err", err)
		p.updated.forget(target, doc.Sequence)
	}
}

// sentUpdates remembers which node was sent which configuration sequence, so that a
// burst of stale requests from one node gives one ConfigUpdate.
type sentUpdates struct {
	mu   sync.Mutex
	sent map[wire.NodeID]int
}

func (s *sentUpdates) first(id wire.NodeID, seq int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[wire.NodeID]int{}
	}
	if v, ok := s.sent[id]; ok && v == seq {
		return false
	}
	if len(s.sent) > 4096 {
		clear(s.sent)
	}
	s.sent[id] = seq
	return true
}

func (s *sentUpdates) forget(id wire.NodeID, seq int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent[id] == seq {
		delete(s.sent, id)
	}
}

// applyKinds applies kind-blocks received in a ConfigUpdate of type kind: each must be
// signed by a kind-signer of the configuration in force (RFC 6940 §6.5.4.2).
func (p *Peer) applyKinds(blocks [][]byte) error {
	cur := p.document()
	ks, err := config.ParseKindBlocks(blocks)
	if err != nil {
		return node.Errorf(wire.ErrInvalidMessage, "kind-blocks: %v", err)
	}
	if err := cur.VerifyKinds(ks, time.Now()); err != nil {
		return node.Errorf(wire.ErrForbidden, "%v: %v", ErrConfigRefused, err)
	}
	if err := p.reg.Configure(kinds.LimitsFromConfig(ks)); err != nil {
		return node.Errorf(wire.ErrForbidden, "%v: %v", ErrConfigRefused, err)
	}
	p.cfgMu.Lock()
	p.kindBlocks = append(p.kindBlocks, ks...) // to pass on (unknownKinds, §7.4.1.2)
	p.cfgMu.Unlock()
	p.log.Info("applied kind definitions from a ConfigUpdate", "kinds", len(ks))
	return nil
}

// unknownKinds answers Error_Unknown_Kind from a storing peer (RFC 6940 §7.4.1.2: "A node
// which receives this error MUST generate a ConfigUpdate message which contains the
// appropriate Kind definition"): the kind-blocks for those kinds of the document in force,
// or of a ConfigUpdate of type kind this peer applied.
func (p *Peer) unknownKinds(ctx context.Context, peer wire.NodeID, ids []wire.KindID) {
	p.cfgMu.Lock()
	known := append(slices.Clone(p.document().Kinds), p.kindBlocks...)
	p.cfgMu.Unlock()
	var blocks [][]byte
	for _, id := range ids {
		k, ok := p.reg.Kind(id)
		if !ok {
			continue
		}
		for _, kb := range known {
			if (kb.Name != "" && kb.Name == k.Name) || (kb.Name == "" && wire.KindID(kb.ID) == id) {
				if kb.Signature != nil {
					blocks = append(blocks, config.EncodeKindBlock(kb))
				}
			}
		}
	}
	if len(blocks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, configUpdateTimeout)
	defer cancel()
	_, err := p.node.Request(ctx, []wire.Destination{wire.NodeDestination(peer)}, wire.CodeConfigUpdateReq,
		&wire.ConfigUpdateReq{Type: wire.ConfigUpdateKind, Kinds: blocks}, node.WithConfigurationSequence(0xffff))
	if err != nil {
		p.log.Debug("ConfigUpdate of kinds", "to", peer, "err", fmt.Errorf("%w", err))
	}
}
