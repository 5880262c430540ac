package app_test

import (
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/simulator"
)

// TestSurveyConnectionsOperatorAPI: validation with field paths, the host policy and SSRF
// guard of destinations, the token write-only (last 4 shown) and rotatable, roles.
func TestSurveyConnectionsOperatorAPI(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.SecretKey = strings.Repeat("ab", 32) })
	op, sup := n.createKey("operator"), n.createKey("support")
	good := map[string]any{"name": "EU", "baseUrl": "https://fra1.qualtrics.com/API/v3", "apiToken": "token-secret-9876"}

	st, body, hdr := n.do("POST", "/v1/survey-connections", op, good)
	dstExpect(t, "create", st, body, 201, "", "")
	c := decode[svConn](t, body)
	if !strings.HasPrefix(c.ID, "svc_") || c.BaseURL != "https://fra1.qualtrics.com/API/v3/" || c.TokenLast4 != "9876" ||
		c.IncrementalEvery != "15m0s" || c.FullEvery != "1h0m0s" || c.ExpiryLead != "24h0m0s" || c.Version != 1 ||
		hdr.Get("Location") != "/v1/survey-connections/"+c.ID || hdr.Get("ETag") != `"1"` {
		t.Fatalf("created %s %v", body, hdr)
	}
	if strings.Contains(string(body), "token-secret") {
		t.Fatalf("the token leaks: %s", body)
	}
	st, body, _ = n.do("POST", "/v1/survey-connections", op, good)
	dstExpect(t, "duplicate", st, body, 409, "name", "name_taken")

	for _, tc := range []struct {
		what string
		body map[string]any
		path string
		code string
	}{
		{"no token", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/"}, "apiToken", "required"},
		{"short token", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abc"}, "apiToken", "too_small"},
		{"not on the allow-list", map[string]any{"name": "x", "baseUrl": "https://evil.example.com/API/v3/", "apiToken": "abcdefgh1"}, "baseUrl", "url_not_allowed"},
		{"plain http", map[string]any{"name": "x", "baseUrl": "http://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1"}, "baseUrl", "url_not_allowed"},
		{"loopback", map[string]any{"name": "x", "baseUrl": "https://127.0.0.1/API/v3/", "apiToken": "abcdefgh1"}, "baseUrl", "url_not_allowed"},
		{"metadata", map[string]any{"name": "x", "baseUrl": "https://169.254.169.254/API/v3/", "apiToken": "abcdefgh1"}, "baseUrl", "url_not_allowed"},
		{"not API v3", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v2/", "apiToken": "abcdefgh1"}, "baseUrl", "invalid_base_url"},
		{"lead too short", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1", "expiryLead": "10m"}, "expiryLead", "out_of_range"},
		{"full before incremental", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1", "incrementalEvery": "2h", "fullEvery": "1h"}, "fullEvery", "out_of_range"},
		{"ratio above 1", map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1", "lowCompletionBelow": 1.5}, "lowCompletionBelow", "out_of_range"},
		{"blank name", map[string]any{"name": " ", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1"}, "name", "required"},
	} {
		st, body, _ := n.do("POST", "/v1/survey-connections", op, tc.body)
		dstExpect(t, tc.what, st, body, 422, tc.path, tc.code)
	}
	st, body, _ = n.do("POST", "/v1/survey-connections", op, map[string]any{"name": "x", "baseUrl": "https://fra1.qualtrics.com/API/v3/", "apiToken": "abcdefgh1", "expiryLead": "soon"})
	if st != 400 && st != 422 {
		t.Fatalf("a bad duration: %d %s", st, body)
	}
	// Every problem at once.
	st, body, _ = n.do("POST", "/v1/survey-connections", op, map[string]any{"name": "", "baseUrl": "ftp://x"})
	if errs := decode[dstErrors](t, body).Errors; st != 422 || len(errs) != 3 {
		t.Fatalf("several problems: %d %s", st, body)
	}
	if st, body, _ := n.do("GET", "/v1/survey-connections", op, nil); st != 200 || strings.Count(string(body), `"id":"svc_`) != 1 {
		t.Fatalf("list after refused creates: %d %s", st, body)
	}

	// Rotate the token: a new last 4, a new version; nothing else changes.
	st, body, _ = n.do("PATCH", "/v1/survey-connections/"+c.ID, op, map[string]any{"apiToken": "rotated-token-1111"})
	if r := decode[svConn](t, body); st != 200 || r.TokenLast4 != "1111" || r.Version != 2 || r.Name != "EU" {
		t.Fatalf("rotate: %d %s", st, body)
	}
	st, body, _ = n.do("PATCH", "/v1/survey-connections/"+c.ID, op, map[string]any{"baseUrl": "https://10.0.0.1/API/v3/"})
	dstExpect(t, "patch to a private address", st, body, 422, "baseUrl", "url_not_allowed")

	// Roles: support reads the pages, not the connections.
	if st, _, _ := n.do("GET", "/v1/survey-connections", sup, nil); st != 403 {
		t.Errorf("support listed connections: %d", st)
	}
	if st, _, _ := n.do("GET", "/v1/surveys", sup, nil); st != 200 {
		t.Errorf("support read surveys: %d", st)
	}
	if st, _, _ := n.do("GET", "/v1/surveys", op, nil); st != 200 {
		t.Errorf("operator read surveys: %d", st)
	}
}

// TestNotificationChannelsValidation: kinds, events, the secret, and the SSRF rule for URLs.
func TestNotificationChannelsValidation(t *testing.T) {
	n := startNode(t, nil)
	op := n.createKey("operator")
	secret := "whsec_" + strings.Repeat("QUJD", 8)
	for _, tc := range []struct {
		what string
		body map[string]any
		path string
		code string
	}{
		{"webhook without secret", map[string]any{"name": "a", "kind": "webhook", "url": "https://hooks.example.com/x", "events": []string{"survey.request"}}, "secret", "required"},
		{"bad secret", map[string]any{"name": "a", "url": "https://hooks.example.com/x", "secret": "hunter2", "events": []string{"survey.request"}}, "secret", "invalid_secret"},
		{"unknown kind", map[string]any{"name": "a", "kind": "fax", "url": "https://hooks.example.com/x", "events": []string{"survey.request"}}, "kind", "invalid_kind"},
		{"unknown event", map[string]any{"name": "a", "kind": "slack", "url": "https://hooks.slack.com/x", "events": []string{"survey.created"}}, "events[0]", "invalid_event"},
		{"no events", map[string]any{"name": "a", "kind": "slack", "url": "https://hooks.slack.com/x", "events": []string{}}, "events", "required"},
		{"loopback url", map[string]any{"name": "a", "kind": "teams", "url": "https://127.0.0.1/x", "events": []string{"survey.stats"}}, "url", "url_not_allowed"},
		{"http url", map[string]any{"name": "a", "kind": "teams", "url": "http://hooks.example.com/x", "events": []string{"survey.stats"}}, "url", "url_not_allowed"},
		{"bad connection id", map[string]any{"name": "a", "kind": "slack", "url": "https://hooks.slack.com/x", "events": []string{"survey.stats"}, "connectionIds": []string{"dst_1"}}, "connectionIds[0]", "invalid_connection_id"},
	} {
		st, body, _ := n.do("POST", "/v1/notification-channels", op, tc.body)
		dstExpect(t, tc.what, st, body, 422, tc.path, tc.code)
	}
	st, body, _ := n.do("POST", "/v1/notification-channels", op, map[string]any{"name": "ok", "url": "https://hooks.example.com/x", "secret": secret, "events": []string{"survey.request"}})
	if st != 201 || strings.Contains(string(body), secret[6:]) || !strings.Contains(string(body), `"secretLast4":"QUJD"`) {
		t.Fatalf("create: %d %s", st, body)
	}
}

// TestSurveyPages: the people pages after a sync — my active surveys with the personal
// respond link, open surveys, survey details with distributions, distribution data filtered
// by status — and a finished survey leaving "my active surveys" at the next sync.
func TestSurveyPages(t *testing.T) {
	e := startSurveyEnv(t, nil)
	c := e.connect(t, "24h")
	e.sync(t, c.ID)

	type person struct {
		Surveys []struct {
			SurveyID, SurveyName, Status string
			ExpiresAt                    *string
			Links                        struct{ Respond, Survey, Review string }
		}
	}
	st, body, _ := e.n.do("GET", "/v1/people/Alice@Example.com/surveys", e.sup, nil)
	p := decode[person](t, body)
	if st != 200 || len(p.Surveys) != 1 || p.Surveys[0].SurveyID != simulator.BrandSurveyPulse || p.Surveys[0].ExpiresAt == nil ||
		!strings.Contains(p.Surveys[0].Links.Respond, "Q_DL=") || !strings.HasSuffix(p.Surveys[0].Links.Review, "/Q/MyProjectsSection") {
		t.Fatalf("alice's active surveys: %d %s", st, body)
	}
	// carol finished, grace's only link expired: nothing active.
	for _, who := range []string{"carol@example.com", "grace@example.com"} {
		if _, body, _ := e.n.do("GET", "/v1/people/"+who+"/surveys", e.sup, nil); len(decode[person](t, body).Surveys) != 0 {
			t.Errorf("%s has active surveys: %s", who, body)
		}
	}
	_, body, _ = e.n.do("GET", "/v1/surveys?connectionId="+c.ID, e.sup, nil)
	if n := len(decode[struct{ Surveys []any }](t, body).Surveys); n != 5 { // pulse, onboarding, 3 of the 6 drafts
		t.Errorf("active surveys: %d: %s", n, body)
	}
	_, body, _ = e.n.do("GET", "/v1/surveys?active=false", e.sup, nil)
	if n := len(decode[struct{ Surveys []any }](t, body).Surveys); n != 9 {
		t.Errorf("all surveys: %d", n)
	}
	st, body, _ = e.n.do("GET", "/v1/surveys/"+simulator.BrandSurveyOnboarding, e.sup, nil)
	sv := decode[struct {
		ExpiresAt     *string
		Distributions []struct {
			ID    string
			Stats map[string]int
		}
	}](t, body)
	if st != 200 || sv.ExpiresAt == nil || len(sv.Distributions) != 1 || sv.Distributions[0].Stats["sent"] != 2 {
		t.Fatalf("survey details: %d %s", st, body)
	}
	st, body, _ = e.n.do("GET", "/v1/distributions/"+simulator.BrandDistPulse+"?status=SurveyFinished", e.sup, nil)
	d := decode[struct {
		Stats      map[string]int
		Recipients []struct {
			Email string
			Links struct{ Respond string }
		}
	}](t, body)
	if st != 200 || d.Stats["finished"] != 1 || len(d.Recipients) != 1 || d.Recipients[0].Email != "carol@example.com" || d.Recipients[0].Links.Respond != "" {
		t.Fatalf("distribution filtered by status: %d %s", st, body)
	}

	e.brand.SetRecipientStatus(simulator.BrandDistPulse, "alice@example.com", "SurveyFinished")
	e.sync(t, c.ID)
	if _, body, _ := e.n.do("GET", "/v1/people/alice@example.com/surveys", e.sup, nil); len(decode[person](t, body).Surveys) != 0 {
		t.Errorf("alice still has an active survey after finishing: %s", body)
	}
}
