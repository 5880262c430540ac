package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/store/storefault"
)

// openFaulty opens a fresh store of b whose driver calls inj can fail.
func openFaulty(t *testing.T, b backend) (*DB, *storefault.Injector) {
	t.Helper()
	inj := storefault.New()
	url, dir := b.fresh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := OpenWith(ctx, url, dir, Options{WrapConnector: inj.Wrap})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		inj.Clear()
		db.Close()
	})
	return db, inj
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fullBatch is a batch of one caller, tagged tag, with a row in every table a Batch writes:
// several statements, so a half-applied transaction would show.
func fullBatch(tag string) delivery.Batch {
	e := event("dlv_"+tag, delivery.Retrying, 1, 1)
	e.UpdateID = "upd_" + tag
	return delivery.Batch{
		Updates: []delivery.Update{{UpdateID: "upd_" + tag, ProfileKey: "p_" + tag, ReceivedAt: t0, RoutedAt: t0, Audiences: []string{}}},
		Events:  []delivery.Event{e},
		Park:    []delivery.Parked{{DeliveryID: "dlv_" + tag, DestinationID: "dst_1", ProfileKey: "p_" + tag, Seq: 1, DueAt: t0, Job: []byte(`{}`)}},
		Alerts:  []delivery.Alert{{ID: "alr_" + tag, DestinationID: "dst_1", Kind: "circuit_opened", Message: "m", At: t0}},
	}
}

// rowsOf counts the rows fullBatch(tag) writes that are in the store: 0 or 5.
func rowsOf(t *testing.T, db *DB, tag string) int {
	t.Helper()
	var n int
	err := db.db.QueryRowContext(context.Background(), `SELECT
 (SELECT COUNT(*) FROM updates WHERE update_id = $1) + (SELECT COUNT(*) FROM deliveries WHERE delivery_id = $2) +
 (SELECT COUNT(*) FROM attempts WHERE delivery_id = $2) + (SELECT COUNT(*) FROM parked WHERE delivery_id = $2) +
 (SELECT COUNT(*) FROM alerts WHERE id = $3)`, "upd_"+tag, "dlv_"+tag, "alr_"+tag).Scan(&n)
	if err != nil {
		t.Fatalf("rows of %s: %v", tag, err)
	}
	return n
}

// holdWriter makes the writer's next transaction wait at BEGIN, writes a batch that takes it,
// and returns once the writer is held there; release lets it go and returns that write's error.
// Writes made meanwhile queue up and are then grouped into one transaction.
func holdWriter(t *testing.T, w *StatusWriter, inj *storefault.Injector) (release func() error) {
	t.Helper()
	begins := inj.Calls(storefault.Begin)
	remove := inj.Add(storefault.Rule{Op: storefault.Begin, Block: true, Times: 1})
	done := make(chan error, 1)
	go func() { done <- w.Write(context.Background(), fullBatch("gate")) }()
	waitFor(t, "the writer is held at BEGIN", func() bool { return inj.Calls(storefault.Begin) > begins })
	return func() error {
		remove()
		return <-done
	}
}

// writeAll starts one Write per tag and returns their errors, by tag, once all returned.
func writeAll(ctx context.Context, w *StatusWriter, batches map[string]delivery.Batch) func() map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for tag, b := range batches {
		wg.Go(func() {
			err := w.Write(ctx, b)
			mu.Lock()
			errs[tag] = err
			mu.Unlock()
		})
	}
	return func() map[string]error {
		wg.Wait()
		return errs
	}
}

// testWriterIsolatesBadBatch groups ten callers' batches in one transaction; one of them holds
// a row the database refuses (injected: every statement carrying its delivery ID fails) and one
// holds a NUL byte and invalid UTF-8 in its attempt's error excerpt (once refused by
// PostgreSQL). Only the refused caller gets an error and nothing of its batch is written; the
// nine others, the excerpt's included, are applied.
func testWriterIsolatesBadBatch(t *testing.T, b backend) {
	db, inj := openFaulty(t, b)
	w := NewStatusWriter(db)
	defer w.Close()

	release := holdWriter(t, w, inj)
	batches := map[string]delivery.Batch{}
	for i := range 10 {
		batches[fmt.Sprintf("c%d", i)] = fullBatch(fmt.Sprintf("c%d", i))
	}
	batches["c3"].Events[0].Attempt.Error = "400: " + hostile
	refused := errors.New("row refused")
	inj.Add(storefault.Rule{Op: storefault.Exec, MatchArg: "dlv_c7", Err: refused})
	wait := writeAll(context.Background(), w, batches)
	waitFor(t, "ten writes are queued", func() bool { return len(w.reqs) == 10 })
	begins := inj.Calls(storefault.Begin) // the gate's included: it is held inside BEGIN
	if err := release(); err != nil {
		t.Fatalf("gate write: %v", err)
	}
	errs := wait()
	for tag, err := range errs {
		if tag == "c7" {
			if !errors.Is(err, refused) {
				t.Errorf("the refused caller got %v, want its own error", err)
			}
			if n := rowsOf(t, db, tag); n != 0 {
				t.Errorf("the refused batch left %d rows", n)
			}
			continue
		}
		if err != nil {
			t.Errorf("caller %s got %v: another caller's bad row failed its write", tag, err)
		}
		if n := rowsOf(t, db, tag); n != 5 {
			t.Errorf("caller %s: %d of its 5 rows written", tag, n)
		}
	}
	// One transaction for the group, then one per batch: the ten were indeed grouped.
	if got := inj.Calls(storefault.Begin) - begins; got != 1+10 {
		t.Errorf("%d transactions after the gate's, want 11 (the group, then each batch alone)", got)
	}
	if rec, err := db.GetDelivery(context.Background(), "dlv_c3"); err != nil || rec.Attempts[0].Error != "400: "+hostileClean {
		t.Errorf("excerpt with NUL: %+v %v", rec, err)
	}
}

// testWriterStoreFaults makes commits and statements fail or hang: every caller hears an error
// (never a silent success), nothing is half-applied, and once the fault clears the same
// batches apply.
func testWriterStoreFaults(t *testing.T, b backend) {
	ctx := context.Background()
	db, inj := openFaulty(t, b)
	w := NewStatusWriter(db)
	defer w.Close()
	// short is a writer whose transactions time out after 500 ms, for the faults that hang.
	short := newStatusWriter(db, 500*time.Millisecond, defaultHold)
	defer short.Close()

	batches := func(prefix string) map[string]delivery.Batch {
		out := map[string]delivery.Batch{}
		for i := range 5 {
			tag := fmt.Sprintf("%s%d", prefix, i)
			out[tag] = fullBatch(tag)
		}
		return out
	}
	expect := func(t *testing.T, what string, errs map[string]error, want error) {
		t.Helper()
		for tag, err := range errs {
			if !errors.Is(err, want) {
				t.Errorf("%s: caller %s got %v, want %v", what, tag, err, want)
			}
			if n := rowsOf(t, db, tag); n != 0 {
				t.Errorf("%s: caller %s's batch is half-applied (%d of 5 rows)", what, tag, n)
			}
		}
	}
	applied := func(t *testing.T, what string, errs map[string]error) {
		t.Helper()
		for tag, err := range errs {
			if err != nil {
				t.Errorf("%s: caller %s got %v", what, tag, err)
			}
			if n := rowsOf(t, db, tag); n != 5 {
				t.Errorf("%s: caller %s: %d of 5 rows", what, tag, n)
			}
		}
	}

	t.Run("commit fails", func(t *testing.T) {
		bs := batches("cf")
		release := holdWriter(t, w, inj)
		remove := inj.Fail(storefault.Commit, errors.New("disk I/O error"))
		defer remove()
		wait := writeAll(ctx, w, bs)
		waitFor(t, "five writes are queued", func() bool { return len(w.reqs) == 5 })
		if err := release(); !errors.Is(err, storefault.ErrInjected) {
			t.Fatalf("gate write: %v", err)
		}
		expect(t, "failing commit", wait(), storefault.ErrInjected)
		remove()
		applied(t, "after the fault", writeAll(ctx, w, bs)())
	})

	t.Run("statement fails mid-transaction", func(t *testing.T) {
		bs := batches("sf")
		// The attempt rows are written after the update and delivery rows of the same batch.
		inj.Add(storefault.Rule{Op: storefault.Exec, Match: "INSERT INTO attempts", Times: 1})
		expect(t, "failing statement", writeAll(ctx, w, map[string]delivery.Batch{"sf0": bs["sf0"]})(), storefault.ErrInjected)
		applied(t, "after the fault", writeAll(ctx, w, bs)())
	})

	t.Run("commit hangs", func(t *testing.T) {
		bs := batches("ch")
		release := holdWriter(t, short, inj)
		remove := inj.Hang(storefault.Commit)
		defer remove()
		wait := writeAll(ctx, short, bs)
		waitFor(t, "five writes are queued", func() bool { return len(short.reqs) == 5 })
		commits := inj.Calls(storefault.Commit)
		if err := release(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("gate write: %v", err)
		}
		expect(t, "hanging commit", wait(), context.DeadlineExceeded)
		// A timeout is not retried batch by batch: the gate's commit, then one for the group.
		if got := inj.Calls(storefault.Commit) - commits; got != 2 {
			t.Errorf("%d commits, want 2: the gate's, then one for the timed-out group", got)
		}
		remove()
		applied(t, "after the fault", writeAll(ctx, w, bs)())
	})

	t.Run("statement hangs", func(t *testing.T) {
		bs := batches("sh")
		remove := inj.Add(storefault.Rule{Op: storefault.Exec, Match: "INSERT INTO parked", Block: true})
		defer remove()
		expect(t, "hanging statement", writeAll(ctx, short, map[string]delivery.Batch{"sh0": bs["sh0"]})(), context.DeadlineExceeded)
		remove()
		applied(t, "after the fault", writeAll(ctx, w, bs)())
	})

	t.Run("begin fails", func(t *testing.T) {
		bs := batches("bf")
		remove := inj.Fail(storefault.Begin, errors.New("connection refused"))
		defer remove()
		expect(t, "failing begin", writeAll(ctx, w, bs)(), storefault.ErrInjected)
		remove()
		applied(t, "after the fault", writeAll(ctx, w, bs)())
	})

	t.Run("commit applied but its answer lost", func(t *testing.T) {
		bs := batches("cl")
		inj.Add(storefault.Rule{Op: storefault.Commit, Applied: true, Times: 1})
		errs := writeAll(ctx, w, map[string]delivery.Batch{"cl0": bs["cl0"]})()
		if err := errs["cl0"]; !errors.Is(err, storefault.ErrInjected) {
			t.Fatalf("lost commit answer: %v", err)
		}
		// The caller heard a failure and writes again: the rows are there once, unchanged.
		applied(t, "written again", writeAll(ctx, w, bs)())
	})
}

// testWriterCallerGone has callers whose context ends before their batch is applied: a batch
// still queued is withdrawn and never applied (ErrNotApplied), and a batch whose transaction
// is running is reported as ErrOutcomeUnknown and may be applied.
func testWriterCallerGone(t *testing.T, b backend) {
	db, inj := openFaulty(t, b)
	w := NewStatusWriter(db)

	t.Run("queued", func(t *testing.T) {
		release := holdWriter(t, w, inj)
		ctx, cancel := context.WithCancel(context.Background())
		wait := writeAll(ctx, w, map[string]delivery.Batch{"q0": fullBatch("q0")})
		waitFor(t, "the write is queued", func() bool { return len(w.reqs) == 1 })
		cancel()
		if err := wait()["q0"]; !errors.Is(err, ErrNotApplied) || !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned queued write: %v", err)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		// Whatever the writer does next, the withdrawn batch is not part of it.
		if err := w.Write(context.Background(), fullBatch("q1")); err != nil {
			t.Fatal(err)
		}
		if n := rowsOf(t, db, "q0"); n != 0 {
			t.Fatalf("a write reported as not applied was applied (%d rows)", n)
		}
	})

	t.Run("in flight", func(t *testing.T) {
		commits := inj.Calls(storefault.Commit)
		remove := inj.Add(storefault.Rule{Op: storefault.Commit, Block: true, Times: 1})
		defer remove()
		ctx, cancel := context.WithCancel(context.Background())
		wait := writeAll(ctx, w, map[string]delivery.Batch{"f0": fullBatch("f0")})
		waitFor(t, "the commit is under way", func() bool { return inj.Calls(storefault.Commit) > commits })
		cancel()
		if err := wait()["f0"]; !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("abandoned write in flight: %v", err)
		}
		remove() // the commit goes ahead: "may be applied" was the truth
		w.Close()
		if n := rowsOf(t, db, "f0"); n != 5 {
			t.Fatalf("in-flight write: %d of 5 rows after its commit went ahead", n)
		}
	})
}

// testWriterClose: writes handed over before Close are applied, Close waits for them and may
// be called again, and a write after Close returns ErrClosed instead of panicking, also when
// racing with Close.
func testWriterClose(t *testing.T, b backend) {
	ctx := context.Background()
	db, inj := openFaulty(t, b)
	w := NewStatusWriter(db)

	release := holdWriter(t, w, inj)
	bs := map[string]delivery.Batch{}
	for i := range 5 {
		bs[fmt.Sprint("k", i)] = fullBatch(fmt.Sprint("k", i))
	}
	wait := writeAll(ctx, w, bs)
	waitFor(t, "five writes are queued", func() bool { return len(w.reqs) == 5 })
	closed := make(chan struct{})
	go func() {
		w.Close()
		close(closed)
	}()
	waitFor(t, "Close has shut the queue", func() bool {
		w.mu.RLock()
		defer w.mu.RUnlock()
		return w.closed
	})
	if err := w.Write(ctx, fullBatch("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned before the queued writes were applied")
	default:
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	<-closed
	for tag, err := range wait() {
		if err != nil || rowsOf(t, db, tag) != 5 {
			t.Errorf("write %s queued before Close: %v, %d rows", tag, err, rowsOf(t, db, tag))
		}
	}
	if n := rowsOf(t, db, "late"); n != 0 {
		t.Errorf("the write refused after Close left %d rows", n)
	}
	w.Close() // again: returns at once

	// Writes racing with Close: each is applied or refused with ErrClosed, never lost.
	w = NewStatusWriter(db)
	var wg sync.WaitGroup
	results := make([]error, 40)
	for i := range results {
		wg.Go(func() { results[i] = w.Write(ctx, fullBatch(fmt.Sprint("r", i))) })
	}
	wg.Go(w.Close)
	wg.Go(w.Close)
	wg.Wait()
	for i, err := range results {
		tag := fmt.Sprint("r", i)
		switch n := rowsOf(t, db, tag); {
		case err == nil && n == 5, errors.Is(err, ErrClosed) && n == 0:
		default:
			t.Errorf("write %s racing Close: %v with %d rows", tag, err, n)
		}
	}
}

// testWriterFallbackBudget: when a group fails and each batch is then applied on its own, those
// applies share one apply timeout. A store that answers every transaction slowly with an
// error (SQLite's busy timeout, say) holds the group for about two apply timeouts, not one per
// batch, and every caller hears an error.
func testWriterFallbackBudget(t *testing.T, b backend) {
	db, inj := openFaulty(t, b)
	w := newStatusWriter(db, 300*time.Millisecond, defaultHold)
	defer w.Close()

	release := holdWriter(t, w, inj)
	batches := map[string]delivery.Batch{}
	for i := range 8 {
		batches[fmt.Sprint("s", i)] = fullBatch(fmt.Sprint("s", i))
	}
	wait := writeAll(context.Background(), w, batches)
	waitFor(t, "eight writes are queued", func() bool { return len(w.reqs) == 8 })
	// The group fails at once; then every BEGIN takes 200 ms and fails.
	inj.Add(storefault.Rule{Op: storefault.Exec, MatchArg: "_s", Times: 1, Err: errors.New("deadlock detected")})
	inj.Add(storefault.Rule{Op: storefault.Begin, After: 1, Delay: 200 * time.Millisecond, Err: errors.New("database is locked")})
	begins := inj.Calls(storefault.Begin)
	release() // the gate's own outcome does not matter here
	for tag, err := range wait() {
		if !errors.Is(err, storefault.ErrInjected) {
			t.Errorf("caller %s got %v", tag, err)
		}
	}
	// The gate's BEGIN was counted already; then come the group's and at most two of 200 ms within
	// the shared 300 ms: not all eight.
	if got := inj.Calls(storefault.Begin) - begins - 1; got > 2 {
		t.Errorf("%d batches tried one by one after the group failed, want at most 2 within one apply timeout", got)
	}
}
