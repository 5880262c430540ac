package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/survey"
)

// TestSurveyStore runs the survey-watch store suite on SQLite and on PostgreSQL.
func TestSurveyStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				requirePostgres(t)
			}
			t.Run("connections", func(t *testing.T) { testSurveyConnections(t, b.open(t)) })
			t.Run("sync", func(t *testing.T) { testSurveySync(t, b.open(t)) })
			t.Run("notifications", func(t *testing.T) { testNotifications(t, b.open(t)) })
			t.Run("snapshot", func(t *testing.T) { testSurveyReadSnapshot(t, b.open(t)) })
		})
	}
}

var sv0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func svConn(id, name string) survey.Connection {
	return survey.Connection{ID: id, Name: name, BaseURL: "https://iad1.qualtrics.com/API/v3/", Sealed: []byte{1, 2, 3}, TokenEnd: "abcd",
		IncrementalEvery: survey.Duration(15 * time.Minute), FullEvery: survey.Duration(time.Hour), ExpiryLead: survey.Duration(24 * time.Hour),
		LowCompletionBelow: 0.25, BounceRateAbove: 0.125, Version: 1, CreatedAt: sv0, UpdatedAt: sv0}
}

func testSurveyConnections(t *testing.T, db *DB) {
	ctx := context.Background()
	if err := db.CreateSurveyConnection(ctx, svConn("svc_1", "a")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSurveyConnection(ctx, svConn("svc_2", "a")); !errors.Is(err, survey.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	c, err := db.GetSurveyConnection(ctx, "svc_1")
	if err != nil || c.ExpiryLead.D() != 24*time.Hour || c.LowCompletionBelow != 0.25 || c.BounceRateAbove != 0.125 || c.LastSync != nil || string(c.Sealed) != "\x01\x02\x03" {
		t.Fatalf("get: %+v %v", c, err)
	}
	c.Name, c.Version = "b", 2
	if err := db.UpdateSurveyConnection(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateSurveyConnection(ctx, c, 1); !errors.Is(err, survey.ErrVersionConflict) {
		t.Fatalf("stale version: %v", err)
	}
	// Claims: one node at a time until the claim expires.
	if ok, _ := db.ClaimSurveyConnection(ctx, "svc_1", "node-a", sv0, time.Minute); !ok {
		t.Fatal("first claim refused")
	}
	if ok, _ := db.ClaimSurveyConnection(ctx, "svc_1", "node-b", sv0.Add(30*time.Second), time.Minute); ok {
		t.Fatal("node-b took a live claim")
	}
	if ok, _ := db.ClaimSurveyConnection(ctx, "svc_1", "node-b", sv0.Add(2*time.Minute), time.Minute); !ok {
		t.Fatal("node-b could not take an expired claim")
	}
	if err := db.ReleaseSurveyConnection(ctx, "svc_1", "node-a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.ClaimSurveyConnection(ctx, "svc_1", "node-a", sv0.Add(2*time.Minute), time.Minute); ok {
		t.Fatal("node-a's release freed node-b's claim")
	}
	if err := db.RequestSurveySync(ctx, "svc_1", sv0); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSurveyConnection(ctx, "svc_1", sv0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSurveyConnection(ctx, "svc_1"); !errors.Is(err, survey.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := db.RequestSurveySync(ctx, "svc_1", sv0); !errors.Is(err, survey.ErrNotFound) {
		t.Fatalf("sync deleted: %v", err)
	}
	if err := db.CreateSurveyConnection(ctx, svConn("svc_3", "b")); err != nil {
		t.Fatalf("a deleted connection's name is free again: %v", err)
	}
}

// testSurveyReadSnapshot: a sync records its run and the connection's brand in one
// transaction, so a reader that sees sync i finished sees brand i too, never the brand of
// the sync before (GET /v1/survey-connections/{id} once read the two in separate statements).
func testSurveyReadSnapshot(t *testing.T, db *DB) {
	ctx := context.Background()
	if err := db.CreateSurveyConnection(ctx, svConn("svc_1", "a")); err != nil {
		t.Fatal(err)
	}
	const syncs = 150
	done := make(chan error, 1)
	go func() {
		for i := range syncs {
			at := sv0.Add(time.Duration(i) * time.Second)
			run := survey.SyncRun{ID: fmt.Sprintf("syn_%03d", i), ConnectionID: "svc_1", Mode: "incremental", Node: "n", StartedAt: at, Outcome: survey.OutcomeRunning}
			if err := db.StartSurveySync(ctx, run); err != nil {
				done <- err
				return
			}
			end := at.Add(time.Millisecond)
			run.EndedAt, run.Outcome = &end, survey.OutcomeSucceeded
			if err := db.FinishSurveySync(ctx, run, &survey.Snapshot{}, survey.ScheduleState{LastIncrementalAt: &at, BrandID: fmt.Sprintf("brand_%03d", i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads, seen := 0, 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if seen < syncs/10 {
				t.Fatalf("the reader saw only %d finished syncs in %d reads: the test did not race", seen, reads)
			}
			return
		default:
		}
		for _, get := range []func() ([]survey.Connection, error){
			func() ([]survey.Connection, error) {
				c, err := db.GetSurveyConnection(ctx, "svc_1")
				return []survey.Connection{c}, err
			},
			func() ([]survey.Connection, error) { return db.ListSurveyConnections(ctx) },
		} {
			cs, err := get()
			if err != nil || len(cs) != 1 {
				t.Fatalf("read %d: %v %v", reads, cs, err)
			}
			reads++
			c := cs[0]
			if c.LastSync == nil || c.LastSync.Outcome != survey.OutcomeSucceeded {
				continue
			}
			seen++
			if want := "brand_" + strings.TrimPrefix(c.LastSync.ID, "syn_"); c.BrandID != want {
				t.Fatalf("read %d: last sync %s finished but brand is %q, want %q", reads, c.LastSync.ID, c.BrandID, want)
			}
		}
	}
}

func snapshot(status string) *survey.Snapshot {
	exp := sv0.Add(20 * time.Hour)
	return &survey.Snapshot{Full: true,
		Users: []survey.User{{ID: "UR_1", Email: "admin@example.com"}},
		Surveys: []survey.SurveyData{{Survey: survey.Survey{ID: "SV_1", Name: "Pulse", IsActive: true, LastModified: sv0, CreationDate: sv0},
			Distributions: []survey.DistributionData{{Distribution: survey.Distribution{ID: "EMD_1", SurveyID: "SV_1", CreatedDate: sv0, LinkExpiresAt: &exp,
				Stats: survey.Stats{Sent: 1}}, Detailed: true,
				History: []survey.HistoryRow{{DistributionID: "EMD_1", ContactID: "CID_1", Status: status, SurveyLink: "https://x/jfe/form/SV_1?h"}},
				Links:   []survey.Link{{DistributionID: "EMD_1", ContactID: "CID_1", Email: "Alice@Example.com", Link: "https://x/jfe/form/SV_1?l", LinkExpiresAt: &exp}},
			}}}}}
}

func testSurveySync(t *testing.T, db *DB) {
	ctx := context.Background()
	if err := db.CreateSurveyConnection(ctx, svConn("svc_1", "a")); err != nil {
		t.Fatal(err)
	}
	end := sv0.Add(time.Second)
	run := survey.SyncRun{ID: "syn_1", ConnectionID: "svc_1", Mode: "full", Node: "n", StartedAt: sv0, Outcome: survey.OutcomeRunning}
	if err := db.StartSurveySync(ctx, run); err != nil {
		t.Fatal(err)
	}
	_ = db.RequestSurveySync(ctx, "svc_1", sv0.Add(-time.Minute))
	run.EndedAt, run.Outcome, run.Counts = &end, survey.OutcomeSucceeded, survey.Counts{Surveys: 1}
	if err := db.FinishSurveySync(ctx, run, snapshot("Success"), survey.ScheduleState{LastFullAt: &sv0, LastIncrementalAt: &sv0, SurveysSince: &sv0, ClearRequestBefore: &sv0, BrandID: "brand"}); err != nil {
		t.Fatal(err)
	}
	c, _ := db.GetSurveyConnection(ctx, "svc_1")
	if c.LastSync == nil || c.LastSync.Counts.Surveys != 1 || c.LastFullAt == nil || !c.LastFullAt.Equal(sv0) || c.SyncRequestedAt != nil || c.BrandID != "brand" {
		t.Fatalf("after a good sync: %+v", c)
	}
	rs, err := db.PersonSurveys(ctx, "alice@example.com", sv0)
	if err != nil || len(rs) != 1 || rs[0].RespondLink != "https://x/jfe/form/SV_1?l" || rs[0].ExpiresAt == nil {
		t.Fatalf("person surveys: %+v %v", rs, err)
	}
	// A failed sync records its error and leaves the data alone.
	run2 := survey.SyncRun{ID: "syn_2", ConnectionID: "svc_1", Mode: "full", Node: "n", StartedAt: end, Outcome: survey.OutcomeRunning}
	_ = db.StartSurveySync(ctx, run2)
	run2.EndedAt, run2.Outcome, run2.Error = &end, survey.OutcomeFailed, "qualtrics answered 401 (DCD_7)"
	if err := db.FinishSurveySync(ctx, run2, nil, survey.ScheduleState{}); err != nil {
		t.Fatal(err)
	}
	c, _ = db.GetSurveyConnection(ctx, "svc_1")
	if c.LastSync.ID != "syn_2" || c.LastSync.Error == "" || c.LastGoodSync == nil || c.LastGoodSync.ID != "syn_1" {
		t.Fatalf("after a failed sync: last %+v good %+v", c.LastSync, c.LastGoodSync)
	}
	if rs, _ := db.SurveyRecipients(ctx, "svc_1", sv0); len(rs) != 1 || rs[0].Status != "Success" {
		t.Fatalf("data after the failed sync: %+v", rs)
	}
	// The person is done: no longer an active survey; the distribution still lists them.
	run3 := survey.SyncRun{ID: "syn_3", ConnectionID: "svc_1", Mode: "full", Node: "n", StartedAt: end.Add(time.Second), Outcome: survey.OutcomeSucceeded, EndedAt: &end}
	_ = db.StartSurveySync(ctx, run3)
	if err := db.FinishSurveySync(ctx, run3, snapshot("SurveyFinished"), survey.ScheduleState{}); err != nil {
		t.Fatal(err)
	}
	if rs, _ := db.PersonSurveys(ctx, "alice@example.com", sv0); len(rs) != 0 {
		t.Fatalf("finished survey still active: %+v", rs)
	}
	d, rs, err := db.GetDistribution(ctx, "EMD_1")
	if err != nil || d.SurveyName != "Pulse" || len(rs) != 1 || rs[0].Status != "SurveyFinished" {
		t.Fatalf("distribution: %+v %+v %v", d, rs, err)
	}
	if ss, _ := db.ListSurveys(ctx, "svc_1", true); len(ss) != 1 || ss[0].Links.Survey == "" {
		t.Fatalf("surveys: %+v", ss)
	}
	if live, _ := db.LiveDistributions(ctx, "svc_1", sv0.Add(21*time.Hour)); len(live) != 0 {
		t.Fatalf("expired distribution is live: %+v", live)
	}
	// A week later a failed run prunes the old ones but the last good (syn_3).
	late := sv0.Add(8 * 24 * time.Hour)
	run4 := survey.SyncRun{ID: "syn_4", ConnectionID: "svc_1", Mode: "full", Node: "n", StartedAt: late, Outcome: survey.OutcomeRunning}
	_ = db.StartSurveySync(ctx, run4)
	run4.EndedAt, run4.Outcome, run4.Error = &late, survey.OutcomeFailed, "x"
	if err := db.FinishSurveySync(ctx, run4, nil, survey.ScheduleState{}); err != nil {
		t.Fatal(err)
	}
	var runs []string
	rows, _ := db.db.QueryContext(ctx, `SELECT id FROM survey_sync_runs ORDER BY id`)
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		runs = append(runs, id)
	}
	rows.Close()
	if strings.Join(runs, ",") != "syn_3,syn_4" {
		t.Fatalf("runs after pruning: %v, want syn_3 (last good) and syn_4", runs)
	}
	if err := db.DeleteSurveyConnection(ctx, "svc_1", sv0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.GetDistribution(ctx, "EMD_1"); !errors.Is(err, survey.ErrDistributionNotFound) {
		t.Fatalf("data of a deleted connection: %v", err)
	}
}

func testNotifications(t *testing.T, db *DB) {
	ctx := context.Background()
	ch := notify.Channel{ID: "nch_1", Name: "hook", Kind: "webhook", URL: "https://h.example/", Events: []string{"survey.request"}, Version: 1, CreatedAt: sv0, UpdatedAt: sv0}
	if err := db.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	msg := func(id string) notify.Outgoing {
		m := notify.Message{ID: id, Type: "survey.request", ConnectionID: "svc_1", Subject: "EMD_1/CID_1", OccurredAt: sv0,
			Body: []byte(`{"id":"` + id + `"}`), Email: "Bob@Example.com"}
		return notify.Outgoing{Message: m, Deliveries: []notify.Target{{ChannelID: "nch_1", DeliveryID: delivery.ID(id, "nch_1"), Payload: m.Body}}}
	}
	out := []notify.Outgoing{msg("ntf_1")}
	if n, err := db.PublishNotifications(ctx, out, sv0); n != 1 || err != nil {
		t.Fatalf("publish: %d %v", n, err)
	}
	if n, err := db.PublishNotifications(ctx, out, sv0.Add(time.Minute)); n != 0 || err != nil {
		t.Fatalf("publish again: %d %v", n, err)
	}
	// One pending delivery of the engine, found by the recipient's email, under an update named
	// by the notification; one parked job for the channel's lane, due now.
	id := delivery.ID("ntf_1", "nch_1")
	recs, _, err := db.SearchDeliveries(ctx, delivery.Query{IdentityHash: delivery.HashIdentity("bob@example.com"), Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].DeliveryID != id || recs[0].UpdateID != "ntf_1" || recs[0].DestinationID != "nch_1" || recs[0].Status != delivery.Pending {
		t.Fatalf("deliveries by email: %+v %v", recs, err)
	}
	if _, fan, err := db.GetUpdate(ctx, "ntf_1"); err != nil || len(fan) != 1 {
		t.Fatalf("update of the notification: %+v %v", fan, err)
	}
	heads, err := db.ParkedHeads(ctx, "nch_1", sv0, 10)
	if err != nil || len(heads) != 1 || heads[0].DeliveryID != id {
		t.Fatalf("parked: %+v %v", heads, err)
	}
	job, err := delivery.DecodeJob(heads[0].Job)
	if err != nil || job.UpdateID != "ntf_1" || job.DestinationID != "nch_1" || string(job.Payload) != `{"id":"ntf_1"}` {
		t.Fatalf("parked job: %+v %v", job, err)
	}
	if dests, _ := db.ParkedDestinations(ctx); !slices.Contains(dests, "nch_1") {
		t.Fatalf("parked destinations %v", dests)
	}
	// Cancelling the subject ends the queued delivery (excluded): the lane closes its parked
	// copy unsent. A delivered one is left alone.
	if _, err := db.PublishNotifications(ctx, []notify.Outgoing{msg("ntf_2")}, sv0); err != nil {
		t.Fatal(err)
	}
	at := sv0.Add(time.Second)
	if err := db.Apply(ctx, delivery.Batch{Events: []delivery.Event{{DeliveryID: delivery.ID("ntf_2", "nch_1"), UpdateID: "ntf_2", DestinationID: "nch_1",
		Status: delivery.Delivered, At: at, Attempt: &delivery.Attempt{N: 1, At: at, StatusCode: 200, Outcome: "delivered", Reason: "ok"}}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CancelNotifications(ctx, "svc_1", "EMD_1/CID_1", []string{"survey.request"}, notify.ReasonRecipientFinished, sv0.Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("cancel: %d %v", n, err)
	}
	if st, _ := db.DeliveryStatus(ctx, id); st != delivery.Excluded {
		t.Fatalf("cancelled delivery is %s", st)
	}
	if st, _ := db.DeliveryStatus(ctx, delivery.ID("ntf_2", "nch_1")); st != delivery.Delivered {
		t.Fatalf("delivered one became %s", st)
	}
}
