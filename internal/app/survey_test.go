package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/simulator"
)

const surveyBrandToken = "sim-brand-token-0001"

// svConn is a survey connection as the operator API shows it.
type svConn struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	BaseURL          string `json:"baseUrl"`
	TokenLast4       string `json:"apiTokenLast4"`
	BrandID          string `json:"brandId"`
	IncrementalEvery string `json:"incrementalEvery"`
	FullEvery        string `json:"fullEvery"`
	ExpiryLead       string `json:"expiryLead"`
	Version          int64  `json:"version"`
	LastSync         *struct {
		ID       string         `json:"id"`
		Mode     string         `json:"mode"`
		Outcome  string         `json:"outcome"`
		Error    string         `json:"error"`
		Counts   map[string]int `json:"counts"`
		Requests int            `json:"requests"`
		EndedAt  *time.Time     `json:"endedAt"`
	} `json:"lastSync"`
	LastGoodSync *struct {
		ID string `json:"id"`
	} `json:"lastGoodSync"`
}

// webhookSink is a notification receiver that verifies Standard Webhooks signatures.
type webhookSink struct {
	t      *testing.T
	key    []byte
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	got    []sinkHit
	fail   int   // answer 503 to this many more calls
	script []int // then answer these statuses, one per call, before answering 200
	calls  int
	badSig int // calls, answered or not, whose signature did not verify
}

type sinkHit struct {
	ID, Idempotency string
	Verified        bool
	Signature       string
	Body            map[string]any
}

func newWebhookSink(t *testing.T) *webhookSink {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &webhookSink{t: t, key: key, secret: notify.SecretPrefix + base64.StdEncoding.EncodeToString(key)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		verified := notify.Verify(key, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body,
			r.Header.Get("webhook-signature"), time.Now(), 5*time.Minute)
		if !verified {
			s.badSig++
		}
		if s.fail > 0 {
			s.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if len(s.script) > 0 {
			st := s.script[0]
			s.script = s.script[1:]
			if st != http.StatusOK {
				w.WriteHeader(st)
				return
			}
		}
		h := sinkHit{ID: r.Header.Get("webhook-id"), Idempotency: r.Header.Get("Idempotency-Key"), Signature: r.Header.Get("webhook-signature"), Verified: verified}
		if err := json.Unmarshal(body, &h.Body); err != nil {
			t.Errorf("webhook body is not JSON: %s", body)
		}
		s.got = append(s.got, h)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *webhookSink) hits() []sinkHit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// byType counts hits per type and recipient email ("" for stats).
func (s *webhookSink) byType() map[string][]string {
	out := map[string][]string{}
	for _, h := range s.hits() {
		typ, _ := h.Body["type"].(string)
		who := ""
		if r, ok := h.Body["recipient"].(map[string]any); ok {
			who, _ = r["email"].(string)
		}
		out[typ] = append(out[typ], who)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// surveyEnv is one qgate node, the simulator with a brand, and a webhook receiver.
type surveyEnv struct {
	n     *node
	sim   *simulator.Simulator
	simU  string
	brand *simulator.Brand
	sink  *webhookSink
	op    string
	sup   string
}

func startSurveyEnv(t *testing.T, mutate func(*config.Config)) *surveyEnv {
	t.Helper()
	sim, srv, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &surveyEnv{sim: sim, simU: srv.URL, brand: sim.AddBrand("simbrand", surveyBrandToken), sink: newWebhookSink(t)}
	e.n = startNode(t, func(c *config.Config) {
		c.AllowPrivateNetworks = true
		c.SecretKey = strings.Repeat("ef", 32)
		c.RetryBaseDelay, c.RetryMaxDelay, c.BreakerTimeout = 20*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		if mutate != nil {
			mutate(c)
		}
	})
	e.op, e.sup = e.n.createKey("operator"), e.n.createKey("support")
	return e
}

func (e *surveyEnv) connect(t *testing.T, lead string) svConn {
	t.Helper()
	st, body, _ := e.n.do("POST", "/v1/survey-connections", e.op, map[string]any{"name": "sim", "baseUrl": e.simU + "/API/v3/",
		"apiToken": surveyBrandToken, "expiryLead": lead})
	if st != 201 {
		t.Fatalf("create connection: %d %s", st, body)
	}
	return decode[svConn](t, body)
}

func (e *surveyEnv) channel(t *testing.T, events ...string) string {
	t.Helper()
	st, body, _ := e.n.do("POST", "/v1/notification-channels", e.op, map[string]any{"name": "hook", "kind": "webhook",
		"url": e.sink.srv.URL + "/hook", "secret": e.sink.secret, "events": events})
	if st != 201 {
		t.Fatalf("create channel: %d %s", st, body)
	}
	return decode[struct{ ID string }](t, body).ID
}

// sync asks for a sync and waits for it to end; it returns the connection after it.
func (e *surveyEnv) sync(t *testing.T, id string) svConn {
	t.Helper()
	_, body, _ := e.n.do("GET", "/v1/survey-connections/"+id, e.op, nil)
	before := decode[svConn](t, body)
	st, body, _ := e.n.do("POST", "/v1/survey-connections/"+id+"/sync", e.op, nil)
	if st != 202 {
		t.Fatalf("sync: %d %s", st, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, body, _ = e.n.do("GET", "/v1/survey-connections/"+id, e.op, nil)
		c := decode[svConn](t, body)
		if c.LastSync != nil && (before.LastSync == nil || c.LastSync.ID != before.LastSync.ID) && c.LastSync.Outcome != "running" {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sync of %s did not end in 20 s: %s", id, body)
	return svConn{}
}

// settle waits until no notification is pending or retrying.
func (e *surveyEnv) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		open := 0
		for _, s := range []string{"pending", "retrying"} {
			_, body, _ := e.n.do("GET", "/v1/deliveries?status="+s, e.sup, nil)
			open += len(decode[struct{ Deliveries []any }](t, body).Deliveries)
		}
		if open == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("notifications still pending after 20 s")
}

// TestSurveyWatchEndToEnd: a new recipient with status Success gets exactly one signed
// survey.request; within expiryLead of the link's expiry one survey.expiring; a recipient who
// finished gets no reminder; syncing again sends nothing twice.
func TestSurveyWatchEndToEnd(t *testing.T) {
	e := startSurveyEnv(t, nil)
	e.channel(t, notify.Types...)
	// A 1 h lead first: the pulse links (20 h left) are not yet "expiring".
	c := e.connect(t, "1h")
	c = e.sync(t, c.ID)
	if c.LastSync.Outcome != "succeeded" || c.LastSync.Mode != "full" || c.BrandID != "simbrand" {
		t.Fatalf("first sync: %+v brand %q", c.LastSync, c.BrandID)
	}
	e.settle(t)
	want := map[string][]string{"survey.request": {"alice@example.com", "bob@example.com", "erin@example.com", "frank@example.com"}}
	if got := e.sink.byType(); !equalTypes(got, want) {
		t.Fatalf("after the first sync: %v, want %v", got, want)
	}

	// A new recipient's email is delivered: exactly one signed survey.request.
	e.brand.AddRecipient(simulator.BrandDistPulse, "nia@example.com", "Nia", "New", "Success")
	e.sync(t, c.ID)
	e.settle(t)
	want["survey.request"] = []string{"alice@example.com", "bob@example.com", "erin@example.com", "frank@example.com", "nia@example.com"}
	if got := e.sink.byType(); !equalTypes(got, want) {
		t.Fatalf("after nia's Success: %v, want %v", got, want)
	}
	var nia sinkHit
	for _, h := range e.sink.hits() {
		if r, _ := h.Body["recipient"].(map[string]any); r != nil && r["email"] == "nia@example.com" {
			nia = h
		}
	}
	links, _ := nia.Body["links"].(map[string]any)
	if !nia.Verified || nia.ID == "" || nia.ID != nia.Idempotency || nia.ID != nia.Body["id"] ||
		!strings.Contains(links["respond"].(string), "/jfe/form/"+simulator.BrandSurveyPulse+"?") || nia.Body["expiresAt"] == nil {
		t.Fatalf("nia's survey.request: %+v", nia)
	}

	// Alice finishes; the lead grows to 24 h, so the pulse links (20 h left) are expiring:
	// reminders for bob and nia, none for alice, and the stats for the admins.
	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "alice@example.com", "SurveyFinished")
	st, body, _ := e.n.do("PATCH", "/v1/survey-connections/"+c.ID, e.op, map[string]any{"expiryLead": "24h"})
	if st != 200 {
		t.Fatalf("patch: %d %s", st, body)
	}
	e.sync(t, c.ID)
	e.settle(t)
	want["survey.expiring"] = []string{"bob@example.com", "nia@example.com"}
	want["survey.stats"] = []string{""}
	if got := e.sink.byType(); !equalTypes(got, want) {
		t.Fatalf("after alice finished and the lead grew: %v, want %v", got, want)
	}
	schema := compileNotificationSchema(t)
	for _, h := range e.sink.hits() {
		if err := schema.Validate(toInstance(t, h.Body)); err != nil {
			t.Errorf("%s (%s) does not match schemas/survey-notification.schema.json: %v", h.ID, h.Body["type"], err)
		}
		if !h.Verified {
			t.Errorf("%s: signature does not verify", h.ID)
		}
		if h.Body["type"] == "survey.stats" {
			d := h.Body["distribution"].(map[string]any)
			if s := d["stats"].(map[string]any); s["finished"] != 2.0 || s["sent"] != 4.0 || h.Body["recipient"] != nil {
				t.Errorf("stats notice: %v", h.Body)
			}
		}
	}

	// Nia finishes, another sync: nothing new, nothing twice.
	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "nia@example.com", "SurveyFinished")
	e.sync(t, c.ID)
	e.settle(t)
	if got := e.sink.byType(); !equalTypes(got, want) {
		t.Fatalf("after nia finished: %v, want %v", got, want)
	}
}

func equalTypes(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func compileNotificationSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../../schemas/survey-notification.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const id = "https://qgate.example/schemas/survey-notification.schema.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// toInstance round-trips v through JSON into the validator's representation.
func toInstance(t *testing.T, v any) any {
	t.Helper()
	b, _ := json.Marshal(v)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}
