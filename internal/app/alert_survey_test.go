package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/alert"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/survey"
)

// surveyEpisodeOpen reports whether sub's survey.syncFailed episode for conn is open.
func surveyEpisodeOpen(t *testing.T, e *surveyEnv, sub, conn string) bool {
	t.Helper()
	open, err := e.n.app.Store().OpenEpisodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range open {
		if ep == (alert.Episode{SubscriptionID: sub, Condition: alert.EventSurveySyncFailed, DestinationID: conn}) {
			return true
		}
	}
	return false
}

// awaitEpisode waits (polling the store, up to 20 s) until the episode is open or closed.
func awaitEpisode(t *testing.T, e *surveyEnv, sub, conn string, open bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for surveyEpisodeOpen(t, e, sub, conn) != open {
		if time.Now().After(deadline) {
			t.Fatalf("the survey.syncFailed episode did not become open=%v in 20 s", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncNow runs one real sync of conn against the simulator at once, as another node's syncer
// would, writing to this node's store: the scheduler waits at least a minute after a failed
// sync before trying again, too long for a test.
func syncNow(t *testing.T, e *surveyEnv, conn string) survey.SyncRun {
	t.Helper()
	key, err := config.DecodeSecretKey(strings.Repeat("ef", 32))
	if err != nil {
		t.Fatal(err)
	}
	box, err := destination.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	st := e.n.app.Store()
	c, err := st.GetSurveyConnection(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	s := &survey.Syncer{Store: st, Box: box, Client: survey.NewClient(survey.ClientOptions{Policy: qualtrics.HostPolicy{AllowPrivate: true}}),
		Budget: survey.DefaultBudget, Node: "node-test"}
	run, err := s.Sync(context.Background(), c, survey.ModeFull)
	if run.Outcome == "" || run.Outcome == survey.OutcomeRunning {
		t.Fatalf("sync did not finish: %+v %v", run, err)
	}
	return run
}

// A survey connection whose token is revoked fails its sync: exactly one survey.syncFailed
// reaches the subscriber's webhook, signed, naming the connection and the error (never the
// token); further failed syncs over several evaluator passes add nothing; a successful sync
// ends the episode, and the next failure fires again. The subscription's destinationIds (a
// destination) do not filter the survey event.
func TestAlertsSurveySyncFailedOncePerEpisode(t *testing.T) {
	e := startSurveyEnv(t, nil)
	hook := newHookReceiver(t)
	st, body, _ := e.n.do("POST", "/v1/alert-subscriptions", e.op, map[string]any{
		"name": "survey on-call", "url": hook.srv.URL + "/alerts", "secret": hook.secret,
		"events": events(alert.EventSurveySyncFailed), "destinationIds": []string{"dst_unrelated"}})
	if st != http.StatusCreated {
		t.Fatalf("create alert subscription: %d %s", st, body)
	}
	sub := decode[alert.Subscription](t, body).ID

	c := e.connect(t, "1h")
	if c = e.sync(t, c.ID); c.LastSync.Outcome != "succeeded" {
		t.Fatalf("first sync: %+v", c.LastSync)
	}

	e.brand.Revoke(true)
	failed := e.sync(t, c.ID)
	if failed.LastSync.Outcome != "failed" || failed.LastSync.Error == "" {
		t.Fatalf("sync with a revoked token: %+v", failed.LastSync)
	}
	got := hook.await("survey.syncFailed", func(d map[string][]hookRequest) bool { return len(d[alert.EventSurveySyncFailed]) >= 1 })
	a := got[alert.EventSurveySyncFailed][0]
	if a.Data["connectionId"] != c.ID || a.Data["connectionName"] != "sim" || a.Data["subscriptionId"] != sub ||
		a.Data["error"] != failed.LastSync.Error || a.Data["syncRunId"] != failed.LastSync.ID || a.Data["at"] == nil ||
		!strings.Contains(a.Data["message"].(string), `survey connection "sim" failed`) {
		t.Fatalf("survey.syncFailed body: %+v", a)
	}
	raw := hook.rawBodies()
	if strings.Contains(raw, surveyBrandToken) || strings.Contains(raw, base64.StdEncoding.EncodeToString([]byte(surveyBrandToken))) {
		t.Fatalf("the alert shows the connection's token: %s", raw)
	}
	awaitEpisode(t, e, sub, c.ID, true)

	// It keeps failing: failed syncs spanning at least three evaluator passes fire nothing more.
	since := time.Now()
	for n := 0; n < 3 || time.Since(since) < 3*time.Second; n++ {
		if r := syncNow(t, e, c.ID); r.Outcome != survey.OutcomeFailed {
			t.Fatalf("sync %d with a revoked token: %+v", n, r)
		}
		time.Sleep(100 * time.Millisecond) // a sync every ~100 ms, over several evaluator passes
	}
	if d := hook.delivered(); len(d[alert.EventSurveySyncFailed]) != 1 {
		t.Fatalf("an alert storm while the sync keeps failing: %+v", d)
	}

	// A successful sync ends the episode; the next failure is a new one and fires again.
	e.brand.Revoke(false)
	if r := syncNow(t, e, c.ID); r.Outcome != survey.OutcomeSucceeded {
		t.Fatalf("sync after restoring the token: %+v", r)
	}
	awaitEpisode(t, e, sub, c.ID, false)
	if d := hook.delivered(); len(d[alert.EventSurveySyncFailed]) != 1 {
		t.Fatalf("the recovery fired an alert: %+v", d)
	}
	e.brand.Revoke(true)
	syncNow(t, e, c.ID)
	got = hook.await("a second survey.syncFailed", func(d map[string][]hookRequest) bool { return len(d[alert.EventSurveySyncFailed]) >= 2 })
	if s := got[alert.EventSurveySyncFailed]; len(s) != 2 || s[0].ID == s[1].ID {
		t.Fatalf("after a new failure: %+v", s)
	}
	hook.checkSignatures()

	// GET /v1/alerts lists them under the connection's ID.
	st, body, _ = e.n.do("GET", "/v1/alerts?event=survey.syncFailed&destinationId="+c.ID, e.sup, nil)
	if st != http.StatusOK {
		t.Fatalf("GET /v1/alerts: %d %s", st, body)
	}
	if l := decode[struct{ Alerts []alert.Alert }](t, body).Alerts; len(l) != 2 || l[0].DestinationName != "sim" {
		t.Fatalf("GET /v1/alerts: %s", body)
	}
}

// rawBodies is every request's body as received, re-encoded, joined.
func (h *hookReceiver) rawBodies() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.got {
		j, _ := json.Marshal(r.Body)
		b.Write(j)
	}
	return b.String()
}
