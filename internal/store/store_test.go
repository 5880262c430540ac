package store

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"
)

// migrationNames lists the embedded migrations of a dialect.
func migrationNames(t *testing.T, d Dialect) []string {
	t.Helper()
	entries, err := fs.ReadDir(migrations, "migrations/"+string(d))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	return names
}

// checkMigrated asserts that every embedded migration is recorded exactly once.
func checkMigrated(t *testing.T, db *DB) {
	t.Helper()
	want := migrationNames(t, db.Dialect())
	rows, err := db.db.QueryContext(context.Background(), `SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v string
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("migration %s recorded %d times", v, n)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("applied migrations %v, want %v", got, want)
	}
}

// testMigrations opens the same database twice: the second open applies nothing and keeps the
// data of the first.
func testMigrations(t *testing.T, b backend) {
	ctx := context.Background()
	url, dir := b.fresh(t)
	first := openAt(t, url, dir)
	checkMigrated(t, first)
	if err := first.CreateKey(ctx, sampleKey("k1", "first", t0)); err != nil {
		t.Fatal(err)
	}
	first.Close()

	again := openAt(t, url, dir)
	checkMigrated(t, again)
	if _, err := again.GetKey(ctx, "k1"); err != nil {
		t.Fatalf("data kept across reopen: %v", err)
	}
	if err := again.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// testConcurrentMigrations opens several nodes on one fresh PostgreSQL schema at the same
// moment: the advisory lock lets one apply the migrations and the others find them applied.
// SQLite serves one node, so it has no such case.
func testConcurrentMigrations(t *testing.T, b backend) {
	if b.name != "postgres" {
		t.Skip("SQLite serves one node")
	}
	const nodes = 4
	url, dir := b.fresh(t)
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = Open(context.Background(), url, dir)
		})
	}
	close(start)
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, db := range dbs {
		checkMigrated(t, db)
	}
}
