package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/simulator"
)

// surveyPG returns a URL for a fresh schema on the test PostgreSQL, dropped at cleanup. It
// skips, saying so, when QGATE_TEST_DATABASE_URL is unset, and fails when it is set but the
// server does not answer.
func surveyPG(t *testing.T) string {
	t.Helper()
	base := os.Getenv("QGATE_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("PostgreSQL test skipped: set QGATE_TEST_DATABASE_URL=postgres://... to run it")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("QGATE_TEST_DATABASE_URL: %v", err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	schema := "qgate_survey_" + hex.EncodeToString(rb[:])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("QGATE_TEST_DATABASE_URL is set but PostgreSQL does not answer: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		db.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// nodeOn starts another node sharing e's secret key, with its own data dir and broker, on
// databaseURL ("" for SQLite in dataDir).
func (e *surveyEnv) nodeOn(t *testing.T, databaseURL, dataDir string) *surveyEnv {
	n := startNode(t, func(c *config.Config) {
		c.AllowPrivateNetworks = true
		c.SecretKey = strings.Repeat("ef", 32)
		c.RetryBaseDelay, c.RetryMaxDelay, c.BreakerTimeout = 20*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		c.DatabaseURL = databaseURL
		if dataDir != "" {
			c.DataDir = dataDir
		}
	})
	return &surveyEnv{n: n, sim: e.sim, simU: e.simU, brand: e.brand, sink: e.sink, op: e.op, sup: e.sup}
}

// uniqueHits fails when a webhook-id arrived twice and returns the hits by type.
func uniqueHits(t *testing.T, s *webhookSink) map[string][]string {
	t.Helper()
	seen := map[string]int{}
	for _, h := range s.hits() {
		seen[h.ID]++
		if !h.Verified {
			t.Errorf("%s: signature does not verify", h.ID)
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("notification %s arrived %d times", id, n)
		}
	}
	return s.byType()
}

// TestSurveyNotificationsTwoNodesPostgres: two nodes on one PostgreSQL, each asked to sync at
// once: every notification still arrives exactly once.
func TestSurveyNotificationsTwoNodesPostgres(t *testing.T) {
	dbURL := surveyPG(t)
	a := startSurveyEnv(t, func(c *config.Config) { c.DatabaseURL = dbURL })
	b := a.nodeOn(t, dbURL, "")
	a.channel(t, notify.Types...)
	c := a.connect(t, "24h")

	// Both nodes are asked at the same moment.
	var wg sync.WaitGroup
	for _, e := range []*surveyEnv{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.n.do("POST", "/v1/survey-connections/"+c.ID+"/sync", e.op, nil)
		}()
	}
	wg.Wait()
	a.waitSynced(t, c.ID)
	b.sync(t, c.ID) // and once more through b
	a.settle(t)
	b.settle(t)
	want := map[string][]string{
		"survey.request":  {"alice@example.com", "bob@example.com", "erin@example.com", "frank@example.com"},
		"survey.expiring": {"alice@example.com", "bob@example.com"},
		"survey.stats":    {""},
	}
	if got := uniqueHits(t, a.sink); !equalTypes(got, want) {
		t.Fatalf("two nodes: %v, want %v", got, want)
	}

	a.brand.AddRecipient(simulator.BrandDistPulse, "nia@example.com", "Nia", "New", "Success")
	for _, e := range []*surveyEnv{a, b, a} {
		e.sync(t, c.ID)
	}
	a.settle(t)
	b.settle(t)
	want["survey.request"] = append(want["survey.request"], "nia@example.com")
	want["survey.expiring"] = append(want["survey.expiring"], "nia@example.com")
	if got := uniqueHits(t, a.sink); !equalTypes(got, want) {
		t.Fatalf("after nia, three syncs over two nodes: %v, want %v", got, want)
	}
}

// waitSynced waits until the connection has a finished sync and no pending request.
func (e *surveyEnv) waitSynced(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, body, _ := e.n.do("GET", "/v1/survey-connections/"+id, e.op, nil)
		c := decode[struct {
			SyncRequestedAt *time.Time `json:"syncRequestedAt"`
			LastSync        *struct{ Outcome string }
		}](t, body)
		if c.SyncRequestedAt == nil && c.LastSync != nil && c.LastSync.Outcome == "succeeded" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("connection %s not synced in 20 s", id)
}

// TestSurveyNotificationsAcrossRestart: a node syncs and notifies, stops; a new process on
// the same data dir syncs again: nothing is sent twice, and a new recipient is told once.
func TestSurveyNotificationsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	first := startSurveyEnv(t, nil)
	// The first node is this test's own, on dir, so that it can stop before the second starts.
	n, stop := startStoppableNode(t, func(c *config.Config) {
		c.AllowPrivateNetworks = true
		c.SecretKey = strings.Repeat("ef", 32)
		c.DataDir = dir
	})
	first.n = n
	first.op, first.sup = n.createKey("operator"), n.createKey("support")
	first.channel(t, notify.TypeSurveyRequest)
	c := first.connect(t, "24h")
	first.sync(t, c.ID)
	first.settle(t)
	before := len(first.sink.hits())
	if before != 4 {
		t.Fatalf("first node delivered %d, want 4 survey.request", before)
	}
	stop()

	second := first.nodeOn(t, "", dir)
	second.sync(t, c.ID)
	second.settle(t)
	if got := len(second.sink.hits()); got != before {
		t.Fatalf("after the restart %d notifications arrived, want none new (%d)", got-before, before)
	}
	second.brand.AddRecipient(simulator.BrandDistOnboarding, "omar@example.com", "Omar", "Olsen", "Success")
	second.sync(t, c.ID)
	second.settle(t)
	if got := uniqueHits(t, second.sink)["survey.request"]; len(got) != before+1 {
		t.Fatalf("after the restart and a new recipient: %v", got)
	}
}

// startStoppableNode is startNode with the shutdown in the test's hands: stop shuts the node
// down (once; cleanup calls it too).
func startStoppableNode(t *testing.T, mutate func(*config.Config)) (*node, func()) {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminKey = testAdminKey
	cfg.Partitions = 4
	mutate(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	addr, err := a.Start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := a.Shutdown(sctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &node{t: t, app: a, base: "http://" + addr, logs: logs}, stop
}
