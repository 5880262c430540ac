package survey_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/survey"
)

// fakeSched is the scheduler's view of the store, in memory, with claims.
type fakeSched struct {
	mu     sync.Mutex
	conns  map[string]survey.Connection
	claims map[string]string
}

func (f *fakeSched) ListSurveyConnections(context.Context) ([]survey.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []survey.Connection
	for _, c := range f.conns {
		out = append(out, c)
	}
	return out, nil
}

func (f *fakeSched) GetSurveyConnection(_ context.Context, id string) (survey.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[id], nil
}

func (f *fakeSched) ClaimSurveyConnection(_ context.Context, id, node string, _ time.Time, _ time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.claims[id]; ok && h != node {
		return false, nil
	}
	f.claims[id] = node
	return true, nil
}

func (f *fakeSched) ReleaseSurveyConnection(_ context.Context, id, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claims[id] == node {
		delete(f.claims, id)
	}
	return nil
}

type syncCall struct {
	mode string
	at   time.Duration
}

// schedule runs a scheduler for d in a synctest bubble and returns the syncs it ran; fail
// makes every sync fail; setup may change the store first.
func schedule(t *testing.T, d time.Duration, fail bool, setup func(*fakeSched, *survey.Scheduler)) []syncCall {
	var calls []syncCall
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		f := &fakeSched{conns: map[string]survey.Connection{"svc_1": {ID: "svc_1",
			IncrementalEvery: survey.Duration(15 * time.Minute), FullEvery: survey.Duration(time.Hour)}}, claims: map[string]string{}}
		s := survey.NewScheduler(f, func(_ context.Context, c survey.Connection, mode string) (survey.SyncRun, error) {
			now := time.Now()
			calls = append(calls, syncCall{mode, now.Sub(start).Round(time.Second)})
			f.mu.Lock()
			defer f.mu.Unlock()
			c = f.conns[c.ID]
			run := survey.SyncRun{Mode: mode, StartedAt: now, EndedAt: &now, Outcome: survey.OutcomeSucceeded}
			if fail {
				run.Outcome = survey.OutcomeFailed
				c.LastSync = &run
				f.conns[c.ID] = c
				return run, errors.New("qualtrics answered 503")
			}
			c.LastSync, c.LastIncrementalAt, c.SurveysSince = &run, &now, &now
			if mode == survey.ModeFull {
				c.LastFullAt, c.SyncRequestedAt = &now, nil
			}
			f.conns[c.ID] = c
			return run, nil
		}, "node-a")
		s.Tick = time.Minute
		if setup != nil {
			setup(f, s)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		time.Sleep(d)
		cancel()
		<-done
	})
	return calls
}

func TestScheduleFullHourlyIncrementalQuarterly(t *testing.T) {
	got := schedule(t, 2*time.Hour+time.Second, false, nil)
	want := []syncCall{{"full", 0}, {"incremental", 15 * time.Minute}, {"incremental", 30 * time.Minute}, {"incremental", 45 * time.Minute},
		{"full", time.Hour}, {"incremental", 75 * time.Minute}, {"incremental", 90 * time.Minute}, {"incremental", 105 * time.Minute}, {"full", 2 * time.Hour}}
	if !slices.Equal(got, want) {
		t.Fatalf("syncs %v\nwant  %v", got, want)
	}
}

func TestScheduleBacksOffAfterFailure(t *testing.T) {
	got := schedule(t, 16*time.Minute, true, nil)
	want := []syncCall{{"full", 0}, {"full", 5 * time.Minute}, {"full", 10 * time.Minute}, {"full", 15 * time.Minute}}
	if !slices.Equal(got, want) {
		t.Fatalf("syncs %v, want %v (one attempt per RetryFailedAfter)", got, want)
	}
}

// TestScheduleRequestedSyncFailing: a requested sync that fails is not retried on every tick.
func TestScheduleRequestedSyncFailing(t *testing.T) {
	got := schedule(t, 11*time.Minute, true, func(f *fakeSched, _ *survey.Scheduler) {
		c := f.conns["svc_1"]
		now := time.Now()
		c.SyncRequestedAt = &now
		f.conns["svc_1"] = c
	})
	want := []syncCall{{"full", 0}, {"full", 5 * time.Minute}, {"full", 10 * time.Minute}}
	if !slices.Equal(got, want) {
		t.Fatalf("syncs %v, want %v", got, want)
	}
}

func TestScheduleSkipsConnectionClaimedElsewhere(t *testing.T) {
	got := schedule(t, 30*time.Minute, false, func(f *fakeSched, _ *survey.Scheduler) { f.claims["svc_1"] = "node-b" })
	if len(got) != 0 {
		t.Fatalf("synced %v while node-b held the claim", got)
	}
}

func TestScheduleRequestedSyncRunsAtOnce(t *testing.T) {
	got := schedule(t, 20*time.Minute, false, func(f *fakeSched, s *survey.Scheduler) {
		go func() {
			time.Sleep(7*time.Minute + 30*time.Second)
			f.mu.Lock()
			c := f.conns["svc_1"]
			now := time.Now()
			c.SyncRequestedAt = &now
			f.conns["svc_1"] = c
			f.mu.Unlock()
			s.Wake()
		}()
	})
	want := []syncCall{{"full", 0}, {"full", 7*time.Minute + 30*time.Second}, {"incremental", 22*time.Minute + 30*time.Second}}
	if len(got) < 2 || !slices.Equal(got[:2], want[:2]) {
		t.Fatalf("syncs %v, want a full at 0 and one at 7m30s (woken, not at the next tick)", got)
	}
}

// TestRulesLeadTimes: survey.expiring fires within expiryLead of the earlier of link and
// survey expiry, never once done, and the notification IDs are stable.
func TestRulesLeadTimes(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	c := survey.Connection{ID: "svc_1", BaseURL: "https://iad1.qualtrics.com/API/v3/", ExpiryLead: survey.Duration(24 * time.Hour)}
	rs := []survey.Recipient{
		{DistributionID: "EMD_1", ContactID: "CID_due20h", Email: "a@example.com", Status: "Success", LinkExpiresAt: at(20 * time.Hour)},
		{DistributionID: "EMD_1", ContactID: "CID_due30h", Email: "b@example.com", Status: "Opened", LinkExpiresAt: at(30 * time.Hour)},
		{DistributionID: "EMD_1", ContactID: "CID_survey", Email: "c@example.com", Status: "Success", LinkExpiresAt: at(30 * time.Hour), SurveyExpiresAt: at(10 * time.Hour)},
		{DistributionID: "EMD_1", ContactID: "CID_done", Email: "d@example.com", Status: "SurveyFinished", LinkExpiresAt: at(20 * time.Hour)},
		{DistributionID: "EMD_1", ContactID: "CID_pending", Email: "e@example.com", Status: "Pending", LinkExpiresAt: at(20 * time.Hour)},
		{DistributionID: "EMD_1", ContactID: "CID_gone", Email: "f@example.com", Status: "Success", LinkExpiresAt: at(-time.Hour)},
	}
	kinds := func(ns []survey.Notice) map[string][]string {
		out := map[string][]string{}
		for _, n := range ns {
			out[n.Type] = append(out[n.Type], n.Recipient.Email)
		}
		return out
	}
	got := kinds(survey.Rules(c, rs, nil, now))
	if !slices.Equal(got["survey.request"], []string{"a@example.com", "b@example.com", "c@example.com"}) ||
		!slices.Equal(got["survey.expiring"], []string{"a@example.com", "c@example.com"}) {
		t.Fatalf("at now: %v", got)
	}
	// Six hours later b's link is within the lead too; the IDs of a and c do not change.
	first := survey.Rules(c, rs, nil, now)
	later := survey.Rules(c, rs, nil, now.Add(6*time.Hour))
	if got := kinds(later); !slices.Equal(got["survey.expiring"], []string{"a@example.com", "b@example.com", "c@example.com"}) {
		t.Fatalf("6h later: %v", got)
	}
	// Eleven hours later c's survey has expired: nothing more for c.
	if got := kinds(survey.Rules(c, rs, nil, now.Add(11*time.Hour))); slices.Contains(got["survey.request"], "c@example.com") {
		t.Fatalf("11h later, after c's survey expired: %v", got)
	}
	ids := map[string]bool{}
	for _, n := range first {
		ids[n.ID] = true
	}
	for _, n := range later {
		if n.Recipient.Email == "a@example.com" && !ids[n.ID] {
			t.Errorf("a's %s changed ID between evaluations", n.Type)
		}
	}
}

// TestRulesThresholds: survey.lowCompletion at the stats moment when finished/sent is below
// the ratio; survey.bounceSpike on a live distribution above the bounce ratio; off at 0.
func TestRulesThresholds(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	c := survey.Connection{ID: "svc_1", ExpiryLead: survey.Duration(24 * time.Hour), LowCompletionBelow: 0.5, BounceRateAbove: 0.1}
	ds := []survey.DistributionView{
		{Distribution: survey.Distribution{ID: "EMD_low", LinkExpiresAt: at(20 * time.Hour), Stats: survey.Stats{Sent: 100, Finished: 30}}},
		{Distribution: survey.Distribution{ID: "EMD_ok", LinkExpiresAt: at(20 * time.Hour), Stats: survey.Stats{Sent: 100, Finished: 60}}},
		{Distribution: survey.Distribution{ID: "EMD_later", LinkExpiresAt: at(72 * time.Hour), Stats: survey.Stats{Sent: 100, Finished: 1, Bounced: 8, Complaints: 4}}},
		{Distribution: survey.Distribution{ID: "EMD_few", LinkExpiresAt: at(72 * time.Hour), Stats: survey.Stats{Sent: 5, Bounced: 5}}},
		{Distribution: survey.Distribution{ID: "EMD_gone", LinkExpiresAt: at(-time.Hour), Stats: survey.Stats{Sent: 100, Bounced: 90}}},
	}
	got := map[string][]string{}
	for _, n := range survey.Rules(c, nil, ds, now) {
		got[n.Type] = append(got[n.Type], n.Distribution.ID)
	}
	want := map[string][]string{"survey.stats": {"EMD_low", "EMD_ok"}, "survey.lowCompletion": {"EMD_low"}, "survey.bounceSpike": {"EMD_later"}}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	c.LowCompletionBelow, c.BounceRateAbove = 0, 0
	for _, n := range survey.Rules(c, nil, ds, now) {
		if n.Type != "survey.stats" {
			t.Errorf("thresholds off, yet %s for %s", n.Type, n.Distribution.ID)
		}
	}
}
