package app_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/alert"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/simulator"
)

// hookReceiver is an alert webhook endpoint: it verifies every request's Standard Webhooks
// signature and keeps what arrived; fail makes its next answers 503.
type hookReceiver struct {
	t      *testing.T
	key    []byte
	secret string
	srv    *httptest.Server

	mu      sync.Mutex
	fail    int
	got     []hookRequest
	bad     []string
	changed chan struct{}
}

type hookRequest struct {
	ID     string
	Status int // what the receiver answered
	Body   alert.Body
	Data   map[string]any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{t: t, key: key, secret: notify.SecretPrefix + base64.StdEncoding.EncodeToString(key), changed: make(chan struct{}, 1)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() {
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}()
	if !notify.Verify(h.key, id, r.Header.Get("webhook-timestamp"), b, r.Header.Get("webhook-signature"), time.Now(), 5*time.Minute) {
		h.bad = append(h.bad, "bad signature on "+id)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var req hookRequest
	req.ID = id
	if err := json.Unmarshal(b, &req.Body); err != nil || json.Unmarshal(req.Body.Data, &req.Data) != nil || r.Header.Get("Content-Type") != "application/json" {
		h.bad = append(h.bad, "bad body "+string(b))
	}
	req.Status = http.StatusOK
	if h.fail > 0 {
		h.fail--
		req.Status = http.StatusServiceUnavailable
	}
	h.got = append(h.got, req)
	w.WriteHeader(req.Status)
}

// delivered returns the distinct alerts answered 200, by event type.
func (h *hookReceiver) delivered() map[string][]hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]hookRequest{}
	for _, r := range h.got {
		if r.Status == http.StatusOK {
			out[r.Body.Type] = append(out[r.Body.Type], r)
		}
	}
	return out
}

// await waits (for a receiver change, not a sleep) until cond holds on what was delivered.
func (h *hookReceiver) await(what string, cond func(map[string][]hookRequest) bool) map[string][]hookRequest {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		d := h.delivered()
		if cond(d) {
			return d
		}
		select {
		case <-h.changed:
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; delivered: %+v", what, d)
		}
	}
}

func (h *hookReceiver) checkSignatures() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 {
		h.t.Fatalf("the receiver refused requests: %v", h.bad)
	}
}

func (e *deliveryEnv) subscribe(name string, hook *hookReceiver, events []map[string]any, dests ...string) string {
	e.t.Helper()
	if dests == nil {
		dests = []string{}
	}
	status, body, _ := e.do("POST", "/v1/alert-subscriptions", e.operator, map[string]any{
		"name": name, "url": hook.srv.URL + "/alerts", "secret": hook.secret, "events": events, "destinationIds": dests})
	if status != http.StatusCreated {
		e.t.Fatalf("create alert subscription: %d %s", status, body)
	}
	if strings.Contains(string(body), hook.secret) || strings.Contains(string(body), base64.StdEncoding.EncodeToString(hook.key)[:20]) {
		e.t.Fatalf("the answer shows the secret: %s", body)
	}
	return decode[alert.Subscription](e.t, body).ID
}

func events(types ...string) []map[string]any {
	out := make([]map[string]any, len(types))
	for i, t := range types {
		out[i] = map[string]any{"type": t}
	}
	return out
}

// A destination that answers 401 raises exactly one destination.auth and one circuit.opened
// at the subscriber's webhook, signed, however long it keeps failing (the circuit reopens after
// every failed probe); the first attempt to the webhook fails and is retried with the same
// webhook-id. Recovery raises circuit.closed; GET /v1/alerts lists all three, delivered.
func TestAlertsFireOncePerEpisodeAtASignedWebhook(t *testing.T) {
	e := startDelivery(t, nil) // circuit timeout 200 ms: a probe every ~200 ms while it fails
	hook := newHookReceiver(t)
	hook.fail = 1
	dest, wf := e.destination("npsfollowup", map[string]any{"name": "nps follow-up"})
	other, _ := e.destination("other", nil)
	sub := e.subscribe("on-call", hook, events(alert.EventCircuitOpened, alert.EventCircuitClosed, alert.EventDestinationAuth), dest)

	unauthorized := simStep(401, `{"meta":{"httpStatus":"401 - Unauthorized"}}`)
	e.sim.Script(wf, repeat(unauthorized, 500)...) // scripted: each 401 is a recorded run
	e.post(richProfile("auth@example.com"))
	got := hook.await("destination.auth and circuit.opened", func(d map[string][]hookRequest) bool {
		return len(d[alert.EventDestinationAuth]) >= 1 && len(d[alert.EventCircuitOpened]) >= 1
	})
	auth := got[alert.EventDestinationAuth][0]
	if auth.Data["destinationId"] != dest || auth.Data["destinationName"] != "nps follow-up" || auth.Data["statusCode"] != float64(401) ||
		auth.Data["subscriptionId"] != sub || !strings.Contains(auth.Data["message"].(string), `"nps follow-up" answered 401`) {
		t.Fatalf("destination.auth body: %+v", auth)
	}
	if msg := got[alert.EventCircuitOpened][0].Data["message"].(string); !strings.Contains(msg, "nps follow-up") || !strings.Contains(msg, "401") {
		t.Fatalf("circuit.opened names neither the destination nor the reason: %q", msg)
	}

	// Continued failures: more probes, more profiles, more evaluator passes; no new alert.
	runs := len(e.sim.Runs(wf))
	e.post(richProfile("auth2@example.com"))
	e.runs(wf, runs+10) // ≥ 10 more 401s, ~2 s: several evaluation passes
	if d := hook.delivered(); len(d[alert.EventDestinationAuth]) != 1 || len(d[alert.EventCircuitOpened]) != 1 || len(d[alert.EventCircuitClosed]) != 0 {
		t.Fatalf("an alert storm under continued failures: %+v", d)
	}

	// Recovery: the next probe is delivered, the circuit closes.
	e.sim.Script(wf)
	got = hook.await("circuit.closed", func(d map[string][]hookRequest) bool { return len(d[alert.EventCircuitClosed]) >= 1 })
	if len(got[alert.EventCircuitClosed]) != 1 || len(got[alert.EventCircuitOpened]) != 1 || len(got[alert.EventDestinationAuth]) != 1 {
		t.Fatalf("after recovery: %+v", got)
	}
	hook.checkSignatures()

	// The first webhook attempt got 503: it was retried with the same webhook-id.
	hook.mu.Lock()
	first := hook.got[0]
	retried := 0
	for _, r := range hook.got {
		if r.ID == first.ID {
			retried++
		}
	}
	hook.mu.Unlock()
	if first.Status != http.StatusServiceUnavailable || retried != 2 {
		t.Fatalf("the failed webhook attempt was not retried once with the same id: %+v", first)
	}

	// The sender records the last answer just after the receiver saw it: wait for the list.
	var list alert.AlertList
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		var status int
		status, body, _ = e.do("GET", "/v1/alerts?destinationId="+dest, e.support, nil)
		list = decode[alert.AlertList](t, body)
		if status != http.StatusOK || len(list.Alerts) != 3 {
			t.Fatalf("GET /v1/alerts: %d %s", status, body)
		}
		if list.Alerts[0].Status == alert.StatusDelivered || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the observable API, not synchronising
	}
	attempts := 0
	for _, a := range list.Alerts {
		if a.Status != alert.StatusDelivered || a.DeliveredAt == nil || a.SubscriptionID != sub || a.Message == "" {
			t.Errorf("listed alert: %+v", a)
		}
		attempts += a.Attempts
	}
	if attempts != 4 || list.Alerts[0].Event != alert.EventCircuitClosed {
		t.Errorf("alerts: want the newest first (circuit.closed) and 4 attempts in all: %s", body)
	}
	// The other destination is not covered by the subscription.
	if status, body, _ := e.do("GET", "/v1/alerts?destinationId="+other, e.support, nil); status != http.StatusOK || len(decode[alert.AlertList](t, body).Alerts) != 0 {
		t.Fatalf("alerts of another destination: %s", body)
	}
}

// The threshold events: dead letters in a window, the share of failed attempts in a window,
// and the age of the oldest waiting delivery; each fires once.
func TestAlertThresholds(t *testing.T) {
	e := startDelivery(t, nil)
	hook := newHookReceiver(t)
	bad, wfBad := e.destination("rejecting", nil)
	slow, wfSlow := e.destination("waiting", nil)
	e.subscribe("thresholds", hook, []map[string]any{
		{"type": alert.EventDeadLettersThreshold, "count": 2, "window": "10m"},
		{"type": alert.EventFailureRate, "rate": 0.5, "minAttempts": 2, "window": "10m"},
	}, bad)
	e.subscribe("backlog", hook, []map[string]any{{"type": alert.EventBacklogAge, "olderThan": "1s"}}, slow)

	reject := `{"meta":{"httpStatus":"400 - Bad Request"}}`
	e.sim.Script(wfBad, simStep(400, reject), simStep(400, reject), simStep(400, reject))
	for _, m := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		e.post(richProfile(m))
	}
	e.sim.Script(wfSlow, repeat(simStep(401, `{"meta":{"httpStatus":"401 - Unauthorized"}}`), 500)...)
	e.post(richProfile("slow@example.com"))

	got := hook.await("the three threshold alerts", func(d map[string][]hookRequest) bool {
		return len(d[alert.EventDeadLettersThreshold]) >= 1 && len(d[alert.EventFailureRate]) >= 1 && len(d[alert.EventBacklogAge]) >= 1
	})
	dl := got[alert.EventDeadLettersThreshold][0].Data
	if dl["destinationId"] != bad || dl["threshold"] != float64(2) || dl["count"].(float64) < 2 || dl["window"] != "10m" {
		t.Fatalf("deadletters.threshold: %+v", dl)
	}
	if fr := got[alert.EventFailureRate][0].Data; fr["destinationId"] != bad || fr["rate"].(float64) < 0.5 || fr["attempts"].(float64) < 2 {
		t.Fatalf("failure.rate: %+v", fr)
	}
	if ba := got[alert.EventBacklogAge][0].Data; ba["destinationId"] != slow || ba["ageSeconds"].(float64) < 1 {
		t.Fatalf("backlog.age: %+v", ba)
	}
	// Once per episode: the third dead letter and later passes add nothing.
	e.runs(wfBad, 3)
	n := len(e.sim.Runs(wfSlow))
	e.runs(wfSlow, n+8) // ~2 s of probes: several evaluation passes
	if d := hook.delivered(); len(d[alert.EventDeadLettersThreshold]) != 1 || len(d[alert.EventFailureRate]) != 1 || len(d[alert.EventBacklogAge]) != 1 {
		t.Fatalf("a threshold alert fired twice in one episode: %+v", d)
	}
	hook.checkSignatures()
}

// The subscription API: every problem with its path, SSRF rules, the secret never shown,
// versioned changes, deletion, and the operator role.
func TestAlertSubscriptionsAPI(t *testing.T) {
	n := startNode(t, nil) // private networks not allowed
	op, sup := n.createKey("operator"), n.createKey("support")
	secret := notify.SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 32))
	good := map[string]any{"name": "pager", "url": "https://hooks.example.com/qgate", "secret": secret, "events": events(alert.EventCircuitOpened)}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for kk, vv := range good {
			b[kk] = vv
		}
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	for _, c := range []struct {
		body       map[string]any
		path, code string
	}{
		{with("url", "https://127.0.0.1/hook"), "url", "url_not_allowed"},
		{with("url", "http://hooks.example.com/x"), "url", "url_not_allowed"},
		{with("url", nil), "url", "required"},
		{with("secret", "not-a-secret"), "secret", "invalid_secret"},
		{with("secret", nil), "secret", "required"},
		{with("events", []any{}), "events", "required"},
		{with("events", events("circuit.exploded")), "events[0].type", "invalid_event"},
		{with("events", events(alert.EventCircuitOpened, alert.EventCircuitOpened)), "events[1].type", "duplicate_event"},
		{with("events", []any{map[string]any{"type": alert.EventDeadLettersThreshold, "count": -1}}), "events[0].count", "invalid_count"},
		{with("events", []any{map[string]any{"type": alert.EventFailureRate, "rate": 1.5}}), "events[0].rate", "invalid_rate"},
		{with("events", []any{map[string]any{"type": alert.EventBacklogAge, "olderThan": "soon"}}), "events[0].olderThan", "invalid_duration"},
		{with("events", []any{map[string]any{"type": alert.EventCircuitOpened, "count": 3}}), "events[0].count", "unknown_field"},
		{with("destinationIds", []string{"nope"}), "destinationIds[0]", "invalid_destination_id"},
		{with("name", " "), "name", "required"},
	} {
		status, body, _ := n.do("POST", "/v1/alert-subscriptions", op, c.body)
		eb := decode[errorBody](t, body)
		if status != http.StatusUnprocessableEntity || len(eb.Errors) != 1 || eb.Errors[0].Path != c.path || eb.Errors[0].Code != c.code || eb.Errors[0].Message == "" {
			t.Errorf("%v: %d %s, want 422 %s %s", c.body, status, body, c.path, c.code)
		}
	}
	if status, body, _ := n.do("GET", "/v1/alert-subscriptions", op, nil); status != http.StatusOK || len(decode[alert.SubscriptionList](t, body).Subscriptions) != 0 {
		t.Fatalf("a refused subscription was created: %s", body)
	}

	// Defaults are filled in and shown; the secret only by its last 4 characters.
	status, body, hdr := n.do("POST", "/v1/alert-subscriptions", op, with("events", events(alert.EventDeadLettersThreshold, alert.EventFailureRate, alert.EventBacklogAge)))
	s := decode[alert.Subscription](t, body)
	if status != http.StatusCreated || hdr.Get("Location") != "/v1/alert-subscriptions/"+s.ID || s.SecretEnd != secret[len(secret)-4:] || strings.Contains(string(body), secret) ||
		s.Events[0] != (alert.Rule{Type: alert.EventDeadLettersThreshold, Count: 10, Window: "15m"}) ||
		s.Events[1] != (alert.Rule{Type: alert.EventFailureRate, Rate: 0.5, MinAttempts: 20, Window: "15m"}) ||
		s.Events[2] != (alert.Rule{Type: alert.EventBacklogAge, OlderThan: "30m"}) || !s.Enabled || s.Version != 1 {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, body, _ := n.do("POST", "/v1/alert-subscriptions", op, good); status != http.StatusConflict || decode[errorBody](t, body).Errors[0].Code != "name_taken" {
		t.Fatalf("duplicate name: %d %s", status, body)
	}
	status, body, _ = n.do("PATCH", "/v1/alert-subscriptions/"+s.ID, op, map[string]any{"enabled": false, "version": 1})
	if p := decode[alert.Subscription](t, body); status != http.StatusOK || p.Enabled || p.Version != 2 || len(p.Events) != 3 {
		t.Fatalf("patch: %d %s", status, body)
	}
	if status, _, _ := n.do("PATCH", "/v1/alert-subscriptions/"+s.ID, op, map[string]any{"name": "x", "version": 1}); status != http.StatusConflict {
		t.Fatalf("stale patch: %d", status)
	}
	if status, _, _ := n.do("GET", "/v1/alert-subscriptions", sup, nil); status != http.StatusForbidden {
		t.Fatalf("support may not manage subscriptions: %d", status)
	}
	if status, body, _ := n.do("GET", "/v1/alerts?event=nope", sup, nil); status != http.StatusUnprocessableEntity || decode[errorBody](t, body).Errors[0].Path != "query.event" {
		t.Fatalf("bad alerts query: %d %s", status, body)
	}
	if status, _, _ := n.do("DELETE", "/v1/alert-subscriptions/"+s.ID, op, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if status, _, _ := n.do("GET", "/v1/alert-subscriptions/"+s.ID, op, nil); status != http.StatusNotFound {
		t.Fatalf("get after delete: %d", status)
	}
}

func simStep(status int, body string) simulator.Step {
	return simulator.Step{Status: status, Body: body}
}
