package destination

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Registry is this node's in-memory snapshot of every destination, with tokens decrypted, for
// the router and the dispatcher. It is safe for concurrent use. It follows the store by polling
// for rows changed since the last refresh (Run), and at once after a change made through this
// node (Refresh).
type Registry struct {
	store Store
	box   *Box
	log   *zap.Logger

	// Lookback re-reads rows updated this long before the newest one seen, so a change written
	// by a node whose clock is a little behind, or committed late, is not missed.
	Lookback time.Duration
	// FullEvery makes every FullEvery-th Run refresh a full reload (0: never).
	FullEvery int

	refreshMu sync.Mutex // one refresh at a time
	newest    time.Time  // newest updated_at seen
	loaded    bool

	mu       sync.RWMutex
	byID     map[string]Destination
	routable []Destination
	changed  chan struct{}
	version  uint64
}

// DefaultRefreshInterval is how often Run polls the store.
const DefaultRefreshInterval = time.Second

// NewRegistry returns an empty registry; call Load before use.
func NewRegistry(store Store, box *Box, log *zap.Logger) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{
		store: store, box: box, log: log,
		Lookback:  30 * time.Second,
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

// Refresh reads the destinations changed since the last refresh and applies them.
func (r *Registry) Refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	return r.refresh(ctx, !r.loaded)
}

// Run refreshes every interval (DefaultRefreshInterval when 0) until ctx ends, logging failures.
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
			err = r.Refresh(ctx)
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn("destination registry refresh failed; serving the last snapshot", zap.Error(err))
		}
	}
}

func (r *Registry) refresh(ctx context.Context, full bool) error {
	var since time.Time
	if !full {
		since = r.newest.Add(-r.Lookback)
	}
	rows, err := r.store.DestinationsChangedSince(ctx, since)
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
	for _, d := range rows {
		if d.UpdatedAt.After(r.newest) {
			r.newest = d.UpdatedAt
		}
	}
	r.loaded = true
	if len(updates) == 0 {
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

	r.log.Debug("destination registry updated", zap.Int("changed", len(updates)), zap.Int("routable", len(routable)))
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
