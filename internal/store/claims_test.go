package store

import (
	"context"
	"testing"
	"time"
)

// testClaims: one node holds a destination's claim until it expires; another node's ask reaches
// the holder at its next renewal, only an ask made while wanting it counts, and a new holder
// starts with no ask.
func testClaims(t *testing.T, db *DB) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_800_000_000_000).UTC()
	const ttl = 15 * time.Second
	claim := func(node string, at time.Time, want bool) (bool, time.Time) {
		t.Helper()
		ok, wanted, err := db.Claim(ctx, "dst_c", node, at, ttl, want)
		if err != nil {
			t.Fatal(err)
		}
		return ok, wanted
	}
	if ok, wanted := claim("node-a", t0, true); !ok || !wanted.IsZero() {
		t.Fatalf("a free claim: held %v, asked at %v; want held, no ask", ok, wanted)
	}
	if ok, _ := claim("node-b", t0.Add(time.Second), false); ok {
		t.Fatal("node-b took a claim node-a holds")
	}
	if _, wanted := claim("node-a", t0.Add(2*time.Second), false); !wanted.IsZero() {
		t.Fatalf("an attempt without want was recorded as an ask (%v)", wanted)
	}
	if ok, _ := claim("node-b", t0.Add(3*time.Second), true); ok {
		t.Fatal("node-b took a claim node-a holds")
	}
	if ok, wanted := claim("node-a", t0.Add(5*time.Second), false); !ok || !wanted.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("renewal: held %v, asked at %v; want held, asked at %v", ok, wanted, t0.Add(3*time.Second))
	}
	// node-a stops renewing: node-b takes the expired claim, with no ask of its own to hear.
	if ok, wanted := claim("node-b", t0.Add(5*time.Second+ttl+time.Millisecond), true); !ok || !wanted.IsZero() {
		t.Fatalf("an expired claim: held %v, asked at %v; want held by node-b, no ask", ok, wanted)
	}
	if err := db.Release(ctx, "dst_c", "node-a"); err != nil { // not node-a's any more: no effect
		t.Fatal(err)
	}
	if ok, _ := claim("node-a", t0.Add(25*time.Second), false); ok {
		t.Fatal("node-a's release removed node-b's claim")
	}
	if err := db.Release(ctx, "dst_c", "node-b"); err != nil {
		t.Fatal(err)
	}
	if ok, wanted := claim("node-a", t0.Add(26*time.Second), false); !ok || !wanted.IsZero() {
		t.Fatalf("a released claim: held %v, asked at %v; want held, no ask", ok, wanted)
	}
}
