package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/alert"
)

// An episode fires once however many evaluators race to open it; clearing it fires its
// resolution once; a new episode fires again. Alerts are leased to one node at a time.
func testAlertEpisodes(t *testing.T, db *DB) {
	ctx := context.Background()
	sub := alert.Subscription{ID: "asub_1", Name: "pager", URL: "https://hooks.example.com", Sealed: []byte{1}, SecretEnd: "abcd",
		Events: []alert.Rule{{Type: alert.EventCircuitOpened}}, DestinationIDs: []string{}, Enabled: true, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	if err := db.CreateAlertSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	ep := alert.Episode{SubscriptionID: sub.ID, Condition: "circuit", DestinationID: "dst_a"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for i := range 8 {
		wg.Go(func() {
			a := &alert.Alert{ID: "alt_" + string(rune('a'+i)), SubscriptionID: sub.ID, Event: alert.EventCircuitOpened, DestinationID: "dst_a",
				DestinationName: "a", Message: "opened", Data: []byte(`{}`), FiredAt: t0}
			ok, err := db.FireAlert(ctx, ep, t0, a)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				fired++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fired != 1 {
		t.Fatalf("%d of 8 racing evaluators fired the episode, want 1", fired)
	}
	if open, err := db.OpenEpisodes(ctx); err != nil || len(open) != 1 || open[0] != ep {
		t.Fatalf("open episodes: %+v %v", open, err)
	}
	closed := &alert.Alert{ID: "alt_closed", SubscriptionID: sub.ID, Event: alert.EventCircuitClosed, DestinationID: "dst_a", Data: []byte(`{}`), FiredAt: t0.Add(time.Minute)}
	if ok, err := db.ClearEpisode(ctx, ep, t0.Add(time.Minute), closed); err != nil || !ok {
		t.Fatalf("clear: %v %v", ok, err)
	}
	if ok, err := db.ClearEpisode(ctx, ep, t0.Add(time.Minute), closed); err != nil || ok {
		t.Fatalf("clearing twice: %v %v", ok, err)
	}
	if ok, err := db.FireAlert(ctx, ep, t0.Add(2*time.Minute), nil); err != nil || !ok {
		t.Fatalf("a new episode: %v %v", ok, err)
	}
	list, err := db.ListAlerts(ctx, alert.Filter{SubscriptionID: sub.ID, Limit: 10})
	if err != nil || len(list) != 2 || list[0].ID != "alt_closed" || list[0].Status != alert.StatusPending || list[0].NextAttemptAt == nil {
		t.Fatalf("alerts: %+v %v", list, err)
	}

	now := t0.Add(time.Hour)
	a, err := db.ClaimDueAlerts(ctx, "n1", now, time.Minute, 10)
	if err != nil || len(a) != 2 {
		t.Fatalf("claim: %+v %v", a, err)
	}
	if b, err := db.ClaimDueAlerts(ctx, "n2", now, time.Minute, 10); err != nil || len(b) != 0 {
		t.Fatalf("leased alerts claimed again: %+v %v", b, err)
	}
	next := now.Add(time.Second)
	if err := db.RecordAlertAttempt(ctx, alert.Attempt{AlertID: a[0].ID, N: 1, At: now, StatusCode: 503, Error: "answered 503", Status: alert.StatusRetrying, NextAt: &next}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordAlertAttempt(ctx, alert.Attempt{AlertID: a[1].ID, N: 1, At: now, StatusCode: 200, Status: alert.StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if b, err := db.ClaimDueAlerts(ctx, "n2", now, time.Minute, 10); err != nil || len(b) != 0 {
		t.Fatalf("a retry claimed before it is due: %+v %v", b, err)
	}
	b, err := db.ClaimDueAlerts(ctx, "n2", next, time.Minute, 10)
	if err != nil || len(b) != 1 || b[0].ID != a[0].ID || b[0].Attempts != 1 || b[0].FirstAttemptAt == nil || b[0].LastStatusCode != 503 {
		t.Fatalf("due retry: %+v %v", b, err)
	}
	if err := db.DeleteAlertSubscription(ctx, sub.ID, now); err != nil {
		t.Fatal(err)
	}
	if open, err := db.OpenEpisodes(ctx); err != nil || len(open) != 0 {
		t.Fatalf("episodes of a deleted subscription: %+v %v", open, err)
	}
}
