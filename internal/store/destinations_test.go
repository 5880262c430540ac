package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/destination"
)

func sampleDestination(id, name string, at time.Time) destination.Destination {
	return destination.Destination{
		ID: id, Name: name, Description: "d", URL: "https://x.qualtrics.com/e", Username: "u",
		TokenLast4: "WXYZ", SealedToken: []byte{1, 2, 3, 0, 255},
		IdentityMappings:   []destination.IdentityMapping{{Source: "Email", Target: "email"}},
		AttributeMappings:  []destination.AttributeMapping{{Source: "person.name.firstName", Target: "firstName"}},
		Audiences:          []string{"seg-1"},
		RateLimitPerMinute: 3000, Enabled: true, Version: 1, CreatedAt: at, UpdatedAt: at,
	}
}

// testDestinations runs the destination store suite on db (SQLite or PostgreSQL).
func testDestinations(t *testing.T, db *DB) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000).UTC()

	a := sampleDestination("dst_a", "alpha", t0)
	if err := db.CreateDestination(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetDestination(ctx, "dst_a", false)
	if err != nil {
		t.Fatal(err)
	}
	got.DeletedAt = nil
	if got.Name != a.Name || got.URL != a.URL || string(got.SealedToken) != string(a.SealedToken) ||
		got.TokenLast4 != "WXYZ" || got.IdentityMappings[0] != a.IdentityMappings[0] ||
		got.AttributeMappings[0] != a.AttributeMappings[0] || got.Audiences[0] != "seg-1" ||
		got.RateLimitPerMinute != 3000 || !got.Enabled || got.Paused || got.Version != 1 ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) || got.Token != "" {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := db.GetDestination(ctx, "dst_missing", true); !errors.Is(err, destination.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}

	// Name unique among live destinations.
	if err := db.CreateDestination(ctx, sampleDestination("dst_b", "alpha", t0)); !errors.Is(err, destination.ErrNameTaken) {
		t.Fatalf("name clash: %v", err)
	}
	for i, id := range []string{"dst_b", "dst_c", "dst_d"} {
		if err := db.CreateDestination(ctx, sampleDestination(id, "n-"+id, t0.Add(time.Duration(i+1)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}

	// Optimistic update.
	b, _ := db.GetDestination(ctx, "dst_b", false)
	b.Paused, b.Version, b.UpdatedAt = true, 2, t0.Add(time.Second)
	b.AttributeMappings = []destination.AttributeMapping{}
	if err := db.UpdateDestination(ctx, b, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateDestination(ctx, b, 1); !errors.Is(err, destination.ErrVersionConflict) {
		t.Fatalf("stale update: %v", err)
	}
	b.Name, b.Version = "alpha", 3
	if err := db.UpdateDestination(ctx, b, 2); !errors.Is(err, destination.ErrNameTaken) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if err := db.UpdateDestination(ctx, sampleDestination("dst_zz", "z", t0), 1); !errors.Is(err, destination.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	b, _ = db.GetDestination(ctx, "dst_b", false)
	if !b.Paused || b.Version != 2 || b.AttributeMappings == nil || len(b.AttributeMappings) != 0 {
		t.Fatalf("after update: %+v", b)
	}

	// Pagination in ID order.
	page, err := db.ListDestinations(ctx, "", 2)
	if err != nil || len(page) != 2 || page[0].ID != "dst_a" || page[1].ID != "dst_b" {
		t.Fatalf("page 1: %v %+v", err, page)
	}
	page, _ = db.ListDestinations(ctx, "dst_b", 2)
	if len(page) != 2 || page[0].ID != "dst_c" || page[1].ID != "dst_d" {
		t.Fatalf("page 2: %+v", page)
	}

	// Soft delete frees the name and hides the row, but not from the registry's query.
	del := t0.Add(2 * time.Second)
	if err := db.DeleteDestination(ctx, "dst_a", del); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDestination(ctx, "dst_a", del); !errors.Is(err, destination.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := db.GetDestination(ctx, "dst_a", false); !errors.Is(err, destination.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	gone, err := db.GetDestination(ctx, "dst_a", true)
	if err != nil || gone.DeletedAt == nil || !gone.DeletedAt.Equal(del) || gone.Version != 2 || !gone.UpdatedAt.Equal(del) {
		t.Fatalf("get deleted with includeDeleted: %+v %v", gone, err)
	}
	if err := db.UpdateDestination(ctx, gone, 2); !errors.Is(err, destination.ErrNotFound) {
		t.Fatalf("update deleted: %v", err)
	}
	if err := db.CreateDestination(ctx, sampleDestination("dst_e", "alpha", del)); err != nil {
		t.Fatalf("reuse name after delete: %v", err)
	}
	page, _ = db.ListDestinations(ctx, "", 10)
	if len(page) != 4 || page[0].ID != "dst_b" {
		t.Fatalf("list after delete: %+v", page)
	}

	// Changed after a generation: deleted ones included.
	all, err := db.DestinationsChangedAfter(ctx, 0)
	if err != nil || len(all) != 5 {
		t.Fatalf("all: %v %d", err, len(all))
	}
	changed, err := db.DestinationsChangedAfter(ctx, b.Generation)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range changed {
		ids = append(ids, d.ID)
	}
	if len(ids) != 2 || ids[0] != "dst_a" || ids[1] != "dst_e" {
		t.Fatalf("changed after the update of dst_b: %v", ids)
	}
}

// TestDestinationGeneration: every destination change increments the configuration generation
// in its own transaction and stamps its row; a change that fails leaves it alone; concurrent
// changes get distinct generations, and once a generation is read every change numbered up to
// it is visible (SQLite and PostgreSQL).
func TestDestinationGeneration(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				requirePostgres(t)
			}
			testDestinationGeneration(t, b.open(t))
		})
	}
}

func testDestinationGeneration(t *testing.T, db *DB) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	gen := func() int64 {
		t.Helper()
		g, err := db.ConfigGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	rowGen := func(id string) int64 {
		t.Helper()
		d, err := db.GetDestination(ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		return d.Generation
	}
	g := gen()
	if g != 1 {
		t.Fatalf("a fresh store is at generation %d, want 1", g)
	}
	step := func(what string, err error, id string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g++
		if got := gen(); got != g {
			t.Fatalf("%s: generation %d, want %d", what, got, g)
		}
		if got := rowGen(id); got != g {
			t.Fatalf("%s: row stamped %d, want %d", what, got, g)
		}
	}
	unchanged := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if got := gen(); got != g {
			t.Fatalf("%s failed but moved the generation to %d (was %d)", what, got, g)
		}
	}

	a := sampleDestination("dst_a", "alpha", t0)
	step("create", db.CreateDestination(ctx, a), "dst_a")
	unchanged("create with a taken name", db.CreateDestination(ctx, sampleDestination("dst_b", "alpha", t0)), destination.ErrNameTaken)
	a.Paused, a.Version = true, 2
	step("update", db.UpdateDestination(ctx, a, 1), "dst_a")
	unchanged("stale update", db.UpdateDestination(ctx, a, 1), destination.ErrVersionConflict)
	unchanged("update of a missing destination", db.UpdateDestination(ctx, sampleDestination("dst_zz", "z", t0), 1), destination.ErrNotFound)
	step("delete", db.DeleteDestination(ctx, "dst_a", t0.Add(time.Second)), "dst_a")
	unchanged("delete twice", db.DeleteDestination(ctx, "dst_a", t0), destination.ErrNotFound)

	// Concurrent changes: distinct generations, none lost, and a reader that sees generation g
	// finds every row numbered up to g.
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	stop := make(chan struct{})
	var readerErr error
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			seen, err := db.ConfigGeneration(ctx)
			if err != nil {
				readerErr = err
				return
			}
			rows, err := db.DestinationsChangedAfter(ctx, 0)
			if err != nil {
				readerErr = err
				return
			}
			have := map[int64]bool{}
			for _, d := range rows {
				have[d.Generation] = true
			}
			for want := g + 1; want <= seen; want++ {
				if !have[want] {
					readerErr = fmt.Errorf("read generation %d but no row carries %d", seen, want)
					return
				}
			}
		}
	}()
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("dst_c%02d", i)
			errs <- db.CreateDestination(ctx, sampleDestination(id, "n-"+id, t0))
		})
	}
	wg.Wait()
	close(stop)
	<-readerDone
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	rows, err := db.DestinationsChangedAfter(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	stamps := map[int64]string{}
	for _, d := range rows {
		if other, dup := stamps[d.Generation]; dup {
			t.Fatalf("%s and %s both stamped %d", other, d.ID, d.Generation)
		}
		stamps[d.Generation] = d.ID
	}
	if len(rows) != n || gen() != g+n {
		t.Fatalf("%d concurrent creates: %d rows after generation %d, store at %d; want %d rows, %d", n, len(rows), g, gen(), n, g+n)
	}
}
