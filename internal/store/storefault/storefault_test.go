package storefault_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/qgate/qgate/internal/store/storefault"
)

// open returns a SQLite database with a table t(v) behind inj. (The store suite runs the
// injector on PostgreSQL too, through store.OpenWith.)
func open(t *testing.T, inj *storefault.Injector) *sql.DB {
	t.Helper()
	c, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "f.db") + "?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(inj.Wrap(c))
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// insertTx inserts v in a transaction and commits it.
func insertTx(ctx context.Context, db *sql.DB, v string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES ($1)`, v); err != nil {
		return err
	}
	return tx.Commit()
}

func TestRuleSelection(t *testing.T) {
	inj := storefault.New()
	db := open(t, inj)
	// The second and third INSERT fail; the first and fourth pass; other statements never.
	inj.Add(storefault.Rule{Op: storefault.Exec, Match: "INSERT", After: 1, Times: 2})
	var got []bool
	for _, v := range []string{"a", "b", "c", "d"} {
		_, err := db.Exec(`INSERT INTO t (v) VALUES ($1)`, v)
		if err != nil && !errors.Is(err, storefault.ErrInjected) {
			t.Fatal(err)
		}
		got = append(got, err == nil)
	}
	if want := []bool{true, false, false, true}; !slices.Equal(got, want) {
		t.Fatalf("INSERT outcomes %v, want %v", got, want)
	}
	if _, err := db.Exec(`DELETE FROM t WHERE v = 'zzz'`); err != nil {
		t.Fatalf("a statement the rule does not match: %v", err)
	}
	if inj.Fired(storefault.Exec) != 2 {
		t.Fatalf("fired %d times", inj.Fired(storefault.Exec))
	}

	// By argument, with the test's own error, on prepared statements too.
	mine := errors.New("mine")
	remove := inj.Add(storefault.Rule{Op: storefault.Exec, MatchArg: "bad", Err: mine})
	st, err := db.Prepare(`INSERT INTO t (v) VALUES ($1)`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Exec("good"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Exec("a bad one"); !errors.Is(err, mine) || !errors.Is(err, storefault.ErrInjected) {
		t.Fatalf("by argument: %v", err)
	}
	remove()
	remove() // harmless
	if _, err := st.Exec("a bad one"); err != nil {
		t.Fatalf("after remove: %v", err)
	}

	inj.Fail(storefault.Query, nil)
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(new(int)); !errors.Is(err, storefault.ErrInjected) {
		t.Fatalf("query: %v", err)
	}
	inj.Clear()
	if n := count(t, db); n != 4 {
		t.Fatalf("%d rows, want a, d, good, a bad one", n)
	}
}

func TestCommitFaults(t *testing.T) {
	ctx := context.Background()
	inj := storefault.New()
	db := open(t, inj)
	db.SetMaxOpenConns(1) // the same connection serves every transaction below

	remove := inj.Fail(storefault.Commit, nil)
	if err := insertTx(ctx, db, "x"); !errors.Is(err, storefault.ErrInjected) {
		t.Fatalf("failed commit: %v", err)
	}
	remove()
	if n := count(t, db); n != 0 {
		t.Fatalf("a failed commit left %d rows", n)
	}
	if err := insertTx(ctx, db, "y"); err != nil {
		t.Fatalf("the connection after a failed commit: %v", err)
	}

	inj.Add(storefault.Rule{Op: storefault.Commit, Applied: true, Times: 1})
	if err := insertTx(ctx, db, "z"); !errors.Is(err, storefault.ErrInjected) {
		t.Fatalf("commit applied, answer lost: %v", err)
	}
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows after an applied commit, want 2", n)
	}

	// A hanging commit fails when the transaction's context ends, and applies nothing.
	remove = inj.Hang(storefault.Commit)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := insertTx(tctx, db, "h")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging commit: %v", err)
	}
	remove()
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows after a timed-out commit, want 2", n)
	}
}

func TestBlockAndDelay(t *testing.T) {
	ctx := context.Background()
	inj := storefault.New()
	db := open(t, inj)

	// A blocked call proceeds once its rule is removed.
	remove := inj.Hang(storefault.Exec)
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES ('b')`)
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); inj.Fired(storefault.Exec) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the driver")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("a blocked call returned: %v", err)
	default:
	}
	remove()
	if err := <-done; err != nil {
		t.Fatalf("released call: %v", err)
	}

	// A delay without an error slows the call down; one longer than the context fails it.
	remove = inj.Add(storefault.Rule{Op: storefault.Begin, Delay: 20 * time.Millisecond})
	start := time.Now()
	if err := insertTx(ctx, db, "d"); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("delayed begin: %v after %s", err, time.Since(start))
	}
	remove()
	inj.Add(storefault.Rule{Op: storefault.Begin, Delay: time.Minute})
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := insertTx(tctx, db, "late"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delay past the context: %v", err)
	}
	inj.Clear()
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows, want b and d", n)
	}
}

func TestConnect(t *testing.T) {
	inj := storefault.New()
	db := open(t, inj)
	db.SetMaxIdleConns(0) // every call opens a connection
	inj.Fail(storefault.Connect, errors.New("connection refused"))
	if err := db.Ping(); !errors.Is(err, storefault.ErrInjected) {
		t.Fatalf("ping while connecting fails: %v", err)
	}
	inj.Clear()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if inj.Calls(storefault.Connect) < 2 {
		t.Fatalf("%d connects", inj.Calls(storefault.Connect))
	}
}

func TestStatementsCountsEachTextPerOp(t *testing.T) {
	inj := storefault.New()
	db := open(t, inj) // runs CREATE TABLE once
	before := inj.Statements()
	st, err := db.Prepare(`INSERT INTO t (v) VALUES ($1)`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, v := range []string{"a", "b", "c"} {
		if _, err := st.Exec(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := insertTx(context.Background(), db, "d"); err != nil {
		t.Fatal(err)
	}
	defer inj.Fail(storefault.Exec, nil)() // faulted calls are counted too
	if _, err := db.Exec(`INSERT INTO t (v) VALUES ($1)`, "e"); err == nil {
		t.Fatal("the rule did not fire")
	}
	_ = count(t, db)
	after := inj.Statements()
	ins := storefault.Statement{Op: storefault.Exec, Query: `INSERT INTO t (v) VALUES ($1)`}
	sel := storefault.Statement{Op: storefault.Query, Query: `SELECT COUNT(*) FROM t`}
	if n := after[ins] - before[ins]; n != 5 {
		t.Errorf("INSERT ran %d times, want 5 (3 prepared, 1 in a transaction, 1 faulted)", n)
	}
	if n := after[sel] - before[sel]; n != 1 {
		t.Errorf("SELECT ran %d times, want 1", n)
	}
	if before[storefault.Statement{Op: storefault.Exec, Query: `CREATE TABLE t (v TEXT NOT NULL)`}] != 1 {
		t.Errorf("CREATE TABLE not counted: %v", before)
	}
	after[ins] = 1000 // a copy
	if inj.Statements()[ins] == 1000 {
		t.Error("Statements returned the injector's own map")
	}
}
