package app_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/simulator"
)

// TestSurveyEventPushStopsReminders: Qualtrics posts surveyengine.completedResponse when bob
// finishes; qgate marks him finished at once (no sync) and cancels his reminder that was
// still waiting for a retry, so it never arrives.
func TestSurveyEventPushStopsReminders(t *testing.T) {
	e := startSurveyEnv(t, nil)
	e.channel(t, notify.Types...)
	const key = "events-key-0123456789"
	st, body, _ := e.n.do("POST", "/v1/survey-connections", e.op, map[string]any{"name": "sim", "baseUrl": e.simU + "/API/v3/",
		"apiToken": surveyBrandToken, "expiryLead": "24h", "eventsKey": key})
	if st != 201 || !strings.Contains(string(body), `"eventsKeySet":true`) || strings.Contains(string(body), key) {
		t.Fatalf("create: %d %s", st, body)
	}
	c := decode[svConn](t, body)
	events := e.n.base + "/v1/survey-connections/" + c.ID + "/events"

	// A wrong key is refused and changes nothing.
	st, _, _ = e.n.do("POST", "/v1/survey-connections/"+c.ID+"/events?key=wrong", "", nil)
	if st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	e.brand.Subscribe(events+"?key="+url.QueryEscape(key), "surveyengine.completedResponse.*")

	// The receiver is down: every notification waits for a retry.
	e.sink.mu.Lock()
	e.sink.fail = 1 << 20
	e.sink.mu.Unlock()
	e.sync(t, c.ID)
	waitFor(t, "notifications queued behind the failing receiver", func() bool {
		queued := 0
		for _, st := range []string{"pending", "retrying"} {
			_, body, _ := e.n.do("GET", "/v1/deliveries?status="+st, e.sup, nil)
			queued += len(decode[struct{ Deliveries []any }](t, body).Deliveries)
		}
		e.sink.mu.Lock()
		refused := 1<<20 - e.sink.fail
		e.sink.mu.Unlock()
		return queued == 7 && refused > 0
	})

	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "bob@example.com", "SurveyFinished")
	posts := e.brand.EventPosts()
	if len(posts) != 1 || posts[0].Status != 200 {
		t.Fatalf("event posts %+v", posts)
	}
	// At once, before any sync: bob has no active survey and his two notifications are cancelled.
	_, body, _ = e.n.do("GET", "/v1/people/bob@example.com/surveys", e.sup, nil)
	if n := len(decode[struct{ Surveys []any }](t, body).Surveys); n != 0 {
		t.Errorf("bob still has %d active surveys after the event", n)
	}
	_, body, _ = e.n.do("GET", "/v1/deliveries?status=excluded&reason="+notify.ReasonRecipientFinished, e.sup, nil)
	if n := len(decode[struct{ Deliveries []any }](t, body).Deliveries); n != 2 {
		t.Errorf("cancelled %d notifications, want bob's survey.request and survey.expiring: %s", n, body)
	}

	// The receiver recovers: everything but bob's arrives; a sync adds nothing for bob.
	e.sink.mu.Lock()
	e.sink.fail = 0
	e.sink.mu.Unlock()
	e.settle(t)
	e.sync(t, c.ID)
	e.settle(t)
	got := uniqueHits(t, e.sink)
	if slices.Contains(got["survey.request"], "bob@example.com") || slices.Contains(got["survey.expiring"], "bob@example.com") {
		t.Fatalf("bob was notified after finishing: %v", got)
	}
	if !slices.Equal(got["survey.expiring"], []string{"alice@example.com"}) || len(got["survey.request"]) != 3 || len(got["survey.stats"]) != 1 {
		t.Fatalf("after recovery: %v", got)
	}
	// Secrets and emails never reach the logs (debug level here).
	logs := e.n.logs.String()
	if !strings.Contains(logs, "/v1/people/:email/surveys") {
		t.Fatalf("the access log did not record the requests; the check below would prove nothing")
	}
	for _, secret := range []string{key, surveyBrandToken, e.sink.secret, "@example.com"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
