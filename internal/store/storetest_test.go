package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pgSkipMessage is what the PostgreSQL runs say when QGATE_TEST_DATABASE_URL is unset. When it
// is set but the server cannot be reached, they fail: CI must not pass silently.
const pgSkipMessage = "PostgreSQL suite skipped: set QGATE_TEST_DATABASE_URL=postgres://... to run it"

// backend makes fresh, empty databases of one dialect for tests and benchmarks.
type backend struct {
	name string
	// fresh returns the Open arguments of a new, empty database that is removed at cleanup.
	fresh func(tb testing.TB) (url, dir string)
}

var (
	sqliteBackend   = backend{name: "sqlite", fresh: freshSQLite}
	postgresBackend = backend{name: "postgres", fresh: freshPostgres}
	backends        = []backend{sqliteBackend, postgresBackend}
)

// open opens a store on a fresh database of b.
func (b backend) open(tb testing.TB) *DB {
	tb.Helper()
	url, dir := b.fresh(tb)
	return openAt(tb, url, dir)
}

// openAt opens (and migrates) the store at url/dir, closing it at cleanup.
func openAt(tb testing.TB, url, dir string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, url, dir)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func freshSQLite(tb testing.TB) (string, string) {
	return "", filepath.Join(tb.TempDir(), "data")
}

// freshPostgres creates a schema with a random name in the database of QGATE_TEST_DATABASE_URL
// and returns that URL with search_path set to it; the schema is dropped at cleanup. It skips
// when the variable is unset and fails when the server cannot be reached.
func freshPostgres(tb testing.TB) (string, string) {
	tb.Helper()
	base := os.Getenv("QGATE_TEST_DATABASE_URL")
	if base == "" {
		tb.Skip(pgSkipMessage)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("QGATE_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "10")
	}
	u.RawQuery = q.Encode()
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		tb.Fatalf("QGATE_TEST_DATABASE_URL: %v", err)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	schema := "qgate_test_" + hex.EncodeToString(rb[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		tb.Fatalf("PostgreSQL at QGATE_TEST_DATABASE_URL: create schema: %v", err)
	}
	tb.Cleanup(func() {
		// Runs after the cleanups of the stores opened on it (cleanups run last-in first-out).
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), ""
}

// openSQLiteForTest opens a fresh SQLite store in a temp dir.
func openSQLiteForTest(tb testing.TB) *DB { return sqliteBackend.open(tb) }

// openPostgresForTest opens the PostgreSQL of QGATE_TEST_DATABASE_URL in a fresh schema that is
// dropped at cleanup; it skips when the variable is unset.
func openPostgresForTest(tb testing.TB) *DB { return postgresBackend.open(tb) }

// TestStore runs the same store suite on SQLite and on PostgreSQL.
func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				requirePostgres(t)
			}
			suite(t, b)
		})
	}
}

// requirePostgres skips when QGATE_TEST_DATABASE_URL is unset and fails, once, when it is set
// but the server does not answer.
func requirePostgres(t *testing.T) {
	t.Helper()
	base := os.Getenv("QGATE_TEST_DATABASE_URL")
	if base == "" {
		t.Skip(pgSkipMessage)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("QGATE_TEST_DATABASE_URL: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("QGATE_TEST_DATABASE_URL is set but PostgreSQL does not answer: %v", err)
	}
}

// suite is the store suite; each part gets a fresh database of b.
func suite(t *testing.T, b backend) {
	t.Run("migrations", func(t *testing.T) { testMigrations(t, b) })
	t.Run("concurrent migrations", func(t *testing.T) { testConcurrentMigrations(t, b) })
	t.Run("keys", func(t *testing.T) { testKeys(t, b.open(t)) })
	t.Run("destinations", func(t *testing.T) { testDestinations(t, b.open(t)) })
	t.Run("apply", func(t *testing.T) { testApply(t, b.open(t)) })
	t.Run("upsert rules", func(t *testing.T) { testUpsertRules(t, b.open(t)) })
	t.Run("first attempt on the delivery row", func(t *testing.T) { testFirstAttemptOnRow(t, b.open(t)) })
	t.Run("batch equivalence", func(t *testing.T) { testBatchEquivalence(t, b.open(t)) })
	t.Run("status writer", func(t *testing.T) { testStatusWriter(t, b.open(t)) })
	t.Run("prune", func(t *testing.T) { testPrune(t, b.open(t)) })
	t.Run("pruner", func(t *testing.T) { testRunPruner(t, b.open(t)) })
	t.Run("query plans", func(t *testing.T) { testQueryPlans(t, b.open(t)) })
	t.Run("destination stats", func(t *testing.T) { testDestinationStats(t, b.open(t)) })
	t.Run("search deliveries", func(t *testing.T) { testSearchDeliveries(t, b.open(t)) })
	t.Run("replay dead letters", func(t *testing.T) { testReplayDeadLetters(t, b.open(t)) })
	t.Run("last alert", func(t *testing.T) { testLastAlert(t, b.open(t)) })
	t.Run("alert episodes", func(t *testing.T) { testAlertEpisodes(t, b.open(t)) })
	t.Run("parked due rounds up", func(t *testing.T) { testParkedDueRoundsUp(t, b.open(t)) })
	t.Run("finished", func(t *testing.T) { testFinished(t, b.open(t)) })
	t.Run("destination claims", func(t *testing.T) { testClaims(t, b.open(t)) })
	t.Run("hostile text", func(t *testing.T) { testHostileText(t, b.open(t)) })
	t.Run("writer isolates a bad batch", func(t *testing.T) { testWriterIsolatesBadBatch(t, b) })
	t.Run("writer store faults", func(t *testing.T) { testWriterStoreFaults(t, b) })
	t.Run("writer caller gone", func(t *testing.T) { testWriterCallerGone(t, b) })
	t.Run("writer close", func(t *testing.T) { testWriterClose(t, b) })
	t.Run("writer fallback budget", func(t *testing.T) { testWriterFallbackBudget(t, b) })
	t.Run("writer holds pending rows", func(t *testing.T) { testWriterHold(t, b) })
	t.Run("writer hold faults", func(t *testing.T) { testWriterHoldFaults(t, b) })
}
