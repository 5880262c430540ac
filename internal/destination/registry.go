package destination

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Registry is this node's in-memory snapshot of every destination, with tokens decrypted, for
// the router and the dispatcher. It is safe for concurrent use.
//
// The snapshot follows the store's configuration generation (see Store): it has applied
// generation g once it reflects every change numbered up to g. Sync brings it up to the
// store's current generation (one small query when nothing changed) and Await up to a
// generation the caller learnt elsewhere, such as the one a delivery job was routed with; both
// refresh synchronously, reading only the rows changed since the generation applied. Run polls
// the same way as a fallback, and a change made through this node refreshes it at once.
type Registry struct {
	store Store
	box   *Box
	log   *zap.Logger

	// FullEvery makes every FullEvery-th Run poll a full reload (0: never).
	FullEvery int

	refreshMu sync.Mutex   // one refresh at a time
	applied   atomic.Int64 // the generation the snapshot reflects; set after the snapshot
	ahead     int64        // the highest generation awaited that the store did not have (logged once)
	loaded    bool

	mu       sync.RWMutex
	byID     map[string]Destination
	routable []Destination
	changed  chan struct{}
	version  uint64
}

// DefaultRefreshInterval is how often Run polls the store.
const DefaultRefreshInterval = time.Second

// readTimeout bounds each read of the store (a store that hangs must not hold every caller
// waiting for the registry).
const readTimeout = 5 * time.Second

var errReadTimeout = errors.New("reading destinations from the store took longer than 5s")

// NewRegistry returns an empty registry; call Load before use.
func NewRegistry(store Store, box *Box, log *zap.Logger) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{
		store: store, box: box, log: log,
		FullEvery: 300,
		byID:      map[string]Destination{},
		routable:  []Destination{},
		changed:   make(chan struct{}),
	}
}

// Load reads every destination from the store.
func (r *Registry) Load(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	return r.refresh(ctx, true)
}

// Refresh reads the destinations changed since the generation applied and applies them.
func (r *Registry) Refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	return r.refresh(ctx, !r.loaded)
}

// Sync brings the snapshot up to every destination change committed before it was called and
// returns the generation it then reflects (at least). It costs one small query when nothing
// changed. On error the snapshot is unchanged and may miss a committed change.
func (r *Registry) Sync(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeoutCause(ctx, readTimeout, errReadTimeout)
	gen, err := r.store.ConfigGeneration(rctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("read configuration generation: %w", err)
	}
	if err := r.Await(ctx, gen); err != nil {
		return 0, err
	}
	return gen, nil
}

// Await returns once the snapshot reflects generation gen, refreshing first if it does not yet:
// without touching the store when it does. Callers waiting together share one refresh. A
// generation the store has not reached (it was restored from an older backup, say) is not
// waited for: the snapshot is then as new as the store, and the first such generation is logged.
func (r *Registry) Await(ctx context.Context, gen int64) error {
	if r.applied.Load() >= gen {
		return nil
	}
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if r.applied.Load() >= gen {
		return nil // refreshed by a caller we waited for
	}
	if err := r.refresh(ctx, !r.loaded); err != nil {
		return err
	}
	if applied := r.applied.Load(); applied < gen && gen > r.ahead {
		r.ahead = gen
		r.log.Warn("asked for a destination configuration generation the store has not reached (was it restored from a backup?); serving the store's",
			zap.Int64("generation", gen), zap.Int64("storeGeneration", applied))
	}
	return nil
}

// Generation returns the configuration generation the snapshot reflects.
func (r *Registry) Generation() int64 { return r.applied.Load() }

// Run polls the store every interval (DefaultRefreshInterval when 0) until ctx ends, logging
// failures: one small query, and a refresh when the generation moved.
func (r *Registry) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if r.FullEvery > 0 && n%r.FullEvery == 0 {
			err = r.Load(ctx)
		} else {
			_, err = r.Sync(ctx)
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn("destination registry refresh failed; serving the last snapshot", zap.Error(err))
		}
	}
}

// refresh reads the generation, then the rows changed after the one applied (all when full),
// and applies them; the snapshot then reflects at least the generation read first, since every
// change numbered up to it had committed before the rows were read. Called with refreshMu held.
func (r *Registry) refresh(ctx context.Context, full bool) error {
	ctx, cancel := context.WithTimeoutCause(ctx, readTimeout, errReadTimeout)
	defer cancel()
	gen, err := r.store.ConfigGeneration(ctx)
	if err != nil {
		return fmt.Errorf("refresh destinations: %w", err)
	}
	var after int64
	if !full {
		after = r.applied.Load()
	}
	rows, err := r.store.DestinationsChangedAfter(ctx, after)
	if err != nil {
		return fmt.Errorf("refresh destinations: %w", err)
	}
	var updates []Destination
	r.mu.RLock()
	for _, d := range rows {
		if cur, ok := r.byID[d.ID]; ok && cur.Version == d.Version && cur.UpdatedAt.Equal(d.UpdatedAt) {
			continue
		}
		updates = append(updates, d)
	}
	r.mu.RUnlock()
	r.loaded = true
	if len(updates) == 0 {
		r.applied.Store(gen)
		return nil
	}

	var unreadable []string
	for i := range updates {
		d := &updates[i]
		d.Token = ""
		if d.DeletedAt == nil {
			tok, err := r.box.Open(d.ID, d.SealedToken)
			if err != nil {
				unreadable = append(unreadable, d.ID)
			} else {
				d.Token = tok
			}
		}
		d.SealedToken = nil
	}

	r.mu.Lock()
	for _, d := range updates {
		r.byID[d.ID] = d
	}
	routable := make([]Destination, 0, len(r.byID))
	for _, d := range r.byID {
		if d.Enabled && d.DeletedAt == nil {
			routable = append(routable, d)
		}
	}
	slices.SortFunc(routable, func(a, b Destination) int { return strings.Compare(a.ID, b.ID) })
	r.routable = routable
	r.version++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.applied.Store(gen) // after the snapshot: Await's callers must find it in place

	r.log.Debug("destination registry updated", zap.Int("changed", len(updates)), zap.Int("routable", len(routable)), zap.Int64("generation", gen))
	if len(unreadable) > 0 {
		// Logged here, not returned: the rest of the snapshot is good and must be served.
		// Deliveries to these destinations will fail authentication until the key is fixed.
		r.log.Error("destination tokens cannot be decrypted: is QGATE_SECRET_KEY the key they were stored with?",
			zap.Strings("destinationIds", unreadable), zap.Error(ErrSealed))
	}
	return nil
}

// Get returns a destination by ID, paused, disabled and deleted ones included.
func (r *Registry) Get(id string) (Destination, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.byID[id]
	return d, ok
}

// Routable returns the enabled, non-deleted destinations (paused ones included: they are
// routed, their deliveries wait), in ID order. The slice is a shared snapshot: do not modify it.
func (r *Registry) Routable() []Destination {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.routable
}

// Changed returns a channel that is closed at the next change of the snapshot. Take a new one
// after each close.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

// Version counts the snapshot's changes; it increases with each one.
func (r *Registry) Version() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}
