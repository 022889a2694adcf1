package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// DefaultRecordLifetime is the lifetime of stored TURN-SERVICE records; they are refreshed at
// half of it.
const DefaultRecordLifetime = 10 * time.Minute

// Storer stores signed values in the overlay (storage.Service does).
type Storer interface {
	Store(ctx context.Context, rid wire.ResourceID, kind wire.KindID, values ...wire.StoredData) (*wire.StoreAns, error)
}

// AdvertiserConfig configures an Advertiser.
type AdvertiserConfig struct {
	Storage     Storer
	Credentials *storage.Credentials // this peer's key and certificate (records are signed)
	NodeID      wire.NodeID
	Addr        netip.AddrPort // the TURN server's address
	Density     int            // turn-density of the configuration (RFC 6940 §11.1); 0: none
	Lifetime    time.Duration  // DefaultRecordLifetime
	Logger      *slog.Logger
}

// Advertiser keeps this peer's TURN-SERVICE records in the overlay (RFC 6940 §9).
type Advertiser struct {
	cfg    AdvertiserConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	last time.Time // storage time of the last stored values
}

// Resources returns where node's records are stored: H(Node-ID || d), d = 1..density.
func Resources(node wire.NodeID, density int) []wire.ResourceID {
	density = min(density, kinds.DefaultTURNMaxIter)
	out := make([]wire.ResourceID, 0, max(density, 0))
	for d := 1; d <= density; d++ {
		out = append(out, kinds.NodeMultipleResourceID(node, d))
	}
	return out
}

// StartAdvertiser stores the records now (the error is the first store's) and refreshes them
// at half their lifetime until Stop.
func StartAdvertiser(ctx context.Context, cfg AdvertiserConfig) (*Advertiser, error) {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultRecordLifetime
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Density > kinds.DefaultTURNMaxIter {
		cfg.Density = kinds.DefaultTURNMaxIter // NODE-MULTIPLE, maximum iteration 20 (§9)
	}
	a := &Advertiser{cfg: cfg, done: make(chan struct{})}
	err := a.store(ctx, true)
	rctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.loop(rctx, err != nil) // owner: the Advertiser; ends on Stop
	return a, err
}

func (a *Advertiser) loop(ctx context.Context, failed bool) {
	defer close(a.done)
	retry := 5 * time.Second
	for {
		wait := a.cfg.Lifetime / 2
		if failed {
			wait = min(retry, wait) // not stored yet (the ring may still be settling)
			retry *= 2
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := a.store(sctx, true)
		cancel()
		failed = err != nil
		if failed && ctx.Err() == nil {
			a.cfg.Logger.Warn("storing the TURN-SERVICE records", "err", err)
		} else {
			retry = 5 * time.Second
		}
	}
}

// store stores (or, exists false, withdraws) the record at every H(Node-ID || d).
func (a *Advertiser) store(ctx context.Context, exists bool) error {
	a.mu.Lock()
	at := time.Now()
	if !at.After(a.last) {
		at = a.last.Add(time.Millisecond) // storage times only grow (RFC 6940 §7.4.1.1)
	}
	a.last = at
	a.mu.Unlock()
	var errs []error
	for i, rid := range Resources(a.cfg.NodeID, a.cfg.Density) {
		v := wire.StoredDataValue{Model: wire.DataModelSingle, Single: wire.DataValue{Exists: exists}}
		if exists {
			b, err := Record{Iteration: uint8(i + 1), Addr: a.cfg.Addr}.MarshalBinary()
			if err != nil {
				return err
			}
			v.Single.Value = b
		}
		sd, err := storage.NewValue(rid, wire.KindTURNService, v, at, a.cfg.Lifetime, a.cfg.Credentials)
		if err != nil {
			return fmt.Errorf("turn: signing the record: %w", err)
		}
		if _, err := a.cfg.Storage.Store(ctx, rid, wire.KindTURNService, sd); err != nil {
			errs = append(errs, fmt.Errorf("turn: storing TURN-SERVICE %d: %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}

// Stop stops refreshing and withdraws the records (a nonexistent value, RFC 6940 §7.4.1.3);
// ctx bounds the withdrawal.
func (a *Advertiser) Stop(ctx context.Context) error {
	a.cancel()
	<-a.done
	return a.store(ctx, false)
}
