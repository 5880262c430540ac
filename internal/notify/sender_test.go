package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/store"
)

// receiver answers scripted statuses (then 200) and records what it got.
type receiver struct {
	mu     sync.Mutex
	script []int
	got    []*http.Request
	bodies []string
	srv    *httptest.Server
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, req)
		r.bodies = append(r.bodies, string(b))
		status := 200
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

type senderEnv struct {
	db     *store.DB
	svc    *notify.Service
	outbox *notify.Outbox
	now    time.Time
	key    []byte
}

func newSenderEnv(t *testing.T) *senderEnv {
	db, err := store.Open(context.Background(), "", filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	box, _ := destination.NewBox([]byte(strings.Repeat("n", 32)))
	e := &senderEnv{db: db, now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	e.svc = &notify.Service{Store: db, Box: box, Policy: qualtrics.HostPolicy{AllowPrivate: true}, Now: func() time.Time { return e.now }}
	e.outbox = &notify.Outbox{Store: db, Now: func() time.Time { return e.now }}
	e.key = make([]byte, 32)
	_, _ = rand.Read(e.key)
	return e
}

func (e *senderEnv) channel(t *testing.T, name, kind, url string) notify.Channel {
	secret := notify.SecretPrefix + base64.StdEncoding.EncodeToString(e.key)
	events := []string{notify.TypeSurveyRequest}
	r := notify.ChannelRequest{Name: &name, Kind: &kind, URL: &url, Events: &events}
	if kind == notify.KindWebhook {
		r.Secret = &secret
	}
	c, err := e.svc.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *senderEnv) sender(node string) *notify.Sender {
	box, _ := destination.NewBox([]byte(strings.Repeat("n", 32)))
	return &notify.Sender{Store: e.db, Box: box, HTTP: notify.NewHTTPClient(qualtrics.HostPolicy{AllowPrivate: true}), Node: node,
		Backoff: notify.Backoff{Base: time.Second, Max: time.Minute}, Window: time.Hour, Now: func() time.Time { return e.now }}
}

func msg(id string) notify.Message {
	return notify.Message{ID: id, Type: notify.TypeSurveyRequest, ConnectionID: "svc_1", OccurredAt: time.Now(),
		Body: []byte(`{"id":"` + id + `","type":"survey.request"}`), Text: "New survey for a@example.com: \"Pulse\".",
		Links: []notify.Link{{Label: "Respond", URL: "https://x.qualtrics.com/jfe/form/SV_1"}}}
}

func (e *senderEnv) delivery(t *testing.T, id string) notify.Delivery {
	ds, err := e.db.NotificationDeliveries(context.Background(), notify.Filter{NotificationID: id})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries of %s: %v %v", id, ds, err)
	}
	return ds[0]
}

// TestSenderRetriesThenDelivers: [503, 429, 200] → three attempts, one webhook-id, signed;
// the store shows delivered after 3 attempts.
func TestSenderRetriesThenDelivers(t *testing.T) {
	e := newSenderEnv(t)
	rc := newReceiver(t, 503, 429, 200)
	e.channel(t, "hook", notify.KindWebhook, rc.srv.URL)
	if n, err := e.outbox.Publish(context.Background(), []notify.Message{msg("ntf_a")}); n != 1 || err != nil {
		t.Fatalf("publish: %d %v", n, err)
	}
	if n, _ := e.outbox.Publish(context.Background(), []notify.Message{msg("ntf_a")}); n != 0 {
		t.Fatalf("publishing the same ID again recorded %d", n)
	}
	s := e.sender("node-a")
	for i := 0; i < 3; i++ {
		if n := s.Pass(context.Background()); n != 1 {
			t.Fatalf("pass %d attempted %d", i, n)
		}
		if n := s.Pass(context.Background()); n != 0 {
			t.Fatalf("pass %d again attempted %d before the backoff passed", i, n)
		}
		e.now = e.now.Add(2 * time.Minute)
	}
	d := e.delivery(t, "ntf_a")
	if d.Status != notify.StatusDelivered || d.Attempts != 3 || rc.count() != 3 {
		t.Fatalf("delivery %+v, received %d", d, rc.count())
	}
	for i, r := range rc.got {
		if r.Header.Get("webhook-id") != "ntf_a" || r.Header.Get("Idempotency-Key") != "ntf_a" ||
			!notify.Verify(e.key, "ntf_a", r.Header.Get("webhook-timestamp"), []byte(rc.bodies[i]), r.Header.Get("webhook-signature"), e.now, time.Hour) {
			t.Errorf("attempt %d: headers %v", i, r.Header)
		}
	}
}

// TestSenderDeadLettersAndReplays: a 400 dead-letters at once; a retryable failure past the
// window dead-letters too; replay sends again.
func TestSenderDeadLettersAndReplays(t *testing.T) {
	e := newSenderEnv(t)
	rc := newReceiver(t, 400, 503, 503)
	e.channel(t, "hook", notify.KindWebhook, rc.srv.URL)
	_, _ = e.outbox.Publish(context.Background(), []notify.Message{msg("ntf_b")})
	s := e.sender("node-a")
	s.Pass(context.Background())
	d := e.delivery(t, "ntf_b")
	if d.Status != notify.StatusDeadLettered || d.Attempts != 1 || d.LastStatusCode != 400 {
		t.Fatalf("after a 400: %+v", d)
	}
	if n, err := e.db.ReplayNotifications(context.Background(), []string{d.ID}, e.now); n != 1 || err != nil {
		t.Fatalf("replay: %d %v", n, err)
	}
	s.Pass(context.Background()) // 503
	e.now = e.now.Add(2 * time.Hour)
	s.Pass(context.Background()) // 503 past the 1 h window
	d = e.delivery(t, "ntf_b")
	if d.Status != notify.StatusDeadLettered || d.Attempts != 3 || d.LastStatusCode != 503 {
		t.Fatalf("after the window: %+v", d)
	}
	_, _ = e.db.ReplayNotifications(context.Background(), []string{d.ID}, e.now)
	s.Pass(context.Background())
	if d = e.delivery(t, "ntf_b"); d.Status != notify.StatusDelivered || rc.count() != 4 {
		t.Fatalf("after the replay: %+v, %d received", d, rc.count())
	}
}

// TestSenderTwoNodesSendOnce: two senders on one store; every delivery arrives once.
func TestSenderTwoNodesSendOnce(t *testing.T) {
	e := newSenderEnv(t)
	rc := newReceiver(t)
	e.channel(t, "hook", notify.KindWebhook, rc.srv.URL)
	var msgs []notify.Message
	for i := range 30 {
		msgs = append(msgs, msg("ntf_"+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	_, _ = e.outbox.Publish(context.Background(), msgs)
	var wg sync.WaitGroup
	for _, node := range []string{"node-a", "node-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := e.sender(node)
			for s.Pass(context.Background()) > 0 {
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rc.got {
		seen[r.Header.Get("webhook-id")]++
	}
	if len(seen) != 30 {
		t.Fatalf("received %d distinct notifications, want 30", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
}

// TestSenderSlackMessage: a Slack channel gets a readable message with the links, unsigned.
func TestSenderSlackMessage(t *testing.T) {
	e := newSenderEnv(t)
	rc := newReceiver(t)
	e.channel(t, "slack", notify.KindSlack, rc.srv.URL)
	_, _ = e.outbox.Publish(context.Background(), []notify.Message{msg("ntf_s")})
	e.sender("node-a").Pass(context.Background())
	if rc.count() != 1 || !strings.Contains(rc.bodies[0], `<https://x.qualtrics.com/jfe/form/SV_1|Respond>`) ||
		!strings.Contains(rc.bodies[0], `New survey for a@example.com`) || rc.got[0].Header.Get("webhook-signature") != "" {
		t.Fatalf("slack got %v", rc.bodies)
	}
}

// TestSenderBreakerHoldsFailingChannel: after Threshold failures in a row the channel's
// deliveries wait (no attempts) until the cooldown ends; one probe then closes the circuit.
func TestSenderBreakerHoldsFailingChannel(t *testing.T) {
	e := newSenderEnv(t)
	rc := newReceiver(t, 503, 503, 503, 503, 503)
	e.channel(t, "hook", notify.KindWebhook, rc.srv.URL)
	s := e.sender("node-a")
	s.Breaker = &notify.Breaker{Threshold: 2, Cooldown: time.Minute}
	var msgs []notify.Message
	for _, id := range []string{"ntf_1", "ntf_2", "ntf_3", "ntf_4"} {
		msgs = append(msgs, msg(id))
	}
	_, _ = e.outbox.Publish(context.Background(), msgs)
	s.Pass(context.Background()) // ntf_1 503, ntf_2 503 → open; ntf_3, ntf_4 held
	if rc.count() != 2 || s.Breaker.State(e.delivery(t, "ntf_1").ChannelID, e.now) != "open" {
		t.Fatalf("after two failures: %d received, circuit %s", rc.count(), s.Breaker.State(e.delivery(t, "ntf_1").ChannelID, e.now))
	}
	if d := e.delivery(t, "ntf_3"); d.Attempts != 0 || d.NextAt == nil || d.NextAt.Before(e.now.Add(time.Minute)) {
		t.Fatalf("held delivery: %+v", d)
	}
	e.now = e.now.Add(30 * time.Second)
	if n := s.Pass(context.Background()); n != 0 || rc.count() != 2 {
		t.Fatalf("attempted %d during the cooldown (%d received)", n, rc.count())
	}
	e.now = e.now.Add(31 * time.Second)
	s.Pass(context.Background()) // half-open: one probe (503) → open for 2 min, the others wait
	if rc.count() != 3 {
		t.Fatalf("half-open let %d through, want one probe", rc.count()-2)
	}
	e.now = e.now.Add(2*time.Minute + time.Second)
	rc.mu.Lock()
	rc.script = nil // the channel recovers
	rc.mu.Unlock()
	for range 5 { // the probe closes the circuit; the backed-off ones follow as they fall due
		s.Pass(context.Background())
		e.now = e.now.Add(10 * time.Minute)
	}
	if st := s.Breaker.State(e.delivery(t, "ntf_1").ChannelID, e.now); st != "closed" {
		t.Errorf("circuit %s after the channel recovered", st)
	}
	for _, id := range []string{"ntf_1", "ntf_2", "ntf_3", "ntf_4"} {
		if d := e.delivery(t, id); d.Status != notify.StatusDelivered {
			t.Errorf("%s: %+v", id, d)
		}
	}
}
