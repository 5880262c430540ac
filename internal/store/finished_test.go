package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/qgate/qgate/internal/delivery"
)

// Finished reports exactly the deliveries in a terminal status among those asked for, in one
// call of any length, and ignores unknown IDs.
func testFinished(t *testing.T, db *DB) {
	ctx := context.Background()
	var b delivery.Batch
	want := map[string]bool{}
	var ask []string
	statuses := []delivery.Status{delivery.Pending, delivery.Retrying, delivery.Delivered, delivery.DeadLettered, delivery.Excluded}
	for i := range 300 {
		id := fmt.Sprintf("dlv_f%03d", i)
		st := statuses[i%len(statuses)]
		b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: "upd_f", DestinationID: "dst_f", Status: st, At: t0})
		if st.Terminal() {
			want[id] = true
		}
		ask = append(ask, id)
	}
	apply(t, db, b)
	ask = append(ask, "dlv_unknown", `dlv_"quoted"`)
	for _, n := range []int{1, 2, 5, 100, len(ask)} {
		got, err := db.Finished(ctx, ask[:n])
		if err != nil {
			t.Fatal(err)
		}
		exp := map[string]bool{}
		for _, id := range ask[:n] {
			if want[id] {
				exp[id] = true
			}
		}
		if !maps.Equal(got, exp) {
			t.Errorf("Finished(%d IDs) = %v, want %v", n, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(exp)))
		}
	}
	if got, err := db.Finished(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Finished(nil) = %v, %v", got, err)
	}
}
