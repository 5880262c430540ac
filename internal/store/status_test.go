package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// event builds a status event at t0+sec seconds, with attempt n when n > 0.
func event(id string, st delivery.Status, sec int, n int) delivery.Event {
	at := t0.Add(time.Duration(sec) * time.Second)
	e := delivery.Event{DeliveryID: id, UpdateID: "upd_" + id, DestinationID: "dst_1", Status: st, At: at}
	if n > 0 {
		e.Attempt = &delivery.Attempt{N: n, At: at, StatusCode: 200, LatencyMS: 12.5, Outcome: "ok", Reason: "accepted"}
	}
	return e
}

// deliveryRow is what the deliveries table holds for one delivery, beyond what Record shows.
type deliveryRow struct {
	status   string
	reason   string
	attempts int
	updated  int64
	next     sql.NullInt64
	payload  []byte
}

func getRow(t *testing.T, db *DB, id string) deliveryRow {
	t.Helper()
	var r deliveryRow
	err := db.db.QueryRowContext(context.Background(), `SELECT status, reason, attempts, updated_at, next_attempt_at, payload FROM deliveries WHERE delivery_id = $1`, id).
		Scan(&r.status, &r.reason, &r.attempts, &r.updated, &r.next, &r.payload)
	if err != nil {
		t.Fatalf("delivery %s: %v", id, err)
	}
	return r
}

func apply(t *testing.T, db *DB, b delivery.Batch) {
	t.Helper()
	if err := db.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func testApply(t *testing.T, db *DB) {
	ctx := context.Background()
	u := delivery.Update{UpdateID: "upd_1", ProfileKey: "p-1", ReceivedAt: t0, RoutedAt: t0.Add(time.Millisecond), Audiences: []string{"seg-a", "seg-b"}}
	next := t0.Add(time.Minute)
	mk := func(dst string, st delivery.Status) delivery.Event {
		return delivery.Event{DeliveryID: delivery.ID("upd_1", dst), UpdateID: "upd_1", DestinationID: dst, Status: st, At: t0,
			EmailHash: delivery.HashIdentity("a@example.com")}
	}
	apply(t, db, delivery.Batch{Updates: []delivery.Update{u}, Events: []delivery.Event{mk("dst_b", delivery.Pending), mk("dst_a", delivery.Pending), mk("dst_c", delivery.Excluded)}})

	// dst_a: two failed attempts then success; dst_b: one failure, waiting.
	idA, idB := delivery.ID("upd_1", "dst_a"), delivery.ID("upd_1", "dst_b")
	a1 := delivery.Attempt{N: 1, At: t0.Add(time.Second), StatusCode: 503, LatencyMS: 30, Outcome: "retry", Reason: "server_error", Error: "503"}
	a2 := delivery.Attempt{N: 2, At: t0.Add(2 * time.Second), StatusCode: 429, LatencyMS: 5.25, Outcome: "retry", Reason: "rate_limited"}
	a3 := delivery.Attempt{N: 3, At: t0.Add(3 * time.Second), StatusCode: 200, LatencyMS: 41.5, Outcome: "ok", Reason: "accepted"}
	ev := func(id, dst string, st delivery.Status, a delivery.Attempt, next *time.Time) delivery.Event {
		return delivery.Event{DeliveryID: id, UpdateID: "upd_1", DestinationID: dst, Status: st, At: a.At, Attempt: &a, NextAttemptAt: next}
	}
	apply(t, db, delivery.Batch{Events: []delivery.Event{
		ev(idA, "dst_a", delivery.Retrying, a1, &next),
		ev(idB, "dst_b", delivery.Retrying, a1, &next),
		ev(idA, "dst_a", delivery.Retrying, a2, &next),
		ev(idA, "dst_a", delivery.Delivered, a3, nil),
	}})

	// The update is inserted once: a second routing of the same ID keeps the first record.
	apply(t, db, delivery.Batch{Updates: []delivery.Update{{UpdateID: "upd_1", ProfileKey: "other", ReceivedAt: t0, RoutedAt: t0, Audiences: []string{}}}})

	gotU, recs, err := db.GetUpdate(ctx, "upd_1")
	if err != nil {
		t.Fatal(err)
	}
	if gotU.UpdateID != "upd_1" || gotU.ProfileKey != "p-1" || !gotU.ReceivedAt.Equal(u.ReceivedAt) || !gotU.RoutedAt.Equal(u.RoutedAt) ||
		!reflect.DeepEqual(gotU.Audiences, u.Audiences) {
		t.Fatalf("update: %+v", gotU)
	}
	if len(recs) != 3 || recs[0].DestinationID != "dst_a" || recs[1].DestinationID != "dst_b" || recs[2].DestinationID != "dst_c" {
		t.Fatalf("records by destination: %+v", recs)
	}
	if r := recs[0]; r.Status != delivery.Delivered || !reflect.DeepEqual(r.Attempts, []delivery.Attempt{a1, a2, a3}) ||
		r.NextAttemptAt != nil || !r.CreatedAt.Equal(t0) || !r.UpdatedAt.Equal(a3.At) || r.DeliveryID != idA || r.UpdateID != "upd_1" {
		t.Fatalf("dst_a: %+v", r)
	}
	if r := recs[1]; r.Status != delivery.Retrying || len(r.Attempts) != 1 || r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(next) {
		t.Fatalf("dst_b: %+v", r)
	}
	if r := recs[2]; r.Status != delivery.Excluded || r.Attempts == nil || len(r.Attempts) != 0 {
		t.Fatalf("dst_c: %+v", r)
	}
	if row := getRow(t, db, idA); row.attempts != 3 {
		t.Fatalf("attempt count: %+v", row)
	}

	one, err := db.GetDelivery(ctx, idA)
	if err != nil || !reflect.DeepEqual(one, recs[0]) {
		t.Fatalf("GetDelivery: %+v %v", one, err)
	}
	if st, err := db.DeliveryStatus(ctx, idB); err != nil || st != delivery.Retrying {
		t.Fatalf("DeliveryStatus: %q %v", st, err)
	}
	if _, err := db.GetDelivery(ctx, "dlv_missing"); !errors.Is(err, fault.NotFound) {
		t.Fatalf("missing delivery: %v", err)
	}
	if _, _, err := db.GetUpdate(ctx, "upd_missing"); !errors.Is(err, ErrUpdateNotFound) {
		t.Fatalf("missing update: %v", err)
	}
}

func testUpsertRules(t *testing.T, db *DB) {
	ctx := context.Background()
	one := func(e delivery.Event) { t.Helper(); apply(t, db, delivery.Batch{Events: []delivery.Event{e}}) }

	// "pending" creates a delivery but never replaces anything.
	one(event("d1", delivery.Pending, 0, 0))
	if r := getRow(t, db, "d1"); r.status != "pending" || r.attempts != 0 {
		t.Fatalf("created pending: %+v", r)
	}
	next := t0.Add(time.Minute)
	e := event("d1", delivery.Retrying, 1, 1)
	e.Reason, e.NextAttemptAt = "server_error", &next
	one(e)
	one(event("d1", delivery.Pending, 2, 0))
	if r := getRow(t, db, "d1"); r.status != "retrying" || r.reason != "server_error" || r.attempts != 1 || !r.next.Valid || r.next.Int64 != ms(next) {
		t.Fatalf("pending replaced retrying: %+v", r)
	}

	// Terminal: later non-terminal events (a replay after a crash) do not move it back, but
	// their attempts are still recorded once per n.
	one(event("d1", delivery.Delivered, 3, 2))
	one(event("d1", delivery.Retrying, 4, 3))
	one(event("d1", delivery.Pending, 5, 0))
	r := getRow(t, db, "d1")
	if r.status != "delivered" || r.reason != "" || r.next.Valid || r.updated != ms(t0.Add(3*time.Second)) {
		t.Fatalf("terminal replaced: %+v", r)
	}
	if r.attempts != 2 {
		t.Fatalf("attempt count of a terminal delivery changed by a non-terminal event: %+v", r)
	}

	// Attempts are recorded once per n: a replayed attempt keeps the first record.
	replay := event("d1", delivery.Retrying, 9, 1)
	replay.Attempt.StatusCode = 500
	one(replay)
	rec, err := db.GetDelivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, a := range rec.Attempts {
		ns = append(ns, a.N)
	}
	if !reflect.DeepEqual(ns, []int{1, 2, 3}) || rec.Attempts[0].StatusCode != 200 || !rec.Attempts[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("attempts: %+v", rec.Attempts)
	}

	// The attempt count never goes down.
	one(event("d2", delivery.Retrying, 0, 3))
	one(event("d2", delivery.Retrying, 1, 2))
	if r := getRow(t, db, "d2"); r.attempts != 3 || r.updated != ms(t0.Add(time.Second)) {
		t.Fatalf("attempt count went down: %+v", r)
	}

	// Dead letters keep their payload; a later event without one does not erase it, and a
	// replayed dead letter that is then delivered (terminal to terminal) is recorded.
	dl := event("d3", delivery.DeadLettered, 0, 1)
	dl.Reason, dl.Payload = "retry_window_exceeded", []byte(`{"email":"a@example.com"}`)
	one(dl)
	one(event("d3", delivery.Retrying, 1, 0))
	if r := getRow(t, db, "d3"); r.status != "dead_lettered" || string(r.payload) != `{"email":"a@example.com"}` || r.reason != "retry_window_exceeded" {
		t.Fatalf("dead letter: %+v", r)
	}
	one(event("d3", delivery.Delivered, 2, 2))
	if r := getRow(t, db, "d3"); r.status != "delivered" || string(r.payload) != `{"email":"a@example.com"}` {
		t.Fatalf("replayed dead letter: %+v", r)
	}

	// Several events for one delivery in one batch apply in order.
	apply(t, db, delivery.Batch{Events: []delivery.Event{
		event("d4", delivery.Pending, 0, 0),
		event("d4", delivery.Retrying, 1, 1),
		event("d4", delivery.Delivered, 2, 2),
		event("d4", delivery.Retrying, 3, 3),
		event("d4", delivery.Pending, 4, 0),
	}})
	if r := getRow(t, db, "d4"); r.status != "delivered" || r.attempts != 2 || r.updated != ms(t0.Add(2*time.Second)) {
		t.Fatalf("in-batch order: %+v", r)
	}

	// Identity hashes are set when the delivery is created.
	e = event("d5", delivery.Pending, 0, 0)
	e.EmailHash, e.ExternalIDHash = "eh", "xh"
	one(e)
	var eh, xh sql.NullString
	if err := db.db.QueryRowContext(ctx, `SELECT email_hash, external_id_hash FROM deliveries WHERE delivery_id = 'd5'`).Scan(&eh, &xh); err != nil || eh.String != "eh" || xh.String != "xh" {
		t.Fatalf("identity hashes: %v %v %v", eh, xh, err)
	}
}

// testStatusWriter has many goroutines write through one StatusWriter at once, like dispatcher
// lanes: every write is readable as soon as Write returns, and everything reads back exactly.
func testStatusWriter(t *testing.T, db *DB) {
	const writers, perWriter = 50, 100
	ctx := context.Background()
	w := NewStatusWriter(db)
	defer w.Close()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%02d-%03d", g, i)
				e := event(id, delivery.Delivered, i, 1+i%3)
				e.UpdateID = fmt.Sprintf("upd-w%02d", g)
				b := delivery.Batch{Events: []delivery.Event{e}}
				if i == 0 {
					b.Updates = []delivery.Update{{UpdateID: e.UpdateID, ProfileKey: fmt.Sprint("p", g), ReceivedAt: t0, RoutedAt: t0, Audiences: []string{}}}
				}
				if err := w.Write(ctx, b); err != nil {
					errs <- err
					return
				}
				// Durable when Write returns: another connection reads it.
				if st, err := db.DeliveryStatus(ctx, id); err != nil || st != delivery.Delivered {
					errs <- fmt.Errorf("%s after Write: %q %v", id, st, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var deliveries, attempts, updates int
	for q, n := range map[string]*int{`SELECT COUNT(*) FROM deliveries`: &deliveries, `SELECT COUNT(*) FROM attempts`: &attempts, `SELECT COUNT(*) FROM updates`: &updates} {
		if err := db.db.QueryRowContext(ctx, q).Scan(n); err != nil {
			t.Fatal(err)
		}
	}
	if deliveries != writers*perWriter || attempts != writers*perWriter || updates != writers {
		t.Fatalf("counts: %d deliveries, %d attempts, %d updates", deliveries, attempts, updates)
	}
	for g := range writers {
		_, recs, err := db.GetUpdate(ctx, fmt.Sprintf("upd-w%02d", g))
		if err != nil || len(recs) != perWriter {
			t.Fatalf("writer %d: %d records, %v", g, len(recs), err)
		}
		for _, r := range recs {
			var i int
			fmt.Sscanf(r.DeliveryID[4:], "%d", &i)
			want := t0.Add(time.Duration(i) * time.Second)
			if r.Status != delivery.Delivered || !r.UpdatedAt.Equal(want) || len(r.Attempts) != 1 || r.Attempts[0].N != 1+i%3 || !r.Attempts[0].At.Equal(want) {
				t.Fatalf("%s: %+v", r.DeliveryID, r)
			}
		}
	}

	// An empty batch is a no-op.
	if err := w.Write(ctx, delivery.Batch{}); err != nil {
		t.Fatal(err)
	}
}

// testBatchEquivalence applies one random event sequence one event per Apply and all in one
// Apply (multi-row statements, deliveries repeated within the batch): the tables end up the same.
func testBatchEquivalence(t *testing.T, db *DB) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []delivery.Status{delivery.Pending, delivery.Retrying, delivery.Delivered, delivery.DeadLettered, delivery.Excluded}
	var seq []delivery.Event
	var ups []delivery.Update
	for i := range 700 {
		d := rng.IntN(150)
		e := event(fmt.Sprintf("%03d", d), statuses[rng.IntN(len(statuses))], i, 0)
		e.UpdateID = fmt.Sprintf("u%02d", d%40)
		if rng.IntN(3) > 0 {
			e.Attempt = &delivery.Attempt{N: 1 + rng.IntN(4), At: e.At, StatusCode: 200 + i, LatencyMS: float64(i) / 4, Outcome: "o", Reason: "r"}
		}
		if rng.IntN(4) == 0 {
			next := e.At.Add(time.Minute)
			e.NextAttemptAt = &next
		}
		if rng.IntN(5) == 0 {
			e.Payload = []byte(fmt.Sprintf(`{"i":%d}`, i))
		}
		if rng.IntN(6) == 0 {
			e.EmailHash = fmt.Sprint("eh", i)
		}
		seq = append(seq, e)
		if i%10 == 0 {
			ups = append(ups, delivery.Update{UpdateID: e.UpdateID, ProfileKey: fmt.Sprint("p", i), ReceivedAt: e.At, RoutedAt: e.At, Audiences: []string{"a"}})
		}
	}
	prefixed := func(p string, es []delivery.Event, us []delivery.Update) delivery.Batch {
		var b delivery.Batch
		for _, e := range es {
			e.DeliveryID, e.UpdateID = p+e.DeliveryID, p+e.UpdateID
			b.Events = append(b.Events, e)
		}
		for _, u := range us {
			u.UpdateID = p + u.UpdateID
			b.Updates = append(b.Updates, u)
		}
		return b
	}
	for i, e := range seq {
		var us []delivery.Update
		if i%10 == 0 {
			us = ups[i/10 : i/10+1]
		}
		apply(t, db, prefixed("one-", []delivery.Event{e}, us))
	}
	apply(t, db, prefixed("all-", seq, ups))

	dump := func(p string) []string {
		var out []string
		for _, q := range []string{
			`SELECT delivery_id, update_id, destination_id, status, reason, attempts, created_at, updated_at, next_attempt_at, email_hash, external_id_hash, payload FROM deliveries WHERE delivery_id LIKE $1 ORDER BY delivery_id`,
			`SELECT delivery_id, n, at, status_code, latency_ms, outcome, reason, error FROM attempts WHERE delivery_id LIKE $1 ORDER BY delivery_id, n`,
			`SELECT update_id, profile_key, received_at, routed_at, audiences FROM updates WHERE update_id LIKE $1 ORDER BY update_id`,
		} {
			rows, err := db.db.QueryContext(ctx, q, p+"%")
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if b, ok := v.([]byte); ok {
						vals[i] = string(b)
					}
				}
				out = append(out, strings.ReplaceAll(fmt.Sprint(vals...), p, ""))
			}
			rows.Close()
		}
		return out
	}
	one, all := dump("one-"), dump("all-")
	if len(one) < 300 {
		t.Fatalf("only %d rows", len(one))
	}
	if !slices.Equal(one, all) {
		for i := range min(len(one), len(all)) {
			if one[i] != all[i] {
				t.Fatalf("row %d differs:\n one at a time: %s\n in one batch:  %s", i, one[i], all[i])
			}
		}
		t.Fatalf("%d rows one at a time, %d in one batch", len(one), len(all))
	}
}

func TestChunks(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []int
	}{{0, nil}, {1, []int{1}}, {3, []int{2, 1}}, {256, []int{256}}, {300, []int{256, 32, 8, 4}}, {513, []int{256, 256, 1}}} {
		var sizes []int
		at := 0
		for _, r := range chunks(c.n, maxChunkRows) {
			if r[0] != at {
				t.Fatalf("chunks(%d): gap at %d", c.n, r[0])
			}
			sizes = append(sizes, r[1]-r[0])
			at = r[1]
		}
		if !slices.Equal(sizes, c.want) || at != c.n {
			t.Errorf("chunks(%d) = %v, want %v", c.n, sizes, c.want)
		}
	}
	if got := values(2, []int{1, 2, 2}, 2); got != "($1, $2, $2), ($3, $4, $4)" {
		t.Errorf("values: %s", got)
	}
	evs := func(ids ...string) []delivery.Event {
		var out []delivery.Event
		for _, id := range ids {
			out = append(out, delivery.Event{DeliveryID: id})
		}
		return out
	}
	var runs [][]string
	for _, r := range distinctRuns(evs("a", "b", "a", "c", "b", "b")) {
		var ids []string
		for _, e := range r {
			ids = append(ids, e.DeliveryID)
		}
		runs = append(runs, ids)
	}
	if fmt.Sprint(runs) != "[[a b] [a c b] [b]]" {
		t.Errorf("distinctRuns: %v", runs)
	}
}
