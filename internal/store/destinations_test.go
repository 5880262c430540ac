package store

import (
	"context"
	"errors"
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

	// Changed since: deleted ones included.
	all, err := db.DestinationsChangedSince(ctx, time.Time{})
	if err != nil || len(all) != 5 {
		t.Fatalf("all: %v %d", err, len(all))
	}
	changed, err := db.DestinationsChangedSince(ctx, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range changed {
		ids = append(ids, d.ID)
	}
	if len(ids) != 3 || ids[0] != "dst_a" || ids[1] != "dst_b" || ids[2] != "dst_e" {
		t.Fatalf("changed since: %v", ids)
	}
}
