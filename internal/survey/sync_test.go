package survey_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/survey"
)

const brandToken = "sync-brand-token-1"

// syncEnv is a real SQLite store, the simulator over HTTP with one brand, and a Syncer.
type syncEnv struct {
	db     *store.DB
	brand  *simulator.Brand
	syncer *survey.Syncer
	svc    *survey.Service
	pub    *recordingPublisher
	waits  []time.Duration
	conn   survey.Connection
}

// recordingPublisher keeps what was published (the notify outbox is tested on its own).
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []notify.Message
	seen map[string]bool
}

func (p *recordingPublisher) Publish(_ context.Context, msgs []notify.Message) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	n := 0
	for _, m := range msgs {
		if !p.seen[m.ID] {
			p.seen[m.ID] = true
			p.msgs = append(p.msgs, m)
			n++
		}
	}
	return n, nil
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	sim, srv, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	db, err := store.Open(context.Background(), "", filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	box, err := destination.NewBox([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &syncEnv{db: db, brand: sim.AddBrand("syncbrand", brandToken), pub: &recordingPublisher{}}
	policy := qualtrics.HostPolicy{AllowPrivate: true}
	client := survey.NewClient(survey.ClientOptions{Policy: policy})
	client.Sleep = func(ctx context.Context, d time.Duration) error { e.waits = append(e.waits, d); return nil }
	e.syncer = &survey.Syncer{Store: db, Box: box, Client: client, Publisher: e.pub, Budget: survey.Budget{Max: 500}, Node: "node-a"}
	e.svc = &survey.Service{Store: db, Box: box, Policy: policy, Client: client}
	name, base, tok, lead := "sync", srv.URL+"/API/v3/", brandToken, survey.Duration(24*time.Hour)
	e.conn, err = e.svc.Create(context.Background(), survey.ConnectionRequest{Name: &name, BaseURL: &base, APIToken: &tok, ExpiryLead: &lead})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run syncs the connection as stored now.
func (e *syncEnv) run(t *testing.T, mode string) (survey.SyncRun, error) {
	t.Helper()
	c, err := e.db.GetSurveyConnection(context.Background(), e.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	return e.syncer.Sync(context.Background(), c, mode)
}

func recipients(t *testing.T, db *store.DB, dist string) map[string]string {
	t.Helper()
	_, rs, err := db.GetDistribution(context.Background(), dist)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rs {
		out[r.Email] = r.Status
	}
	return out
}

// TestSyncFullThenIncremental: a full sync follows nextPage through every list; an
// incremental one asks for surveys by lastModified, skips users and directories, and still
// sees a recipient finishing (which does not touch lastModified) through the history of live
// distributions.
func TestSyncFullThenIncremental(t *testing.T) {
	e := newSyncEnv(t)
	e.brand.SetPageSize(2)
	run, err := e.run(t, survey.ModeFull)
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	want := survey.Counts{Users: 3, Surveys: 9, Distributions: 3, History: 8, Links: 8, Directories: 1, Contacts: 7, Notifications: run.Counts.Notifications}
	if run.Counts != want {
		t.Fatalf("full counts %+v, want %+v", run.Counts, want)
	}
	calls := e.brand.Calls()
	if calls["surveys"] != 5 || calls["contacts"] != 4 || calls["history"] != 2+1+1 {
		t.Errorf("full sync calls %v: want 5 pages of surveys, 4 of contacts, 4 of history (2+1+1)", calls)
	}
	if got := recipients(t, e.db, simulator.BrandDistPulse); got["alice@example.com"] != "Success" || len(got) != 4 {
		t.Fatalf("pulse recipients %v", got)
	}

	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "alice@example.com", "SurveyFinished")
	before := e.brand.Calls()
	run, err = e.run(t, survey.ModeIncremental)
	if err != nil {
		t.Fatalf("incremental sync: %v", err)
	}
	after := e.brand.Calls()
	if after["users"] != before["users"] || after["directories"] != before["directories"] {
		t.Errorf("incremental sync fetched users or directories: %v → %v", before, after)
	}
	if after["surveys"]-before["surveys"] != 1 {
		t.Errorf("incremental sync listed surveys %d times, want 1 (nothing modified)", after["surveys"]-before["surveys"])
	}
	if got := recipients(t, e.db, simulator.BrandDistPulse); got["alice@example.com"] != "SurveyFinished" {
		t.Fatalf("incremental sync missed alice finishing: %v", got)
	}
	// The survey refreshed for its live distribution keeps its dates and name (GET
	// surveys/{id} says lastModifiedDate where the list says lastModified).
	if sv, _, err := e.db.GetSurvey(context.Background(), simulator.BrandSurveyPulse); err != nil || sv.LastModified.Year() < 2000 ||
		sv.CreationDate.Year() < 2000 || sv.Name != "Quarterly Pulse" || !sv.IsActive {
		t.Errorf("pulse after incremental: %+v %v", sv, err)
	}
	// The expired distribution's history was not fetched again, and its data is still there.
	if got := recipients(t, e.db, simulator.BrandDistOld); len(got) != 2 {
		t.Errorf("old distribution after incremental: %v", got)
	}
	if after["history"]-before["history"] != 3 {
		t.Errorf("incremental fetched %d history pages, want 3 (2+1 of the two live distributions)", after["history"]-before["history"])
	}
	// A touched survey comes back through lastModified.
	e.brand.TouchSurvey(simulator.BrandSurveyOld, "Old Feedback (renamed)")
	if _, err := e.run(t, survey.ModeIncremental); err != nil {
		t.Fatal(err)
	}
	sv, _, err := e.db.GetSurvey(context.Background(), simulator.BrandSurveyOld)
	if err != nil || sv.Name != "Old Feedback (renamed)" {
		t.Errorf("touched survey: %+v %v", sv, err)
	}
}

// TestSyncHonours429: per-endpoint 429s are waited out for their Retry-After, within the
// request budget; a budget too small ends the sync, keeping the last good data.
func TestSyncHonours429(t *testing.T) {
	e := newSyncEnv(t)
	e.brand.Throttle("history", 2, 3)
	run, err := e.run(t, survey.ModeFull)
	if err != nil {
		t.Fatalf("sync with 429s: %v", err)
	}
	if len(e.waits) != 2 || e.waits[0] != 3*time.Second || e.waits[1] != 3*time.Second {
		t.Errorf("waits %v, want two of 3s (Retry-After)", e.waits)
	}
	good := run.Requests
	if good < 20 {
		t.Errorf("requests %d", good)
	}

	e.syncer.Budget = survey.Budget{Max: 5}
	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "bob@example.com", "SurveyFinished")
	run, err = e.run(t, survey.ModeFull)
	if !errors.Is(err, survey.ErrBudgetExhausted) || run.Outcome != survey.OutcomeFailed || run.Requests != 5 {
		t.Fatalf("over budget: run %+v err %v", run, err)
	}
	if got := recipients(t, e.db, simulator.BrandDistPulse); got["bob@example.com"] != "SurveyStarted" {
		t.Errorf("a failed sync changed the data: %v", got)
	}
	c, _ := e.db.GetSurveyConnection(context.Background(), e.conn.ID)
	if c.LastSync == nil || c.LastSync.Outcome != survey.OutcomeFailed || !strings.Contains(c.LastSync.Error, "budget") ||
		c.LastGoodSync == nil || c.LastGoodSync.ID == c.LastSync.ID {
		t.Errorf("connection after the failed sync: last %+v good %+v", c.LastSync, c.LastGoodSync)
	}
}

// TestSyncTokenRevokedMidway: the token stops working in the middle of a sync; the sync fails
// with Qualtrics' error, the data of the last good sync stays, and no notification is
// published from the half-fetched state.
func TestSyncTokenRevokedMidway(t *testing.T) {
	e := newSyncEnv(t)
	if _, err := e.run(t, survey.ModeFull); err != nil {
		t.Fatal(err)
	}
	published := len(e.pub.msgs)
	e.brand.AddRecipient(simulator.BrandDistPulse, "late@example.com", "Late", "Comer", "Success")
	e.brand.RevokeAfter(6)
	run, err := e.run(t, survey.ModeFull)
	var ae *survey.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "DCD_7" {
		t.Fatalf("sync with a revoked token: %v", err)
	}
	if run.Outcome != survey.OutcomeFailed || !strings.Contains(run.Error, "DCD_7") || strings.Contains(run.Error, brandToken) {
		t.Errorf("run %+v", run)
	}
	if got := recipients(t, e.db, simulator.BrandDistPulse); len(got) != 4 {
		t.Errorf("data after the failed sync: %v", got)
	}
	if len(e.pub.msgs) != published {
		t.Errorf("a failed sync published %d notifications", len(e.pub.msgs)-published)
	}
	// The token works again: the next sync catches up, late@ gets their request once.
	e.brand.Revoke(false)
	if _, err := e.run(t, survey.ModeFull); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range e.pub.msgs {
		if m.Type == notify.TypeSurveyRequest && strings.Contains(string(m.Body), "late@example.com") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("late@ got %d survey.request, want 1", n)
	}
}

// TestConnectionTest: test calls whoami and reports a bad token as Qualtrics answered.
func TestConnectionTest(t *testing.T) {
	e := newSyncEnv(t)
	res, err := e.svc.Test(context.Background(), e.conn.ID)
	if err != nil || !res.OK || res.BrandID != "syncbrand" {
		t.Fatalf("test: %+v %v", res, err)
	}
	e.brand.Revoke(true)
	res, err = e.svc.Test(context.Background(), e.conn.ID)
	if err != nil || res.OK || res.StatusCode != 401 || res.ErrorCode != "DCD_7" {
		t.Fatalf("test with a revoked token: %+v %v", res, err)
	}
}
