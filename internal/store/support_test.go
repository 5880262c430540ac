package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// seedSupport stores, for dst_s: four updates of two profiles received at t0+i minutes, their
// deliveries ending delivered (2), dead_lettered (1, with payload) and excluded (1); plus one
// delivered delivery of another destination. It returns the delivery IDs in update order.
func seedSupport(t *testing.T, db *DB) []string {
	t.Helper()
	var ids []string
	var b delivery.Batch
	for i, end := range []delivery.Status{delivery.Delivered, delivery.DeadLettered, delivery.Excluded, delivery.Delivered} {
		upd := "upd_s" + string(rune('a'+i))
		rec := t0.Add(time.Duration(i) * time.Minute)
		profile, email := "p-1", "one@example.com"
		if i%2 == 1 {
			profile, email = "p-2", "two@example.com"
		}
		b.Updates = append(b.Updates, delivery.Update{UpdateID: upd, ProfileKey: profile, ReceivedAt: rec, RoutedAt: rec, Audiences: []string{"seg"}})
		id := delivery.ID(upd, "dst_s")
		ids = append(ids, id)
		base := delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: "dst_s", EmailHash: delivery.HashIdentity(email)}
		pending := base
		pending.Status, pending.At = delivery.Pending, rec
		b.Events = append(b.Events, pending)
		done := base
		done.Status, done.At = end, rec.Add(time.Duration(10*(i+1))*time.Millisecond)
		switch end {
		case delivery.Delivered:
			done.Attempt = &delivery.Attempt{N: 1, At: done.At, StatusCode: 200, LatencyMS: float64(5 * (i + 1)), Outcome: "delivered", Reason: "accepted"}
		case delivery.DeadLettered:
			done.Reason, done.Payload = "client_error", []byte(`{"n":1}`)
			done.Attempt = &delivery.Attempt{N: 1, At: done.At, StatusCode: 400, LatencyMS: 3, Outcome: "permanent", Reason: "client_error", Error: "bad"}
		case delivery.Excluded:
			done.Reason = delivery.ReasonMissingIdentity
		}
		b.Events = append(b.Events, done)
	}
	other := delivery.Event{DeliveryID: delivery.ID("upd_sa", "dst_o"), UpdateID: "upd_sa", DestinationID: "dst_o", Status: delivery.Delivered, At: t0,
		Attempt: &delivery.Attempt{N: 1, At: t0, StatusCode: 200, LatencyMS: 1, Outcome: "delivered"}}
	b.Events = append(b.Events, other)
	apply(t, db, b)
	return ids
}

func testDestinationStats(t *testing.T, db *DB) {
	ctx := context.Background()
	seedSupport(t, db)
	st, err := db.DestinationStats(ctx, "dst_s", t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Received != 4 || st.ByStatus[delivery.Delivered] != 2 || st.ByStatus[delivery.DeadLettered] != 1 || st.ByStatus[delivery.Excluded] != 1 || st.ByStatus[delivery.Retrying] != 0 {
		t.Fatalf("counts: %+v", st)
	}
	if st.ExcludedByReason[delivery.ReasonMissingIdentity] != 1 || st.DeadLetteredByReason["client_error"] != 1 {
		t.Fatalf("reasons: %+v %+v", st.ExcludedByReason, st.DeadLetteredByReason)
	}
	// Delivered: update 0 (5 ms POST, 10 ms end to end) and update 3 (20 ms, 40 ms).
	if st.AttemptLatency.Samples != 2 || *st.AttemptLatency.P50 != 5 || *st.AttemptLatency.P99 != 20 || *st.EndToEnd.P50 != 10 || *st.EndToEnd.P99 != 40 {
		t.Fatalf("latency: %+v %+v", st.AttemptLatency, st.EndToEnd)
	}
	if st.Backlog != 0 || st.Parked != 0 {
		t.Fatalf("backlog %d parked %d", st.Backlog, st.Parked)
	}
	// The window counts only deliveries routed in it.
	st, err = db.DestinationStats(ctx, "dst_s", t0.Add(150*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Received != 1 || st.ByStatus[delivery.Delivered] != 1 || st.AttemptLatency.Samples != 1 {
		t.Fatalf("window: %+v", st)
	}
	st, err = db.DestinationStats(ctx, "dst_none", t0.Add(-time.Hour))
	if err != nil || st.Received != 0 || st.AttemptLatency.P50 != nil {
		t.Fatalf("empty destination: %+v %v", st, err)
	}
}

func testSearchDeliveries(t *testing.T, db *DB) {
	ctx := context.Background()
	ids := seedSupport(t, db)
	search := func(q delivery.Query) ([]string, string) {
		t.Helper()
		recs, next, err := db.SearchDeliveries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.DeliveryID)
		}
		return out, next
	}
	// Newest change first.
	if got, next := search(delivery.Query{DestinationID: "dst_s", Limit: 10}); !slices.Equal(got, []string{ids[3], ids[2], ids[1], ids[0]}) || next != "" {
		t.Fatalf("by destination: %v next %q", got, next)
	}
	if got, _ := search(delivery.Query{IdentityHash: delivery.HashIdentity("TWO@example.com "), Limit: 10}); !slices.Equal(got, []string{ids[3], ids[1]}) {
		t.Fatalf("by identity: %v", got)
	}
	if got, _ := search(delivery.Query{Status: delivery.DeadLettered, Limit: 10}); !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("by status: %v", got)
	}
	if got, _ := search(delivery.Query{DestinationID: "dst_s", Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute), Limit: 10}); !slices.Equal(got, []string{ids[2], ids[1]}) {
		t.Fatalf("by time: %v", got)
	}
	// Paging walks every row once.
	var all []string
	cursor := ""
	for range 10 {
		got, next := search(delivery.Query{DestinationID: "dst_s", Limit: 3, Cursor: cursor})
		all = append(all, got...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if !slices.Equal(all, []string{ids[3], ids[2], ids[1], ids[0]}) {
		t.Fatalf("paging: %v", all)
	}
	recs, _, err := db.SearchDeliveries(ctx, delivery.Query{Status: delivery.DeadLettered, Limit: 1})
	if err != nil || len(recs[0].Attempts) != 1 || recs[0].Attempts[0].Error != "bad" {
		t.Fatalf("attempts with the results: %+v %v", recs, err)
	}
	if _, _, err := db.SearchDeliveries(ctx, delivery.Query{Cursor: "bm90LWEtY3Vyc29y", Limit: 1}); !errors.Is(err, fault.Invalid) {
		t.Fatalf("foreign cursor: %v", err)
	}
}

func testReplayDeadLetters(t *testing.T, db *DB) {
	ctx := context.Background()
	ids := seedSupport(t, db)
	now := t0.Add(time.Hour)
	// p-2's newer update (upd_sd) has been delivered to dst_s: the dead letter is skipped
	// unless forced, and stays dead-lettered.
	got, err := db.ReplayDeadLetters(ctx, delivery.ReplayFilter{DeliveryIDs: []string{ids[0], ids[1]}, Limit: 2}, now)
	if err != nil || len(got.Replayed) != 0 ||
		!slices.Equal(got.Skipped, []delivery.Skipped{{DeliveryID: ids[1], Reason: delivery.SkipNewerDelivered, NewerUpdateID: "upd_sd"}}) {
		t.Fatalf("replay behind a newer delivered update: %+v %v", got, err)
	}
	if r := getRow(t, db, ids[1]); r.status != "dead_lettered" {
		t.Fatalf("a skipped dead letter changed: %+v", r)
	}
	// Forced, and naming a delivered one too: only the dead letter is replayed.
	got, err = db.ReplayDeadLetters(ctx, delivery.ReplayFilter{DeliveryIDs: []string{ids[0], ids[1]}, Limit: 2, Force: true}, now)
	if err != nil || len(got.Skipped) != 0 || !slices.Equal(got.Replayed, []delivery.Replayed{{DeliveryID: ids[1], DestinationID: "dst_s"}}) {
		t.Fatalf("replay: %v %v", got, err)
	}
	r := getRow(t, db, ids[1])
	if r.status != "pending" || r.reason != "replayed" || r.updated != ms(now) {
		t.Fatalf("replayed row: %+v", r)
	}
	if getRow(t, db, ids[0]).status != "delivered" {
		t.Fatal("a delivered delivery was touched")
	}
	heads, err := db.ParkedHeads(ctx, "dst_s", now, 10)
	if err != nil || len(heads) != 1 {
		t.Fatalf("parked: %+v %v", heads, err)
	}
	h := heads[0]
	job, err := delivery.DecodeJob(h.Job)
	if err != nil || job.DeliveryID != ids[1] || job.ProfileKey != "p-2" || string(job.Payload) != `{"n":1}` || h.Attempts != 1 || h.FirstAttemptAt != nil || h.Seq >= 0 {
		t.Fatalf("parked job: %+v %+v %v", h, job, err)
	}
	// A second replay finds nothing to do; the stats show it as backlog.
	if got, err := db.ReplayDeadLetters(ctx, delivery.ReplayFilter{DestinationID: "dst_s", Limit: 100}, now); err != nil || len(got.Replayed) != 0 || len(got.Skipped) != 0 {
		t.Fatalf("second replay: %v %v", got, err)
	}
	if st, err := db.DestinationStats(ctx, "dst_s", t0.Add(-time.Hour)); err != nil || st.Backlog != 1 || st.Parked != 1 {
		t.Fatalf("stats after replay: %+v %v", st, err)
	}
	// The dispatcher's later outcome applies over the replay's pending.
	a := delivery.Attempt{N: 2, At: now.Add(time.Second), StatusCode: 200, LatencyMS: 4, Outcome: "delivered"}
	apply(t, db, delivery.Batch{Events: []delivery.Event{{DeliveryID: ids[1], UpdateID: "upd_sb", DestinationID: "dst_s", Status: delivery.Delivered, At: a.At, Attempt: &a}}, Unpark: []string{ids[1]}})
	if r := getRow(t, db, ids[1]); r.status != "delivered" || r.attempts != 2 {
		t.Fatalf("after the replayed attempt: %+v", r)
	}
}

func testLastAlert(t *testing.T, db *DB) {
	ctx := context.Background()
	if a, err := db.LastAlert(ctx, "dst_a", "circuit_opened", "circuit_closed"); err != nil || a != nil {
		t.Fatalf("no alerts: %v %v", a, err)
	}
	apply(t, db, delivery.Batch{Alerts: []delivery.Alert{
		{ID: "alr_1", DestinationID: "dst_a", Kind: "circuit_opened", Message: "m", At: t0},
		{ID: "alr_2", DestinationID: "dst_a", Kind: "circuit_closed", Message: "m", At: t0.Add(time.Minute)},
		{ID: "alr_3", DestinationID: "dst_b", Kind: "circuit_opened", Message: "m", At: t0.Add(2 * time.Minute)},
	}})
	a, err := db.LastAlert(ctx, "dst_a", "circuit_opened", "circuit_closed")
	if err != nil || a == nil || a.ID != "alr_2" || !a.At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last alert: %+v %v", a, err)
	}
}

// A parked delivery is due no earlier than its due time, to the sub-millisecond.
func testParkedDueRoundsUp(t *testing.T, db *DB) {
	ctx := context.Background()
	due := t0.Add(1500 * time.Microsecond)
	apply(t, db, delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_p", DestinationID: "dst_p", ProfileKey: "k", Seq: 1, DueAt: due, Job: []byte(`{}`)}}})
	for _, c := range []struct {
		at   time.Time
		want int
	}{{t0.Add(time.Millisecond), 0}, {due, 0}, {t0.Add(2 * time.Millisecond), 1}} {
		heads, err := db.ParkedHeads(ctx, "dst_p", c.at, 10)
		if err != nil || len(heads) != c.want {
			t.Fatalf("at +%s: %d heads (%v), want %d", c.at.Sub(t0), len(heads), err, c.want)
		}
	}
}
