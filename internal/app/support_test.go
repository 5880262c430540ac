package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/internal/support"
)

type errorBody struct {
	Errors []struct{ Path, Code, Message string }
}

// A dead letter is found by the support search, listed as a dead letter, replayed with the
// same Idempotency-Key, and delivered; the destination's stats count it all.
func TestDeadLetterSearchReplayAndStats(t *testing.T) {
	e := startDelivery(t, nil)
	dest, wf := e.destination("replay", nil)
	e.sim.Script(wf, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"survey closed"}}}`})
	bad := e.post(richProfile("Replay.Me@example.com"))
	e.awaitStatus(bad, dest, delivery.DeadLettered) // before the next post: the script's 400 is bad's
	good := e.post(richProfile("fine@example.com"))
	e.awaitStatus(good, dest, delivery.Delivered)
	badID := delivery.ID(bad, dest)

	// Search by identity (any case) and by status; the answer carries the attempts.
	status, body, _ := e.do("GET", "/v1/deliveries?identity="+url.QueryEscape("replay.me@EXAMPLE.com")+"&destinationId="+dest, e.support, nil)
	page := decode[support.DeliveryPage](t, body)
	if status != http.StatusOK || len(page.Deliveries) != 1 || page.Deliveries[0].DeliveryID != badID || page.NextCursor != nil ||
		!strings.Contains(page.Deliveries[0].Attempts[0].Error, "survey closed") {
		t.Fatalf("search by identity: %d %s", status, body)
	}
	if strings.Contains(string(body), "Replay.Me") || strings.Contains(strings.ToLower(string(body)), "replay.me@") {
		t.Fatalf("the search answer leaks the email: %s", body)
	}
	status, body, _ = e.do("GET", "/v1/dead-letters?destinationId="+dest, e.support, nil)
	if page := decode[support.DeliveryPage](t, body); status != http.StatusOK || len(page.Deliveries) != 1 || page.Deliveries[0].DeliveryID != badID {
		t.Fatalf("dead letters: %d %s", status, body)
	}

	// Stats before the replay: 2 received, one delivered, one dead letter.
	stats := func() support.StatsView {
		t.Helper()
		status, body, _ := e.do("GET", "/v1/destinations/"+dest+"/stats?window=1h", e.operator, nil)
		if status != http.StatusOK {
			t.Fatalf("stats: %d %s", status, body)
		}
		return decode[support.StatsView](t, body)
	}
	st := stats()
	if st.Received != 2 || st.ByStatus[delivery.Delivered] != 1 || st.DeadLetteredByReason["client_error"] != 1 || st.Backlog != 0 ||
		st.Circuit.State != "closed" || st.AttemptLatency.Samples != 1 || st.AttemptLatency.P99 == nil || st.Window != "1h" {
		t.Fatalf("stats before replay: %+v", st)
	}

	// Replay: the simulator now accepts it; same key, attempt numbering continues.
	status, body, _ = e.do("POST", "/v1/dead-letters/replay", e.support, map[string]any{"deliveryIds": []string{badID, delivery.ID(good, dest)}})
	res := decode[support.ReplayResult](t, body)
	if status != http.StatusOK || res.Replayed != 1 || res.DeliveryIDs[0] != badID {
		t.Fatalf("replay: %d %s", status, body)
	}
	replayedAt := time.Now()
	d := e.awaitStatus(bad, dest, delivery.Delivered)
	if len(d.Attempts) != 2 || d.Attempts[0].StatusCode != 400 || d.Attempts[1].StatusCode != 200 || d.Attempts[1].N != 2 {
		t.Fatalf("attempts after replay: %+v", d.Attempts)
	}
	// The answering node wakes its dispatcher: no wait for the next claim renewal (5 s).
	if after := d.Attempts[1].At.Sub(replayedAt); after > 4*time.Second {
		t.Errorf("the replay went out %s after the answer, want it at once", after)
	}
	runs := e.runs(wf, 3)
	var keys []string
	for _, r := range runs {
		if r.IdempotencyKey == badID {
			keys = append(keys, r.Outcome)
		}
	}
	if len(keys) != 2 {
		t.Fatalf("the replay did not reuse the Idempotency-Key: %+v", runs)
	}
	st = stats()
	if st.ByStatus[delivery.Delivered] != 2 || st.ByStatus[delivery.DeadLettered] != 0 || st.Backlog != 0 || st.Parked != 0 {
		t.Fatalf("stats after replay: %+v", st)
	}
	// Nothing left to replay.
	status, body, _ = e.do("POST", "/v1/dead-letters/replay", e.support, map[string]any{"filter": map[string]any{"destinationId": dest}})
	if res := decode[support.ReplayResult](t, body); status != http.StatusOK || res.Replayed != 0 {
		t.Fatalf("second replay: %d %s", status, body)
	}
}

// The stats show an open circuit (401 opens it at once) and its close, with the alert times.
func TestStatsShowCircuitState(t *testing.T) {
	e := startDelivery(t, func(c *cfgT) { c.BreakerTimeout = time.Hour })
	dest, wf := e.destination("circuit", nil)
	e.sim.ForceUnauthorized(wf, true)
	e.post(richProfile("circuit@example.com"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, _ := e.do("GET", "/v1/destinations/"+dest+"/stats", e.support, nil)
		st := decode[support.StatsView](t, body)
		// The alert (and so Since) is recorded just after the circuit opens.
		if status == http.StatusOK && st.Circuit.State == "open" && st.Circuit.Since != nil {
			if st.Circuit.Source != "node" || st.Backlog != 1 || st.Window != "24h" {
				t.Fatalf("open circuit stats: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("circuit never showed open: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond) // polling the observable API, not synchronising
	}
}

// Bad support queries get 422s naming the parameter; unknown destinations 404.
func TestSupportQueryValidation(t *testing.T) {
	e := startDelivery(t, nil)
	dest, _ := e.destination("validation", nil)
	cases := []struct {
		method, path string
		body         any
		status       int
		field, code  string
	}{
		{"GET", "/v1/deliveries?status=lost", nil, 422, "query.status", "invalid_status"},
		{"GET", "/v1/deliveries?since=yesterday", nil, 422, "query.since", "invalid_time"},
		{"GET", "/v1/deliveries?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", nil, 422, "query.until", "invalid_range"},
		{"GET", "/v1/deliveries?limit=0", nil, 422, "query.limit", "invalid_limit"},
		{"GET", "/v1/deliveries?cursor=bm9wZQ", nil, 422, "query.cursor", "invalid_cursor"},
		{"GET", "/v1/dead-letters?status=delivered", nil, 422, "query.status", "invalid_status"},
		{"GET", "/v1/destinations/" + dest + "/stats?window=2h", nil, 422, "query.window", "invalid_window"},
		{"GET", "/v1/destinations/dst_nope/stats", nil, 404, "id", "destination_not_found"},
		{"POST", "/v1/dead-letters/replay", map[string]any{}, 422, "deliveryIds", "required"},
		{"POST", "/v1/dead-letters/replay", map[string]any{"filter": map[string]any{}}, 422, "filter.destinationId", "required"},
		{"POST", "/v1/dead-letters/replay", map[string]any{"filter": map[string]any{"destinationId": "dst_nope"}}, 404, "filter.destinationId", "destination_not_found"},
		{"POST", "/v1/dead-letters/replay", map[string]any{"deliveryIds": []string{"x"}, "filter": map[string]any{"destinationId": dest}}, 422, "filter", "ambiguous_selection"},
		{"POST", "/v1/dead-letters/replay", map[string]any{"ids": []string{"x"}}, 422, "ids", "unknown_field"},
	}
	for _, tc := range cases {
		status, body, _ := e.do(tc.method, tc.path, e.support, tc.body)
		eb := decode[errorBody](t, body)
		if status != tc.status || len(eb.Errors) == 0 || eb.Errors[0].Path != tc.field || eb.Errors[0].Code != tc.code || eb.Errors[0].Message == "" {
			t.Errorf("%s %s: %d %s; want %d %s %s", tc.method, tc.path, status, body, tc.status, tc.field, tc.code)
		}
	}
	// Roles: ingest may not read support data; an operator may read stats but not search.
	if status, _, _ := e.do("GET", "/v1/deliveries", e.ingest, nil); status != http.StatusForbidden {
		t.Errorf("ingest key searching: %d", status)
	}
	if status, _, _ := e.do("GET", "/v1/deliveries", e.operator, nil); status != http.StatusForbidden {
		t.Errorf("operator key searching: %d", status)
	}
	if status, _, _ := e.do("GET", "/v1/destinations/"+dest+"/stats", e.ingest, nil); status != http.StatusForbidden {
		t.Errorf("ingest key reading stats: %d", status)
	}
}
