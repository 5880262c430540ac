package destination

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store for the package's tests. It numbers changes with a
// generation as the real store does, counts reads, and fails every read while err is set.
type memStore struct {
	mu       sync.Mutex
	rows     map[string]Destination
	gen      int64
	err      error
	hang     bool // ConfigGeneration blocks until its context ends
	genReads int  // ConfigGeneration calls
	rowReads int  // DestinationsChangedAfter calls
}

func (m *memStore) ConfigGeneration(ctx context.Context) (int64, error) {
	m.mu.Lock()
	if m.hang {
		m.mu.Unlock()
		<-ctx.Done()
		return 0, ctx.Err()
	}
	defer m.mu.Unlock()
	m.genReads++
	if m.err != nil {
		return 0, m.err
	}
	return m.gen, nil
}

func (m *memStore) reads() (gen, rows int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.genReads, m.rowReads
}

func (m *memStore) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

func newMemStore() *memStore { return &memStore{rows: map[string]Destination{}} }

func (m *memStore) CreateDestination(_ context.Context, d Destination) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.rows {
		if o.DeletedAt == nil && o.Name == d.Name {
			return ErrNameTaken
		}
	}
	m.gen++
	d.Generation = m.gen
	m.rows[d.ID] = d
	return nil
}

func (m *memStore) GetDestination(_ context.Context, id string, includeDeleted bool) (Destination, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.rows[id]
	if !ok || (d.DeletedAt != nil && !includeDeleted) {
		return Destination{}, ErrNotFound
	}
	return d, nil
}

func (m *memStore) ListDestinations(_ context.Context, after string, limit int) ([]Destination, error) {
	all, _ := m.DestinationsChangedAfter(context.Background(), 0)
	var out []Destination
	for _, d := range all {
		if d.DeletedAt == nil && d.ID > after && len(out) < limit {
			out = append(out, d)
		}
	}
	return out, nil
}

func (m *memStore) UpdateDestination(_ context.Context, d Destination, expect int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.rows[d.ID]
	if !ok || cur.DeletedAt != nil {
		return ErrNotFound
	}
	if cur.Version != expect {
		return ErrVersionConflict
	}
	m.gen++
	d.Generation = m.gen
	m.rows[d.ID] = d
	return nil
}

func (m *memStore) DeleteDestination(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.rows[id]
	if !ok || d.DeletedAt != nil {
		return ErrNotFound
	}
	m.gen++
	d.DeletedAt, d.UpdatedAt, d.Version, d.Generation = &at, at, d.Version+1, m.gen
	m.rows[id] = d
	return nil
}

func (m *memStore) DestinationsChangedAfter(_ context.Context, gen int64) ([]Destination, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rowReads++
	if m.err != nil {
		return nil, m.err
	}
	var out []Destination
	for _, d := range m.rows {
		if d.Generation > gen {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Destination) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func newService(t *testing.T) (*Service, *memStore, *Registry) {
	t.Helper()
	box, err := NewBox(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	reg := NewRegistry(st, box, nil)
	if err := reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &Service{Store: st, Box: box, Policy: testPolicy, Registry: reg, Now: c.now}, st, reg
}

func changedSoon(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("Changed() was not closed by the change")
	}
}

func TestRegistryFollowsChanges(t *testing.T) {
	ctx := context.Background()
	svc, _, reg := newService(t)

	ch := reg.Changed()
	d, err := svc.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	changedSoon(t, ch)
	got, ok := reg.Get(d.ID)
	if !ok || got.Token != "tok-0123456789" || got.SealedToken != nil || got.Version != 1 {
		t.Fatalf("registry after create: %+v %v", got, ok)
	}
	if r := reg.Routable(); len(r) != 1 || r[0].ID != d.ID {
		t.Fatalf("routable: %+v", r)
	}

	// Pause: still routable (deliveries wait), registry shows it paused.
	ch = reg.Changed()
	if _, err := svc.SetPaused(ctx, d.ID, true); err != nil {
		t.Fatal(err)
	}
	changedSoon(t, ch)
	if got, _ := reg.Get(d.ID); !got.Paused || got.Version != 2 {
		t.Fatalf("after pause: %+v", got)
	}
	// Pausing again changes nothing.
	v := reg.Version()
	if p, err := svc.SetPaused(ctx, d.ID, true); err != nil || p.Version != 2 {
		t.Fatalf("pause twice: %+v %v", p, err)
	}
	if reg.Version() != v {
		t.Fatal("an idempotent pause changed the registry")
	}

	// Rotate the token.
	ch = reg.Changed()
	if _, err := svc.Update(ctx, d.ID, Request{APIToken: ptr("rotated-token-WXYZ")}, nil); err != nil {
		t.Fatal(err)
	}
	changedSoon(t, ch)
	if got, _ := reg.Get(d.ID); got.Token != "rotated-token-WXYZ" || got.TokenLast4 != "WXYZ" || got.Version != 3 {
		t.Fatalf("after rotate: %+v", got)
	}

	// Disable: out of routing, still known.
	before := reg.Routable()
	if _, err := svc.Update(ctx, d.ID, Request{Enabled: ptr(false)}, nil); err != nil {
		t.Fatal(err)
	}
	if len(reg.Routable()) != 0 || len(before) != 1 {
		t.Fatalf("disabled destination routable; earlier snapshot modified: %d", len(before))
	}
	if _, err := svc.Update(ctx, d.ID, Request{Enabled: ptr(true)}, nil); err != nil {
		t.Fatal(err)
	}

	// Delete: not routable, Get still answers (for closing in-flight deliveries), token dropped.
	ch = reg.Changed()
	if err := svc.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	changedSoon(t, ch)
	got, ok = reg.Get(d.ID)
	if !ok || got.DeletedAt == nil || got.Token != "" {
		t.Fatalf("after delete: %+v %v", got, ok)
	}
	if len(reg.Routable()) != 0 {
		t.Fatal("deleted destination routable")
	}
}

// A change written by another node reaches this one through Run.
func TestRegistryRunPicksUpOtherNodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, st, reg := newService(t)
	other := *svc
	other.Registry = nil // the other node does not share our registry
	go reg.Run(ctx, 10*time.Millisecond)

	ch := reg.Changed()
	d, err := other.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not pick up a destination created elsewhere")
	}
	if _, ok := reg.Get(d.ID); !ok {
		t.Fatal("not in registry")
	}

	// A failing store keeps the last snapshot.
	st.fail(errors.New("database down"))
	if err := reg.Refresh(ctx); err == nil {
		t.Fatal("Refresh hid the store error")
	}
	if len(reg.Routable()) != 1 {
		t.Fatal("snapshot lost on a failed refresh")
	}
}

func TestRegistryUnreadableToken(t *testing.T) {
	ctx := context.Background()
	svc, st, _ := newService(t)
	d, err := svc.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	otherBox, _ := NewBox(newKey(t))
	reg := NewRegistry(st, otherBox, nil)
	if err := reg.Load(ctx); err != nil {
		t.Fatalf("one unreadable token must not fail the load: %v", err)
	}
	if got, ok := reg.Get(d.ID); !ok || got.Token != "" {
		t.Fatalf("%+v", got)
	}
}

func TestServiceVersioning(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newService(t)
	d, err := svc.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, validRequest()); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("name clash: %v", err)
	}
	stale := int64(0)
	if _, err := svc.Update(ctx, d.ID, Request{Description: ptr("x")}, &stale); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale version: %v", err)
	}
	one := int64(1)
	u, err := svc.Update(ctx, d.ID, Request{Description: ptr("x")}, &one)
	if err != nil || u.Version != 2 || !u.UpdatedAt.After(d.UpdatedAt) {
		t.Fatalf("update: %+v %v", u, err)
	}
	// No change, no new version.
	same, err := svc.Update(ctx, d.ID, Request{Description: ptr("x")}, nil)
	if err != nil || same.Version != 2 {
		t.Fatalf("no-op update: %+v %v", same, err)
	}
	if _, err := svc.Update(ctx, "dst_nope", Request{}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
