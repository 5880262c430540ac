package destination

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// twoNodes returns this node's registry (loaded, not polling) and the service of another node
// on the same store, whose changes this registry learns of only from the store.
func twoNodes(t *testing.T) (reg *Registry, other *Service, st *memStore) {
	t.Helper()
	svc, st, reg := newService(t)
	o := *svc
	o.Registry = nil
	return reg, &o, st
}

// A change made through another node is in the snapshot as soon as Sync returns, whatever the
// poll interval: creation, pause, audiences, mappings, rotation and deletion.
func TestRegistrySyncAppliesOtherNodesChanges(t *testing.T) {
	ctx := context.Background()
	reg, other, _ := twoNodes(t)
	syncNow := func(what string) int64 {
		t.Helper()
		gen, err := reg.Sync(ctx)
		if err != nil {
			t.Fatalf("sync after %s: %v", what, err)
		}
		if reg.Generation() < gen {
			t.Fatalf("after %s: Sync answered generation %d, the registry reflects %d", what, gen, reg.Generation())
		}
		return gen
	}

	d, err := other.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Routable()) != 0 {
		t.Fatal("the registry learnt of the other node's change without reading the store: the test proves nothing")
	}
	g1 := syncNow("create")
	if r := reg.Routable(); len(r) != 1 || r[0].ID != d.ID || r[0].Token != "tok-0123456789" {
		t.Fatalf("routable after create: %+v", r)
	}

	steps := []struct {
		what   string
		change func() error
		check  func(Destination) bool
	}{
		{"pause", func() error { _, err := other.SetPaused(ctx, d.ID, true); return err },
			func(d Destination) bool { return d.Paused }},
		{"resume", func() error { _, err := other.SetPaused(ctx, d.ID, false); return err },
			func(d Destination) bool { return !d.Paused }},
		{"audiences", func() error {
			_, err := other.Update(ctx, d.ID, Request{Audiences: ptr([]string{"seg-new"})}, nil)
			return err
		}, func(d Destination) bool { return len(d.Audiences) == 1 && d.Audiences[0] == "seg-new" }},
		{"mappings", func() error {
			_, err := other.Update(ctx, d.ID, Request{AttributeMappings: ptr([]AttributeMapping{{Source: "person.name.lastName", Target: "surname"}})}, nil)
			return err
		}, func(d Destination) bool {
			return len(d.AttributeMappings) == 1 && d.AttributeMappings[0].Target == "surname"
		}},
		{"rotation", func() error {
			_, err := other.Update(ctx, d.ID, Request{APIToken: ptr("rotated-token-0002")}, nil)
			return err
		}, func(d Destination) bool { return d.Token == "rotated-token-0002" }},
		{"delete", func() error { return other.Delete(ctx, d.ID) },
			func(d Destination) bool { return d.DeletedAt != nil && d.Token == "" }},
	}
	prev := g1
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got, _ := reg.Get(d.ID); s.check(got) {
			t.Fatalf("%s: the registry had it before syncing: the test proves nothing", s.what)
		}
		gen := syncNow(s.what)
		if gen <= prev {
			t.Fatalf("%s: generation %d did not move past %d", s.what, gen, prev)
		}
		prev = gen
		if got, _ := reg.Get(d.ID); !s.check(got) {
			t.Fatalf("%s: not in the registry after Sync: %+v", s.what, got)
		}
	}
	if len(reg.Routable()) != 0 {
		t.Fatal("deleted destination still routable")
	}
}

// Sync with nothing changed reads the generation only; a change costs one read of the rows
// changed since.
func TestRegistrySyncReadsOnlyTheGenerationWhenNothingChanged(t *testing.T) {
	ctx := context.Background()
	reg, other, st := twoNodes(t)
	g0, r0 := st.reads()
	for range 5 {
		if _, err := reg.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if g, r := st.reads(); g-g0 != 5 || r != r0 {
		t.Fatalf("5 idle syncs: %d generation reads, %d row reads; want 5 and 0", g-g0, r-r0)
	}
	if _, err := other.Create(ctx, validRequest()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := st.reads(); r-r0 != 1 {
		t.Fatalf("sync after a change: %d row reads, want 1", r-r0)
	}
}

// Await of a generation already applied touches nothing; of a newer one it refreshes, once for
// all the callers waiting together.
func TestRegistryAwaitRefreshesOnceForANewerGeneration(t *testing.T) {
	ctx := context.Background()
	reg, other, st := twoNodes(t)
	g0, r0 := st.reads()
	if err := reg.Await(ctx, reg.Generation()); err != nil {
		t.Fatal(err)
	}
	if g, r := st.reads(); g != g0 || r != r0 {
		t.Fatal("Await of the applied generation read the store")
	}

	d, err := other.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	target, _ := st.ConfigGeneration(ctx) // what a router that saw the change stamps on its jobs
	g0, r0 = st.reads()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if err := reg.Await(ctx, target); err != nil {
				errs <- err
				return
			}
			if _, ok := reg.Get(d.ID); !ok {
				errs <- errors.New("Await returned before the destination was in the snapshot")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if g, r := st.reads(); g-g0 != 1 || r-r0 != 1 {
		t.Fatalf("20 concurrent Awaits: %d generation reads, %d row reads; want one refresh (1, 1)", g-g0, r-r0)
	}
}

// A failing store fails Await and Sync (the caller retries) and leaves the snapshot as it was;
// once the store answers, the change is applied.
func TestRegistryAwaitFailsWhileTheStoreFails(t *testing.T) {
	ctx := context.Background()
	reg, other, st := twoNodes(t)
	d, err := other.Create(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	target, _ := st.ConfigGeneration(ctx)
	st.fail(errors.New("database down"))
	if err := reg.Await(ctx, target); err == nil {
		t.Fatal("Await hid the store error")
	}
	if _, err := reg.Sync(ctx); err == nil {
		t.Fatal("Sync hid the store error")
	}
	if reg.Generation() >= target {
		t.Fatalf("generation %d recorded as applied without reading it", reg.Generation())
	}
	st.fail(nil)
	if err := reg.Await(ctx, target); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(d.ID); !ok {
		t.Fatal("not applied after the store came back")
	}
}

// A job stamped with a generation the store has not reached (a store restored from an older
// backup) is not waited for: Await refreshes, says so once, and returns.
func TestRegistryAwaitGenerationAheadOfTheStore(t *testing.T) {
	ctx := context.Background()
	core, logs := observer.New(zap.WarnLevel)
	box, err := NewBox(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	reg := NewRegistry(st, box, zap.New(core))
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := reg.Await(ctx, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.FilterMessageSnippet("has not reached").Len(); n != 1 {
		t.Fatalf("%d warnings about a generation ahead of the store, want 1", n)
	}
	if reg.Generation() != 0 {
		t.Fatalf("generation %d recorded as applied; the store is at 0", reg.Generation())
	}
}

// The poll (the fallback) reads only the generation while nothing changes, and applies a
// change made elsewhere at its next tick.
func TestRegistryRunPollsTheGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		reg, other, st := twoNodes(t)
		reg.FullEvery = 0
		g0, r0 := st.reads()
		go reg.Run(ctx, time.Second)
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if g, r := st.reads(); g-g0 != 10 || r != r0 {
			t.Fatalf("10 idle polls: %d generation reads, %d row reads; want 10 and 0", g-g0, r-r0)
		}
		d, err := other.Create(ctx, validRequest())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if _, ok := reg.Get(d.ID); !ok {
			t.Fatal("the poll did not apply a destination created elsewhere")
		}
	})
}

// A store that does not answer fails Sync and Await after 5 s instead of holding their callers
// (and everyone waiting behind them) indefinitely.
func TestRegistryReadsGiveUpAfterFiveSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		reg, _, st := twoNodes(t)
		st.mu.Lock()
		st.hang = true
		st.mu.Unlock()
		start := time.Now()
		if _, err := reg.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sync on a hung store: %v, want a deadline error", err)
		}
		if err := reg.Await(ctx, reg.Generation()+1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Await on a hung store: %v, want a deadline error", err)
		}
		if took := time.Since(start); took != 10*time.Second {
			t.Fatalf("two reads took %v, want 5 s each", took)
		}
	})
}
