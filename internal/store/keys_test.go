package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/access"
)

var t0 = time.UnixMilli(1_700_000_000_000).UTC()

func sampleKey(id, name string, at time.Time) access.Key {
	return access.Key{ID: id, Name: name, Role: access.RoleSupport, Hash: []byte{0, 1, 2, 254, 255}, CreatedAt: at}
}

func testKeys(t *testing.T, db *DB) {
	ctx := context.Background()
	if keys, err := db.ListKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("empty list: %v %v", keys, err)
	}
	a := sampleKey("ka", "alpha", t0)
	b := sampleKey("kb", "beta", t0.Add(time.Second))
	b.Role = access.RoleAdmin
	for _, k := range []access.Key{a, b} {
		if err := db.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateKey(ctx, a); err == nil {
		t.Fatal("duplicate key ID accepted")
	}

	got, err := db.GetKey(ctx, "ka")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "ka" || got.Name != "alpha" || got.Role != access.RoleSupport || !bytes.Equal(got.Hash, a.Hash) ||
		!got.CreatedAt.Equal(t0) || got.RevokedAt != nil {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := db.GetKey(ctx, "missing"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}

	keys, err := db.ListKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != "kb" || keys[1].ID != "ka" || keys[0].Role != access.RoleAdmin {
		t.Fatalf("list, newest first: %+v %v", keys, err)
	}
	if keys[0].Hash != nil {
		t.Fatalf("list returns hashes: %+v", keys[0])
	}

	at := t0.Add(time.Hour)
	if err := db.RevokeKey(ctx, "ka", at); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeKey(ctx, "ka", at); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if err := db.RevokeKey(ctx, "missing", at); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoke missing: %v", err)
	}
	got, err = db.GetKey(ctx, "ka")
	if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
		t.Fatalf("revoked key: %+v %v", got, err)
	}
	keys, _ = db.ListKeys(ctx)
	if len(keys) != 2 || keys[1].RevokedAt == nil || keys[0].RevokedAt != nil {
		t.Fatalf("list after revoke: %+v", keys)
	}
}
