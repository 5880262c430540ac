package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/store/storefault"
)

// routedBatch is what the router writes for one update queued for dst_1 and dst_2: the update
// (naming both) and their pending rows, with identity hashes, at t0.
func routedBatch(upd string) delivery.Batch {
	b := delivery.Batch{Updates: []delivery.Update{{UpdateID: upd, ProfileKey: "p_" + upd, ReceivedAt: t0, RoutedAt: t0,
		Audiences: []string{"seg"}, Queued: []string{"dst_1", "dst_2"}}}}
	for _, dst := range []string{"dst_1", "dst_2"} {
		b.Routed = append(b.Routed, delivery.Event{DeliveryID: delivery.ID(upd, dst), UpdateID: upd, DestinationID: dst,
			Status: delivery.Pending, At: t0, EmailHash: delivery.HashIdentity(upd + "@example.com")})
	}
	return b
}

// deliveredAt is the dispatcher's outcome of (upd, dst): delivered at its first attempt, sec
// seconds after t0, without the identity hashes (jobs written before they carried them).
func deliveredAt(upd, dst string, sec int) delivery.Event {
	at := t0.Add(time.Duration(sec) * time.Second)
	return delivery.Event{DeliveryID: delivery.ID(upd, dst), UpdateID: upd, DestinationID: dst, Status: delivery.Delivered, At: at,
		Attempt: &delivery.Attempt{N: 1, At: at, StatusCode: 200, LatencyMS: 9, Outcome: "delivered", Reason: "accepted"}}
}

// storedRow reads a delivery's status, creation time and email hash; ok is false when it has no row.
func storedRow(t *testing.T, db *DB, id string) (status string, created int64, emailHash string, ok bool) {
	t.Helper()
	var hash sql.NullString
	err := db.db.QueryRowContext(context.Background(), `SELECT status, created_at, email_hash FROM deliveries WHERE delivery_id = $1`, id).
		Scan(&status, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, "", false
	}
	if err != nil {
		t.Fatalf("delivery %s: %v", id, err)
	}
	return status, created, hash.String, true
}

// deliveryInserts counts the statements that wrote deliveries rows since before.
func deliveryInserts(inj *storefault.Injector, before map[storefault.Statement]int) int {
	n := 0
	for q, c := range inj.Statements() {
		if q.Op == storefault.Exec && strings.HasPrefix(strings.TrimSpace(q.Query), "INSERT INTO deliveries") {
			n += c - before[q]
		}
	}
	return n
}

// testWriterHold: the router's pending rows are held back; an outcome that comes within the
// hold is written in its place — one deliveries statement for the delivery, created at the
// pending row's time, with its identity hash — and GetUpdate shows the delivery still waiting
// as pending from its update's row meanwhile. A row whose outcome does not come is written at
// the end of its hold.
func testWriterHold(t *testing.T, b backend) {
	ctx := context.Background()
	db, inj := openFaulty(t, b)
	hash := delivery.HashIdentity("upd_h1@example.com")

	t.Run("merged into the outcome", func(t *testing.T) {
		w := newStatusWriter(db, applyTimeout, time.Hour)
		defer w.Close()
		before := inj.Statements()
		if err := w.Write(ctx, routedBatch("upd_h1")); err != nil {
			t.Fatal(err)
		}
		u, recs, err := db.GetUpdate(ctx, "upd_h1")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].DestinationID != "dst_1" || recs[1].DestinationID != "dst_2" ||
			recs[0].Status != delivery.Pending || recs[1].Status != delivery.Pending || !recs[0].CreatedAt.Equal(t0) ||
			recs[0].DeliveryID != delivery.ID("upd_h1", "dst_1") || len(recs[0].Attempts) != 0 {
			t.Fatalf("GetUpdate while the pending rows are held: %+v", recs)
		}
		if len(u.Queued) != 2 {
			t.Errorf("update's queued destinations: %v", u.Queued)
		}
		if _, _, _, ok := storedRow(t, db, delivery.ID("upd_h1", "dst_1")); ok {
			t.Fatal("the pending row was written, not held")
		}
		if err := w.Write(ctx, delivery.Batch{Events: []delivery.Event{deliveredAt("upd_h1", "dst_1", 1)}}); err != nil {
			t.Fatal(err)
		}
		st, created, email, ok := storedRow(t, db, delivery.ID("upd_h1", "dst_1"))
		if !ok || st != "delivered" || created != ms(t0) || email != hash {
			t.Errorf("outcome row: %v %q created %d (want %d) email hash %q (want %q)", ok, st, created, ms(t0), email, hash)
		}
		if n := deliveryInserts(inj, before); n != 1 {
			t.Errorf("%d statements wrote deliveries rows, want 1: the outcome, in place of its pending row", n)
		}
		_, recs, err = db.GetUpdate(ctx, "upd_h1")
		if err != nil || len(recs) != 2 || recs[0].Status != delivery.Delivered || recs[1].Status != delivery.Pending {
			t.Fatalf("GetUpdate after one outcome: %+v %v", recs, err)
		}
		w.Close() // writes the pending row still held
		if st, created, email, ok := storedRow(t, db, delivery.ID("upd_h1", "dst_2")); !ok || st != "pending" || created != ms(t0) || email != hash {
			t.Errorf("held row after Close: %v %q %d %q", ok, st, created, email)
		}
		if st, _, _, _ := storedRow(t, db, delivery.ID("upd_h1", "dst_1")); st != "delivered" {
			t.Errorf("the delivered row became %q when the held rows were written", st)
		}
	})

	t.Run("written at the end of its hold", func(t *testing.T) {
		w := newStatusWriter(db, applyTimeout, 20*time.Millisecond)
		defer w.Close()
		if err := w.Write(ctx, routedBatch("upd_h2")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the held rows are written", func() bool {
			st1, _, _, ok1 := storedRow(t, db, delivery.ID("upd_h2", "dst_1"))
			st2, _, _, ok2 := storedRow(t, db, delivery.ID("upd_h2", "dst_2"))
			return ok1 && ok2 && st1 == "pending" && st2 == "pending"
		})
		// The outcome then upserts the row as before.
		if err := w.Write(ctx, delivery.Batch{Events: []delivery.Event{deliveredAt("upd_h2", "dst_1", 1)}}); err != nil {
			t.Fatal(err)
		}
		if st, created, _, _ := storedRow(t, db, delivery.ID("upd_h2", "dst_1")); st != "delivered" || created != ms(t0) {
			t.Errorf("outcome after the hold: %q created %d", st, created)
		}
	})

	t.Run("the outcome in the same transaction", func(t *testing.T) {
		w := newStatusWriter(db, applyTimeout, time.Hour)
		defer w.Close()
		before := inj.Statements()
		release := holdWriter(t, w, inj)
		wait := writeAll(ctx, w, map[string]delivery.Batch{
			"routed":  routedBatch("upd_h3"),
			"outcome": {Events: []delivery.Event{deliveredAt("upd_h3", "dst_2", 1)}},
		})
		waitFor(t, "both writes are queued", func() bool { return len(w.reqs) == 2 })
		if err := release(); err != nil {
			t.Fatal(err)
		}
		for tag, err := range wait() {
			if err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
		}
		if st, created, email, ok := storedRow(t, db, delivery.ID("upd_h3", "dst_2")); !ok || st != "delivered" || created != ms(t0) || email == "" {
			t.Errorf("outcome grouped with its pending row: %v %q %d %q", ok, st, created, email)
		}
		if _, _, _, ok := storedRow(t, db, delivery.ID("upd_h3", "dst_1")); ok {
			t.Error("dst_1's pending row was written, not held")
		}
		// The gate's batch wrote one; the outcome one; dst_1's row is held.
		if n := deliveryInserts(inj, before); n != 2 {
			t.Errorf("%d statements wrote deliveries rows, want 2 (the gate's and the outcome)", n)
		}
	})
}

// testWriterHoldFaults: held rows the store refuses are held again and written once it takes
// them; a held row merged into an outcome whose transaction fails is held again, so that it is
// still written when the outcome is not written again.
func testWriterHoldFaults(t *testing.T, b backend) {
	ctx := context.Background()
	db, inj := openFaulty(t, b)

	t.Run("store refuses the held rows", func(t *testing.T) {
		w := newStatusWriter(db, applyTimeout, 10*time.Millisecond)
		defer w.Close()
		fired := inj.Fired(storefault.Exec)
		remove := inj.Add(storefault.Rule{Op: storefault.Exec, Match: "INSERT INTO deliveries", Times: 2})
		defer remove()
		if err := w.Write(ctx, routedBatch("upd_f1")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the held rows are written after two refusals", func() bool {
			_, _, _, ok1 := storedRow(t, db, delivery.ID("upd_f1", "dst_1"))
			_, _, _, ok2 := storedRow(t, db, delivery.ID("upd_f1", "dst_2"))
			return ok1 && ok2
		})
		if got := inj.Fired(storefault.Exec) - fired; got != 2 {
			t.Errorf("the fault fired %d times, want 2", got)
		}
	})

	t.Run("outcome refused", func(t *testing.T) {
		w := newStatusWriter(db, applyTimeout, time.Hour)
		if err := w.Write(ctx, routedBatch("upd_f2")); err != nil {
			t.Fatal(err)
		}
		remove := inj.Add(storefault.Rule{Op: storefault.Exec, Match: "INSERT INTO deliveries", Times: 1})
		err := w.Write(ctx, delivery.Batch{Events: []delivery.Event{deliveredAt("upd_f2", "dst_1", 1)}})
		remove()
		if !errors.Is(err, storefault.ErrInjected) {
			t.Fatalf("refused outcome: %v", err)
		}
		w.Close()
		st, created, email, ok := storedRow(t, db, delivery.ID("upd_f2", "dst_1"))
		if !ok || st != "pending" || created != ms(t0) || email == "" {
			t.Errorf("pending row of the refused outcome: %v %q %d %q", ok, st, created, email)
		}
	})
}

func TestSQLiteCheckpoints(t *testing.T) { testCheckpoints(t, sqliteBackend) }

// testCheckpoints (SQLite): the store checkpoints its write-ahead log in the background once
// there were writes, and not while nothing is written (an idle node does no work for it).
func testCheckpoints(t *testing.T, b backend) {
	db, inj := openFaulty(t, b)
	checkpoints := func() int {
		return inj.Statements()[storefault.Statement{Op: storefault.Query, Query: checkpointQuery}]
	}
	before := checkpoints()
	apply(t, db, fullBatch("ck1"))
	waitFor(t, "a background checkpoint after a write", func() bool { return checkpoints() > before })
	// Idle: no write, so no checkpoint over the next rounds. (Absence needs a window: three
	// rounds of checkpointEvery, after one more round in which the write could still be seen.)
	time.Sleep(checkpointEvery + checkpointEvery/2)
	idle := checkpoints()
	time.Sleep(3 * checkpointEvery)
	if n := checkpoints() - idle; n != 0 {
		t.Errorf("%d checkpoints while nothing was written", n)
	}
	apply(t, db, fullBatch("ck2"))
	waitFor(t, "a checkpoint after the next write", func() bool { return checkpoints() > idle })
}
