package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/alert"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/internal/support"
)

// A notification's deliveries as the support API shows them (GET /v1/deliveries).
type ntfDeliveries struct {
	Deliveries []delivery.Record `json:"deliveries"`
}

func (e *surveyEnv) deliveries(t *testing.T, query string) []delivery.Record {
	t.Helper()
	st, body, _ := e.n.do("GET", "/v1/deliveries?limit=200&"+query, e.sup, nil)
	if st != 200 {
		t.Fatalf("deliveries?%s: %d %s", query, st, body)
	}
	return decode[ntfDeliveries](t, body).Deliveries
}

// TestNotificationsThroughDeliveryEngine: a channel is a lane of the delivery engine. The first
// sync tells alice, bob, erin and frank (four survey.request). The receiver answers the first
// attempt 400 (that notification is dead-lettered at once, the answer kept), then 503 and 429
// (those two are retried with backoff, then delivered). Support sees every notification in
// /v1/deliveries (by channel and by the recipient's email) and /v1/updates/{notification ID},
// the dead letter in /v1/dead-letters, and a replay sends it with the same webhook-id and
// Idempotency-Key: in the end each arrives exactly once, signed.
func TestNotificationsThroughDeliveryEngine(t *testing.T) {
	e := startSurveyEnv(t, nil)
	e.sink.mu.Lock()
	e.sink.script = []int{http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusTooManyRequests}
	e.sink.mu.Unlock()
	ch := e.channel(t, notify.TypeSurveyRequest)
	c := e.connect(t, "1h")
	e.sync(t, c.ID)
	e.settle(t)

	all := e.deliveries(t, "destinationId="+ch)
	if len(all) != 4 {
		t.Fatalf("the channel has %d deliveries, want 4: %+v", len(all), all)
	}
	attempts, dead := 0, ""
	for _, d := range all {
		attempts += len(d.Attempts)
		switch d.Status {
		case delivery.DeadLettered:
			if dead != "" || d.Reason != "client_error" || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 400 {
				t.Fatalf("dead letter: %+v", d)
			}
			dead = d.DeliveryID
		case delivery.Delivered:
			if last := d.Attempts[len(d.Attempts)-1]; last.StatusCode != 200 {
				t.Fatalf("delivered without a 200: %+v", d)
			}
			for _, a := range d.Attempts[:len(d.Attempts)-1] {
				if a.StatusCode != 503 && a.StatusCode != 429 {
					t.Fatalf("retried after %d: %+v", a.StatusCode, d)
				}
			}
		default:
			t.Fatalf("after settling: %+v", d)
		}
		if !strings.HasPrefix(d.UpdateID, "ntf_") || d.DeliveryID != delivery.ID(d.UpdateID, ch) {
			t.Fatalf("delivery %s of update %s: not named by the notification", d.DeliveryID, d.UpdateID)
		}
	}
	if dead == "" || attempts != 6 {
		t.Fatalf("%d attempts in all (want 4 + a 503 and a 429 retried), dead letter %q", attempts, dead)
	}
	if n := len(e.sink.hits()); n != 3 {
		t.Fatalf("received %d, want 3 before the replay", n)
	}

	// Support finds a recipient's notifications by email, and a notification's fan-out.
	bob := e.deliveries(t, "identity=BOB@example.com")
	if len(bob) != 1 || bob[0].DestinationID != ch {
		t.Fatalf("bob's deliveries: %+v", bob)
	}
	st, body, _ := e.n.do("GET", "/v1/updates/"+bob[0].UpdateID, e.sup, nil)
	if st != 200 || !strings.Contains(string(body), bob[0].DeliveryID) {
		t.Fatalf("the notification's fan-out: %d %s", st, body)
	}
	st, body, _ = e.n.do("GET", "/v1/dead-letters?destinationId="+ch, e.sup, nil)
	if dl := decode[ntfDeliveries](t, body).Deliveries; st != 200 || len(dl) != 1 || dl[0].DeliveryID != dead {
		t.Fatalf("dead letters: %d %s", st, body)
	}

	// Replay: sent again, with the same IDs, and delivered.
	st, body, _ = e.n.do("POST", "/v1/dead-letters/replay", e.sup, map[string]any{"deliveryIds": []string{dead}})
	if st != 200 || !strings.Contains(string(body), `"replayed":1`) {
		t.Fatalf("replay: %d %s", st, body)
	}
	waitFor(t, "the replayed notification", func() bool { return len(e.sink.hits()) == 4 })
	e.settle(t)
	seen := map[string]int{}
	for _, h := range e.sink.hits() {
		seen[h.ID]++
		if !h.Verified || h.ID != h.Idempotency || h.ID != h.Body["id"] {
			t.Errorf("hit %+v: signature, webhook-id, Idempotency-Key and body id must agree", h)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("distinct notifications received: %v", seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
	if d := e.deliveries(t, "destinationId="+ch+"&status=delivered"); len(d) != 4 {
		t.Fatalf("delivered after the replay: %d", len(d))
	}
	e.sink.mu.Lock()
	defer e.sink.mu.Unlock()
	if e.sink.calls != 7 || e.sink.badSig != 0 {
		t.Fatalf("%d calls (want 4 + 2 retries + the replay), %d without a valid signature (signed at every attempt)", e.sink.calls, e.sink.badSig)
	}
}

// TestNotificationRetryWindow: a channel that never answers is retried until the retry window
// (QGATE_RETRY_WINDOW) has passed, then its notifications are dead-lettered with reason
// retry_window_exceeded, replayable like any dead letter.
func TestNotificationRetryWindow(t *testing.T) {
	e := startSurveyEnv(t, func(c *config.Config) { c.RetryWindow = time.Second })
	e.sink.mu.Lock()
	e.sink.fail = 1 << 20
	e.sink.mu.Unlock()
	ch := e.channel(t, notify.TypeSurveyRequest)
	c := e.connect(t, "1h")
	e.sync(t, c.ID)
	e.settle(t)
	dead := e.deliveries(t, "destinationId="+ch+"&status=dead_lettered")
	if len(dead) != 4 {
		t.Fatalf("dead letters after the window: %+v", dead)
	}
	for _, d := range dead {
		if d.Reason != delivery.ReasonRetryWindow || len(d.Attempts) < 2 || d.Attempts[len(d.Attempts)-1].StatusCode != 503 {
			t.Fatalf("dead letter: %+v", d)
		}
	}
	if n := len(e.sink.hits()); n != 0 {
		t.Fatalf("%d notifications delivered by a receiver that only answers 503", n)
	}
}

// TestNotificationChannelBreaker: a channel that keeps failing opens its lane's circuit (the
// engine's breaker: five failures in a row), nothing is dropped while it is open, and once
// the receiver answers again the probe closes it and every notification arrives once.
func TestNotificationChannelBreaker(t *testing.T) {
	e := startSurveyEnv(t, func(c *config.Config) { c.BreakerTimeout = 300 * time.Millisecond })
	e.sink.mu.Lock()
	e.sink.fail = 1 << 20
	e.sink.mu.Unlock()
	ch := e.channel(t, notify.TypeSurveyRequest)
	// An operator on call for this channel hears of its circuit, as of a destination's.
	hook := newHookReceiver(t)
	st, body, _ := e.n.do("POST", "/v1/alert-subscriptions", e.op, map[string]any{"name": "on-call", "url": hook.srv.URL + "/alerts", "secret": hook.secret,
		"events": events(alert.EventCircuitOpened, alert.EventCircuitClosed), "destinationIds": []string{ch}})
	if st != http.StatusCreated {
		t.Fatalf("alert subscription for the channel: %d %s", st, body)
	}
	c := e.connect(t, "1h")
	e.sync(t, c.ID)
	opened := hook.await("circuit.opened for the channel", func(d map[string][]hookRequest) bool { return len(d[alert.EventCircuitOpened]) >= 1 })
	if a := opened[alert.EventCircuitOpened][0]; a.Data["destinationId"] != ch || !strings.Contains(a.Data["message"].(string), `"hook"`) {
		t.Fatalf("circuit.opened for the channel: %+v", a)
	}
	waitFor(t, "the channel's circuit to open", func() bool {
		return strings.Contains(e.n.logs.String(), `circuit opened for destination \"hook\"`)
	})
	// The channel's figures show it (the node sends to it, so the state is its breaker's).
	waitFor(t, "the channel's stats to show the circuit open", func() bool {
		st := e.channelStats(t, ch)
		return st.Circuit.State != "closed" && st.Circuit.Source == "node"
	})
	e.sink.mu.Lock()
	callsWhenOpened := e.sink.calls
	e.sink.mu.Unlock()
	if len(e.deliveries(t, "status=dead_lettered")) != 0 {
		t.Fatal("a failing channel dead-lettered notifications before the retry window")
	}
	e.sink.mu.Lock()
	e.sink.fail = 0
	e.sink.mu.Unlock()
	e.settle(t)
	if !strings.Contains(e.n.logs.String(), `circuit closed for destination \"hook\"`) {
		t.Error("the circuit did not close after the receiver recovered")
	}
	got := uniqueHits(t, e.sink)
	if len(got["survey.request"]) != 4 || len(e.sink.hits()) != 4 {
		t.Fatalf("after recovery: %v (%d hits)", got, len(e.sink.hits()))
	}
	if callsWhenOpened < 5 {
		t.Fatalf("the circuit opened after %d calls", callsWhenOpened)
	}
	if st := e.channelStats(t, ch); st.Circuit.State != "closed" || st.ByStatus[delivery.Delivered] != 4 || st.Received != 4 {
		t.Fatalf("the channel's stats after recovery: %+v", st)
	}
	alerts := hook.await("circuit.closed for the channel", func(d map[string][]hookRequest) bool { return len(d[alert.EventCircuitClosed]) >= 1 })
	if len(alerts[alert.EventCircuitOpened]) != 1 || len(alerts[alert.EventCircuitClosed]) != 1 || alerts[alert.EventCircuitClosed][0].Data["destinationId"] != ch {
		t.Fatalf("the channel's circuit alerts: %+v", alerts)
	}
	hook.checkSignatures()
}

// channelStats is GET /v1/notification-channels/{id}/stats as support sees it.
func (e *surveyEnv) channelStats(t *testing.T, id string) support.StatsView {
	t.Helper()
	st, body, _ := e.n.do("GET", "/v1/notification-channels/"+id+"/stats?window=1h", e.sup, nil)
	if st != 200 {
		t.Fatalf("channel stats: %d %s", st, body)
	}
	v := decode[support.StatsView](t, body)
	if v.DestinationID != id || v.Paused {
		t.Fatalf("channel stats of %s: %s", id, body)
	}
	return v
}

// TestNotificationSlackChannel: a Slack channel receives the readable message with its link
// buttons, through the same lane machinery, unsigned (it has no secret).
func TestNotificationSlackChannel(t *testing.T) {
	e := startSurveyEnv(t, nil)
	st, body, _ := e.n.do("POST", "/v1/notification-channels", e.op, map[string]any{"name": "slack", "kind": "slack",
		"url": e.sink.srv.URL + "/slack", "events": []string{notify.TypeSurveyRequest}})
	if st != 201 {
		t.Fatalf("create slack channel: %d %s", st, body)
	}
	c := e.connect(t, "1h")
	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "bob@example.com", "SurveyFinished")
	e.sync(t, c.ID)
	e.settle(t)
	hits := e.sink.hits()
	if len(hits) != 3 {
		t.Fatalf("slack received %d messages, want alice, erin and frank's: %+v", len(hits), hits)
	}
	for _, h := range hits {
		text, _ := h.Body["text"].(string)
		if h.Signature != "" || h.ID != "" || !strings.HasPrefix(h.Idempotency, "ntf_") ||
			!strings.Contains(text, "New survey for ") || !strings.Contains(text, "|Respond to Survey in Qualtrics>") {
			t.Errorf("slack message: %+v", h)
		}
	}
}
