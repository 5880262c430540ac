package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/receiver"
	"github.com/qgate/qgate/internal/update"
)

const audienceA = "046456e3b-18e1-48a6-9bda-d68547861283"

// sampleProfile is the brief's payload shape for one email, with a sequence attribute.
func sampleProfile(email string, seq int) map[string]any {
	return map[string]any{
		"person":      map[string]any{"name": map[string]any{"firstName": "Dave"}},
		"mobilePhone": map[string]any{"number": "0123456789"},
		"seq":         seq,
		"identityMap": map[string]any{
			"Email": []any{map[string]any{"id": email}},
			"ECID":  []any{map[string]any{"id": "4587" + strconv.Itoa(len(email))}},
		},
		"segmentMembership": map[string]any{"ups": map[string]any{
			audienceA: map[string]any{"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
		}},
	}
}

func hashedProfile() map[string]any {
	p := sampleProfile("x@example.com", 0)
	p["identityMap"] = map[string]any{"Email": []any{map[string]any{"id": strings.Repeat("ab", 32)}}}
	return p
}

func TestIngestQueuesExactlyTheAcceptedProfilesInOrder(t *testing.T) {
	n := startNode(t, nil)
	key := n.createKey("ingest")

	const profiles, updates = 6, 5
	accepted := map[string]string{} // updateId -> email
	want := map[string][]string{}   // email -> updateIds in post order
	for u := 0; u < updates; u++ {
		batch := []any{}
		for p := 0; p < profiles; p++ {
			batch = append(batch, sampleProfile(fmt.Sprintf("person%d@example.com", p), u))
		}
		batch = append(batch, hashedProfile()) // one bad profile per batch
		status, body, _ := n.do("POST", "/v1/profiles", key, map[string]any{"profiles": batch})
		if status != http.StatusAccepted {
			t.Fatalf("batch %d: status %d %s", u, status, body)
		}
		resp := decode[receiver.Response](t, body)
		if resp.Accepted != profiles || len(resp.Results) != profiles+1 {
			t.Fatalf("batch %d: accepted %d of %d results: %s", u, resp.Accepted, len(resp.Results), body)
		}
		for i, r := range resp.Results[:profiles] {
			if r.Index != i || r.Status != receiver.StatusAccepted || r.UpdateID == "" {
				t.Fatalf("result %d: %+v", i, r)
			}
			email := fmt.Sprintf("person%d@example.com", i)
			accepted[r.UpdateID] = email
			want[email] = append(want[email], r.UpdateID)
		}
		bad := resp.Results[profiles]
		if bad.Status != receiver.StatusRejected || bad.UpdateID != "" || len(bad.Errors) == 0 ||
			bad.Errors[0].Code != "hashed_email" || bad.Errors[0].Path != "identityMap.Email[0].id" {
			t.Fatalf("hashed profile verdict: %+v", bad)
		}
	}
	// A single (non-batch) profile is accepted too.
	status, body, _ := n.do("POST", "/v1/profiles", key, sampleProfile("single@example.com", 0))
	if status != http.StatusAccepted {
		t.Fatalf("single: %d %s", status, body)
	}
	single := decode[receiver.Response](t, body)
	accepted[single.Results[0].UpdateID] = "single@example.com"

	msgs := readTopic(t, n.app.Brokers(), config.Default().ProfileTopic, len(accepted))
	if got := topicSize(t, n.app.Brokers(), config.Default().ProfileTopic); got != int64(len(accepted)) {
		t.Fatalf("topic holds %d messages, want exactly the %d accepted", got, len(accepted))
	}
	got := map[string][]string{}
	keyOf := map[string]string{}
	for _, m := range msgs {
		env, err := update.Decode(m.Value)
		if err != nil {
			t.Fatalf("envelope: %v: %s", err, m.Value)
		}
		email, ok := accepted[env.UpdateID]
		if !ok {
			t.Fatalf("unexpected update %s on the topic", env.UpdateID)
		}
		delete(accepted, env.UpdateID)
		if string(m.Key) != env.ProfileKey || env.ProfileKey == "" || strings.Contains(env.ProfileKey, "@") {
			t.Fatalf("message key %q, envelope profileKey %q", m.Key, env.ProfileKey)
		}
		if prev, ok := keyOf[email]; ok && prev != env.ProfileKey {
			t.Fatalf("profile %s has two keys %s and %s", email, prev, env.ProfileKey)
		}
		keyOf[email] = env.ProfileKey
		if env.V != update.Version || time.Since(env.ReceivedAt) > time.Minute {
			t.Fatalf("envelope header: %+v", env)
		}
		var prof map[string]any
		if err := json.Unmarshal(env.Profile, &prof); err != nil || prof["identityMap"] == nil {
			t.Fatalf("profile in envelope: %v %s", err, env.Profile)
		}
		got[email] = append(got[email], env.UpdateID)
	}
	if len(accepted) != 0 {
		t.Fatalf("accepted updates missing from the topic: %v", accepted)
	}
	for email, ids := range want {
		if strings.Join(got[email], ",") != strings.Join(ids, ",") {
			t.Errorf("%s: order on the topic %v, want %v", email, got[email], ids)
		}
	}
	if strings.Contains(n.logs.String(), "@example.com") {
		t.Errorf("logs contain a plaintext email")
	}
}

func TestIngestRefusesBadRequestsAndQueuesNothing(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	key := n.createKey("ingest")
	good, _ := json.Marshal(sampleProfile("ok@example.com", 1))
	many := make([]any, 501)
	for i := range many {
		many[i] = map[string]any{}
	}
	manyBody, _ := json.Marshal(map[string]any{"profiles": many})
	big := `{"profiles": [` + strings.Repeat(string(good)+",", (64<<10)/len(good)+1) + string(good) + `]}`

	cases := []struct {
		name        string
		contentType string
		body        string
		chunked     bool
		status      int
		code        string
	}{
		{"wrong content type", "text/plain", string(good), false, 415, "unsupported_media_type"},
		{"no content type", "", string(good), false, 415, "unsupported_media_type"},
		{"too large by length", "application/json", big, false, 413, "body_too_large"},
		{"too large chunked", "application/json", big, true, 413, "body_too_large"},
		{"malformed", "application/json", `{"identityMap":`, false, 400, "malformed_json"},
		{"not an object", "application/json", `[1,2]`, false, 400, "malformed_json"},
		{"empty batch", "application/json", `{"profiles": []}`, false, 400, "empty_batch"},
		{"too many", "application/json", string(manyBody), false, 400, "too_many_profiles"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", n.base+"/v1/profiles", strings.NewReader(tc.body))
			if tc.chunked {
				req.ContentLength = -1
				req.Body = readerOnly{strings.NewReader(tc.body)}
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb struct {
				Errors []struct{ Path, Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || len(eb.Errors) == 0 || eb.Errors[0].Code != tc.code || eb.Errors[0].Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, eb, tc.status, tc.code)
			}
		})
	}

	// None accepted: 422 with the per-profile verdicts.
	status, body, _ := n.do("POST", "/v1/profiles", key, map[string]any{"profiles": []any{hashedProfile(), map[string]any{"Bad_Name": 1}}})
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("none accepted: %d %s", status, body)
	}
	resp := decode[receiver.Response](t, body)
	if resp.Accepted != 0 || len(resp.Results) != 2 || resp.Results[1].Status != receiver.StatusRejected || len(resp.Results[1].Errors) == 0 {
		t.Fatalf("none accepted body: %s", body)
	}
	if got := topicSize(t, n.app.Brokers(), config.Default().ProfileTopic); got != 0 {
		t.Fatalf("bad requests queued %d messages", got)
	}
}

type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }

func TestIngestAnswers503WhenTheBrokerIsGone(t *testing.T) {
	broker, err := kafka.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	n := startNode(t, func(c *config.Config) {
		c.KafkaBrokers = broker.Addrs()
		c.SecretKey = strings.Repeat("ab", 32)
		c.ProduceTimeout = 2 * time.Second
	})
	key := n.createKey("ingest")
	if status, body, _ := n.do("POST", "/v1/profiles", key, sampleProfile("up@example.com", 0)); status != http.StatusAccepted {
		t.Fatalf("broker up: %d %s", status, body)
	}
	if status, _, _ := n.do("GET", "/readyz", "", nil); status != http.StatusOK {
		t.Fatalf("readyz with broker up: %d", status)
	}
	broker.Close()

	status, body, hdr := n.do("POST", "/v1/profiles", key, map[string]any{"profiles": []any{sampleProfile("down@example.com", 1), hashedProfile()}})
	if status != http.StatusServiceUnavailable {
		t.Fatalf("broker down: %d %s", status, body)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	resp := decode[receiver.Response](t, body)
	if resp.Accepted != 0 || len(resp.Results) != 2 {
		t.Fatalf("body: %s", body)
	}
	if r := resp.Results[0]; r.Status != receiver.StatusUnavailable || r.UpdateID != "" || r.Errors[0].Code != receiver.CodeQueueUnavailable {
		t.Fatalf("valid profile verdict: %+v", r)
	}
	if r := resp.Results[1]; r.Status != receiver.StatusRejected {
		t.Fatalf("invalid profile verdict: %+v", r)
	}
	if status, _, _ := n.do("GET", "/readyz", "", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with broker down: %d", status)
	}
}
