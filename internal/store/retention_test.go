package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/qgate/qgate/internal/delivery"
)

// history returns the events that leave delivery id of update in status st at day (days after
// t0) with n attempts.
func history(update, id string, st delivery.Status, day, n int) []delivery.Event {
	at := t0.Add(time.Duration(day) * 24 * time.Hour)
	var out []delivery.Event
	mk := func(st delivery.Status, a int) delivery.Event {
		e := delivery.Event{DeliveryID: id, UpdateID: update, DestinationID: "dst_1", Status: st, At: at}
		if a > 0 {
			e.Attempt = &delivery.Attempt{N: a, At: at, StatusCode: 503, Outcome: "retry", Reason: "server_error"}
		}
		return e
	}
	out = append(out, mk(delivery.Pending, 0))
	for a := 1; a <= n; a++ {
		s := delivery.Retrying
		if a == n && st != delivery.Pending {
			s = st
		}
		out = append(out, mk(s, a))
	}
	if n == 0 && st != delivery.Pending {
		out = append(out, mk(st, 0))
	}
	return out
}

func ids(t *testing.T, db *DB, q string) []string {
	t.Helper()
	rows, err := db.db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func testPrune(t *testing.T, db *DB) {
	ctx := context.Background()
	const horizonDay = 20
	before := t0.Add(horizonDay * 24 * time.Hour)
	update := func(id string, day int) delivery.Update {
		at := t0.Add(time.Duration(day) * 24 * time.Hour)
		return delivery.Update{UpdateID: id, ProfileKey: "p", ReceivedAt: at, RoutedAt: at, Audiences: []string{}}
	}
	var b delivery.Batch
	b.Updates = []delivery.Update{
		update("u_old", 1),        // all its deliveries old and finished: deleted
		update("u_old_mixed", 1),  // one delivery still retrying: kept
		update("u_old_empty", 2),  // routed to no destination: deleted
		update("u_old_recent", 1), // its delivery changed recently: kept
		update("u_new_empty", 25), // recent: kept
		update("u_edge", horizonDay),
	}
	for _, h := range [][]delivery.Event{
		// Old and finished: deleted with their attempts.
		history("u_old", "x_delivered", delivery.Delivered, 1, 1),
		history("u_old", "x_delivered3", delivery.Delivered, 2, 3),
		history("u_old", "x_dead", delivery.DeadLettered, 3, 4),
		history("u_old", "x_excluded", delivery.Excluded, 4, 0),
		history("u_old_mixed", "x_mixed_done", delivery.Delivered, 5, 2),
		history("u_old_recent", "x_other_old", delivery.Delivered, 19, 1),
		history("u_new_empty", "x_late", delivery.Delivered, 10, 1),
		// Old but unfinished: kept.
		history("u_old_mixed", "k_retrying", delivery.Retrying, 1, 2),
		history("u_old_mixed", "k_pending", delivery.Pending, 1, 0),
		// Recent, or exactly at the horizon: kept.
		history("u_old_recent", "k_recent", delivery.Delivered, 25, 2),
		history("u_edge", "k_edge", delivery.DeadLettered, horizonDay, 1),
	} {
		b.Events = append(b.Events, h...)
	}
	apply(t, db, b)

	n, err := db.Prune(ctx, before, 2) // batches smaller than the 7 deliveries to delete
	if err != nil {
		t.Fatal(err)
	}
	if n != 7+2 {
		t.Errorf("deleted %d, want 7 deliveries + 2 updates", n)
	}
	want := []string{"k_edge", "k_pending", "k_recent", "k_retrying"}
	if got := ids(t, db, `SELECT delivery_id FROM deliveries`); !slices.Equal(got, want) {
		t.Errorf("deliveries left: %v, want %v", got, want)
	}
	if got := ids(t, db, `SELECT DISTINCT delivery_id FROM attempts`); !slices.Equal(got, []string{"k_edge", "k_recent", "k_retrying"}) {
		t.Errorf("attempts left for %v", got)
	}
	if got := ids(t, db, `SELECT update_id FROM updates`); !slices.Equal(got, []string{"u_edge", "u_new_empty", "u_old_mixed", "u_old_recent"}) {
		t.Errorf("updates left: %v", got)
	}
	if rec, err := db.GetDelivery(ctx, "k_retrying"); err != nil || len(rec.Attempts) != 2 {
		t.Errorf("kept delivery lost attempts: %+v %v", rec, err)
	}

	// Nothing more to do.
	if n, err := db.Prune(ctx, before, 2); n != 0 || err != nil {
		t.Errorf("second prune: %d %v", n, err)
	}

	// Many batches, and a default batch size.
	b = delivery.Batch{}
	for i := range 25 {
		b.Events = append(b.Events, history("u_bulk", fmt.Sprintf("bulk%02d", i), delivery.Delivered, 3, 1+i%2)...)
	}
	apply(t, db, b)
	if n, err := db.Prune(ctx, before, 4); n != 25 || err != nil {
		t.Errorf("bulk prune: %d %v", n, err)
	}
	if n, err := db.Prune(ctx, before, 0); n != 0 || err != nil {
		t.Errorf("prune with the default batch: %d %v", n, err)
	}
	if got := ids(t, db, `SELECT delivery_id FROM deliveries`); !slices.Equal(got, want) {
		t.Errorf("deliveries left: %v, want %v", got, want)
	}

	// Every destination's old deliveries, a notification channel's included, each destination
	// in batches of its own; a recent one of another destination stays.
	b = delivery.Batch{}
	for i, dest := range []string{"dst_a", "dst_b", "dst_b", "dst_b", "nch_x", "dst_z"} {
		for _, e := range history("u_multi", fmt.Sprintf("multi%d", i), delivery.Delivered, 2+i, 1) {
			e.DestinationID = dest
			b.Events = append(b.Events, e)
		}
	}
	for _, e := range history("u_multi_new", "k_multi_recent", delivery.Delivered, 25, 1) {
		e.DestinationID = "dst_b"
		b.Events = append(b.Events, e)
	}
	apply(t, db, b)
	if n, err := db.Prune(ctx, before, 2); n != 6 || err != nil {
		t.Errorf("prune across destinations: %d %v, want 6", n, err)
	}
	want = append(want, "k_multi_recent")
	slices.Sort(want)
	if got := ids(t, db, `SELECT delivery_id FROM deliveries`); !slices.Equal(got, want) {
		t.Errorf("deliveries left: %v, want %v", got, want)
	}

	// A cancelled context stops it.
	apply(t, db, delivery.Batch{Events: history("u_c", "c1", delivery.Delivered, 1, 1)})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Prune(cctx, before, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled prune: %v", err)
	}
}

func testRunPruner(t *testing.T, db *DB) {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	old := func(id string, at time.Time) delivery.Event {
		return delivery.Event{DeliveryID: id, UpdateID: "u_" + id, DestinationID: "dst_1", Status: delivery.Delivered, At: at}
	}
	apply(t, db, delivery.Batch{Events: []delivery.Event{old("old", now.Add(-2*time.Hour)), old("recent", now.Add(-time.Minute))}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunPruner(ctx, db, time.Hour, 20*time.Millisecond, zaptest.NewLogger(t))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := db.DeliveryStatus(context.Background(), "old")
		if err != nil {
			t.Fatal(err)
		}
		if st == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pruner did not delete the old delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A later run (one interval on) keeps what is inside the retention.
	apply(t, db, delivery.Batch{Events: []delivery.Event{old("old2", now.Add(-3*time.Hour))}})
	for st := delivery.Status("x"); st != ""; {
		st, _ = db.DeliveryStatus(context.Background(), "old2")
		if time.Now().After(deadline) {
			t.Fatal("the pruner did not run again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if st, err := db.DeliveryStatus(context.Background(), "recent"); st != delivery.Delivered || err != nil {
		t.Fatalf("recent delivery: %q %v", st, err)
	}
	// On SQLite the passes also gathered planner statistics (Optimize): nothing else does.
	if db.Dialect() == SQLite {
		var n int
		if err := db.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'deliveries'`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("no planner statistics for deliveries after the pruner ran (%d rows, %v)", n, err)
		}
	}
}

// explain returns the query plan of q as text.
func explain(t *testing.T, db *DB, q string, args ...any) string {
	t.Helper()
	prefix := "EXPLAIN "
	if db.Dialect() == SQLite {
		prefix = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.db.QueryContext(context.Background(), prefix+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// testQueryPlans checks on a populated, analysed database (n deliveries, n/2 updates) that the support queries, the status
// reads and the retention statements use their indexes.
func testQueryPlans(t *testing.T, db *DB) {
	ctx := context.Background()
	n := 20000 // enough for PostgreSQL to prefer indexes for what they serve
	if db.Dialect() == SQLite {
		n = 4000 // its planner needs fewer, and it is slow under -race
	}
	for _, q := range []string{
		`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
INSERT INTO deliveries (delivery_id, update_id, destination_id, status, reason, attempts, created_at, updated_at, email_hash, external_id_hash)
SELECT 'd' || i, 'u' || (i / 2), 'dst' || (i % 50),
       CASE WHEN i % 20 = 0 THEN 'retrying' WHEN i % 7 = 0 THEN 'excluded' ELSE 'delivered' END, '', 1,
       1700000000000 + i * 1000, 1700000000000 + i * 1000,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'e' || i END, CASE WHEN i % 2 = 0 THEN 'x' || i ELSE NULL END
FROM s`,
		`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
INSERT INTO attempts (delivery_id, n, at, status_code, latency_ms, outcome, reason) SELECT 'd' || i, 1, 1700000000000 + i * 1000, 200, 10, 'ok', 'accepted' FROM s`,
		`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $1 / 2)
INSERT INTO updates (update_id, profile_key, received_at, routed_at, audiences) SELECT 'u' || i, 'p' || i, 1700000000000 + i * 2000, 1700000000000 + i * 2000, '[]' FROM s`,
	} {
		if _, err := db.db.ExecContext(ctx, q, n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	horizon := int64(1700000000000 + n/20*1000) // the oldest 5%
	lock := ""
	if db.Dialect() == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	pk := func(table string) string {
		if db.Dialect() == SQLite {
			return "sqlite_autoindex_" + table + "_1"
		}
		return table + "_pkey"
	}
	// A destination's old finished deliveries: the (destination, age) range, the status checked on
	// the rows (the status index holds no delivered rows). Both read only the destination's rows
	// older than the horizon.
	finishedQ, finishedA := db.finishedQuery(finishedIDs(100))
	cases := []planCase{
		{"finished deliveries among a batch of jobs (Finished)", pk("deliveries"),
			finishedQ, finishedA},
		{"deliveries of an update (GetUpdate)", "deliveries_update",
			`SELECT d.delivery_id FROM deliveries d WHERE d.update_id = $1 ORDER BY d.destination_id`, []any{"u77"}},
		{"a delivery (GetDelivery)", pk("deliveries"),
			`SELECT d.delivery_id, d.status FROM deliveries d WHERE d.delivery_id = $1`, []any{"d77"}},
		{"attempts of a delivery", pk("attempts"),
			`SELECT n, at FROM attempts WHERE delivery_id = $1 ORDER BY n`, []any{"d77"}},
		{"a destination's deliveries in a time window", "deliveries_destination_time",
			`SELECT delivery_id, status FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND updated_at < $3 ORDER BY updated_at DESC LIMIT 50`,
			[]any{"dst7", int64(1700000000000 + n/4*1000), int64(1700000000000 + n/3*1000)}},
		{"a destination's first attempts kept on their rows, in a window (alerts, series)", "deliveries_destination_time",
			`SELECT COUNT(*) FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND first_attempt_at >= $2`,
			[]any{"dst7", int64(1700000000000 + n*1000 - 3600*1000)}},
		{"a destination's deliveries in a status (dead letters)", "deliveries_undelivered",
			`SELECT delivery_id FROM deliveries WHERE status = 'dead_lettered' AND ` + undelivered + ` AND destination_id = $1 ORDER BY updated_at LIMIT 100`, []any{"dst7"}},
		{"support listing: a destination's dead letters (SearchDeliveries, aliased)", "deliveries_undelivered",
			`SELECT d.delivery_id FROM deliveries d WHERE d.destination_id = $1 AND d.status = $2 AND d.` + undelivered + ` ORDER BY d.updated_at DESC, d.delivery_id DESC LIMIT 51`,
			[]any{"dst7", "dead_lettered"}},
		{"a destination's delivered deliveries, newest first", "deliveries_destination_time",
			`SELECT delivery_id FROM deliveries WHERE status = 'delivered' AND destination_id = $1 ORDER BY updated_at DESC LIMIT 100`, []any{"dst7"}},
		{"deliveries by hashed email", "deliveries_email",
			`SELECT delivery_id FROM deliveries WHERE email_hash = $1 ORDER BY updated_at DESC LIMIT 50`, []any{"e77"}},
		{"deliveries by hashed external ID", "deliveries_external_id",
			`SELECT delivery_id FROM deliveries WHERE external_id_hash = $1 ORDER BY updated_at DESC LIMIT 50`, []any{"x78"}},
		{"search by identity (email or external ID)", "deliveries_email",
			`SELECT d.delivery_id FROM deliveries d WHERE (d.email_hash = $1 OR d.external_id_hash = $1) ORDER BY d.updated_at DESC, d.delivery_id DESC LIMIT 51`, []any{"e77"}},
		{"search by identity uses both hashes", "deliveries_external_id",
			`SELECT d.delivery_id FROM deliveries d WHERE (d.email_hash = $1 OR d.external_id_hash = $1) ORDER BY d.updated_at DESC, d.delivery_id DESC LIMIT 51`, []any{"x78"}},
		{"destination stats: counts in the window", "deliveries_destination_time",
			`SELECT status, reason, COUNT(*) FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND created_at >= $2 GROUP BY status, reason`,
			[]any{"dst7", int64(1700000000000 + n*1000 - 3600*1000)}},
		{"destination stats: backlog", "deliveries_undelivered",
			`SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retrying') AND ` + undelivered + ` AND destination_id = $1`, []any{"dst7"}},
		{"prune: the destinations with deliveries", "deliveries_destination_time", selectDestinations, nil},
		{"prune: a destination's finished deliveries by age", "deliveries_destination_time", selectPrunableDeliveries + lock, []any{horizon, 1000, "dst7"}},
		{"prune: delete attempts", pk("attempts"), `DELETE FROM attempts WHERE delivery_id IN ($1, $2, $3)`, []any{"d1", "d2", "d3"}},
		{"prune: delete deliveries", pk("deliveries"), `DELETE FROM deliveries WHERE delivery_id IN ($1, $2, $3)`, []any{"d1", "d2", "d3"}},
		{"prune: old updates", "updates_received", selectPrunableUpdates + lock, []any{horizon, 1000}},
		{"prune: old updates without deliveries", "deliveries_update", selectPrunableUpdates + lock, []any{horizon, 1000}},
		{"prune: delete updates", pk("updates"), `DELETE FROM updates WHERE update_id IN ($1, $2, $3)`, []any{"u1", "u2", "u3"}},
	}
	check := func(stats string, cases []planCase) {
		for _, c := range cases {
			plan := explain(t, db, c.q, c.args...)
			if !strings.Contains(plan, c.index) {
				t.Errorf("%s (%s) does not use %s:\n%s\nplan:\n%s", c.name, stats, c.index, c.q, plan)
			} else {
				t.Logf("%s (%s): %s\n%s", c.name, stats, c.index, plan)
			}
		}
	}
	// The hot path's lookup must use the primary key even before SQLite has statistics (a fresh
	// node, or tables that grew since Optimize last ran): without them SQLite's rules of thumb
	// chose deliveries_status for it once the ID list was long, and scanned every finished delivery.
	if db.Dialect() == SQLite {
		check("no statistics", cases[:1])
	}
	// The rest with statistics: Optimize on SQLite (Open and the pruner run it), ANALYZE on
	// PostgreSQL (autovacuum runs it).
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Dialect() == Postgres {
		if _, err := db.db.ExecContext(ctx, `ANALYZE`); err != nil {
			t.Fatal(err)
		}
	}
	check("with statistics", cases)
}

type planCase struct {
	name, index, q string
	args           []any
}

func finishedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "d" + strconv.Itoa(100+i*37)
	}
	return ids
}
