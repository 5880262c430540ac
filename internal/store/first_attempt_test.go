package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// testFirstAttemptOnRow: a delivery delivered at its first attempt keeps that attempt on its
// own row and writes no attempts row (issue #12: one row per delivery on the common path);
// every reader of attempts still sees it exactly as written. Retried deliveries keep one
// attempts row per attempt.
func testFirstAttemptOnRow(t *testing.T, db *DB) {
	ctx := context.Background()
	const upd = "upd_first"
	u := delivery.Update{UpdateID: upd, ProfileKey: "p-first", ReceivedAt: t0, RoutedAt: t0, Audiences: []string{"seg"}}
	id := func(dst string) string { return delivery.ID(upd, dst) }
	ev := func(dst string, st delivery.Status, a delivery.Attempt) delivery.Event {
		return delivery.Event{DeliveryID: id(dst), UpdateID: upd, DestinationID: dst, Status: st, At: a.At.Add(200 * time.Millisecond), Attempt: &a}
	}
	pending := func(dst string) delivery.Event {
		return delivery.Event{DeliveryID: id(dst), UpdateID: upd, DestinationID: dst, Status: delivery.Pending, At: t0}
	}
	apply(t, db, delivery.Batch{Updates: []delivery.Update{u}, Events: []delivery.Event{pending("dst_once"), pending("dst_retried"), pending("dst_twice")}})

	// dst_once: delivered at the first attempt.
	once := delivery.Attempt{N: 1, At: t0.Add(time.Second), StatusCode: 202, LatencyMS: 7.25, Outcome: "delivered", Reason: "accepted"}
	// dst_retried: a 503, then delivered at the second attempt.
	fail := delivery.Attempt{N: 1, At: t0.Add(time.Second), StatusCode: 503, LatencyMS: 30, Outcome: "retryable", Reason: "server_error", Error: "busy"}
	second := delivery.Attempt{N: 2, At: t0.Add(3 * time.Second), StatusCode: 200, LatencyMS: 11.5, Outcome: "delivered", Reason: "accepted"}
	// dst_twice: its outcome applied twice (a redelivered job after a crash): the first write stays.
	twice := delivery.Attempt{N: 1, At: t0.Add(2 * time.Second), StatusCode: 200, LatencyMS: 4, Outcome: "delivered", Reason: "accepted"}
	again := twice
	again.At, again.LatencyMS = t0.Add(5*time.Second), 99
	next := t0.Add(2 * time.Second)
	retry := ev("dst_retried", delivery.Retrying, fail)
	retry.NextAttemptAt = &next
	apply(t, db, delivery.Batch{Events: []delivery.Event{ev("dst_once", delivery.Delivered, once), retry, ev("dst_twice", delivery.Delivered, twice)}})
	apply(t, db, delivery.Batch{Events: []delivery.Event{ev("dst_retried", delivery.Delivered, second), ev("dst_twice", delivery.Delivered, again)}})

	rowsOf := func(dst string) int {
		t.Helper()
		var n int
		if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts WHERE delivery_id = $1`, id(dst)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rowsOf("dst_once"); n != 0 {
		t.Errorf("dst_once: %d attempts rows, want 0 (its attempt is on the delivery's row)", n)
	}
	if n := rowsOf("dst_twice"); n != 0 {
		t.Errorf("dst_twice: %d attempts rows, want 0", n)
	}
	if n := rowsOf("dst_retried"); n != 2 {
		t.Errorf("dst_retried: %d attempts rows, want 2", n)
	}

	for dst, want := range map[string][]delivery.Attempt{"dst_once": {once}, "dst_retried": {fail, second}, "dst_twice": {twice}} {
		rec, err := db.GetDelivery(ctx, id(dst))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != delivery.Delivered || !reflect.DeepEqual(rec.Attempts, want) {
			t.Errorf("%s: status %s, attempts %+v, want %+v", dst, rec.Status, rec.Attempts, want)
		}
	}
	_, recs, err := db.GetUpdate(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !reflect.DeepEqual(recs[0].Attempts, []delivery.Attempt{once}) {
		t.Errorf("GetUpdate: %+v", recs)
	}
	if r := getRow(t, db, id("dst_once")); r.attempts != 1 || r.updated != ms(once.At.Add(200*time.Millisecond)) {
		t.Errorf("dst_once row: %+v", r)
	}

	// Alerts: the last success and the attempt counts include attempts kept on rows.
	now := t0.Add(time.Minute)
	sig, err := db.AlertSignals(ctx, "dst_once", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !sig.LastSuccess.Equal(once.At) {
		t.Errorf("dst_once last success %v, want %v", sig.LastSuccess, once.At)
	}
	if sig, err := db.AlertSignals(ctx, "dst_retried", now, time.Hour); err != nil || !sig.LastSuccess.Equal(second.At) {
		t.Errorf("dst_retried last success %v (%v), want %v", sig.LastSuccess, err, second.At)
	}
	for dst, want := range map[string][2]int{"dst_once": {1, 0}, "dst_retried": {2, 1}, "dst_twice": {1, 0}} {
		total, failed, err := db.AttemptsSince(ctx, dst, t0)
		if err != nil || total != want[0] || failed != want[1] {
			t.Errorf("%s: AttemptsSince = %d, %d (%v), want %v", dst, total, failed, err, want)
		}
	}
	// An attempt before the window does not count.
	if total, _, err := db.AttemptsSince(ctx, "dst_once", once.At.Add(time.Millisecond)); err != nil || total != 0 {
		t.Errorf("dst_once: AttemptsSince after its attempt = %d (%v), want 0", total, err)
	}

	// Series: the attempt is in its bucket, with its latency.
	s, err := db.DestinationSeries(ctx, "dst_once", t0, t0.Add(10*time.Second), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Buckets[1]
	if b.Attempts["delivered"] != 1 || b.LatencyMs.Samples != 1 || b.LatencyMs.P50 == nil || *b.LatencyMs.P50 != once.LatencyMS {
		t.Errorf("series bucket 1: %+v", b)
	}
	for i, b := range s.Buckets {
		if i != 1 && len(b.Attempts) != 0 {
			t.Errorf("series bucket %d: %+v", i, b.Attempts)
		}
	}

	// Stats: the delivering attempt's latency, from the row or from the attempts row.
	for dst, want := range map[string]float64{"dst_once": once.LatencyMS, "dst_retried": second.LatencyMS} {
		st, err := db.DestinationStats(ctx, dst, t0)
		if err != nil {
			t.Fatal(err)
		}
		if st.AttemptLatency.Samples != 1 || st.AttemptLatency.P50 == nil || *st.AttemptLatency.P50 != want {
			t.Errorf("%s: attempt latency %+v, want %v", dst, st.AttemptLatency, want)
		}
	}
}
