package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const brandTok = "brand-token-0001"

func brandGet(t *testing.T, url, tok string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-API-TOKEN", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return resp.StatusCode, resp.Header, m
}

// elements follows nextPage from url and returns every element and the number of pages.
func brandAll(t *testing.T, url string) ([]map[string]any, int) {
	t.Helper()
	var out []map[string]any
	pages := 0
	for url != "" {
		st, _, m := brandGet(t, url, brandTok)
		if st != 200 {
			t.Fatalf("%s: %d %v", url, st, m)
		}
		pages++
		res := m["result"].(map[string]any)
		for _, e := range res["elements"].([]any) {
			out = append(out, e.(map[string]any))
		}
		url = ""
		if n, ok := res["nextPage"].(string); ok {
			url = n
		}
	}
	return out, pages
}

func TestBrandShapes(t *testing.T) {
	clock := newFakeClock()
	sim, srv := startSim(t, Config{Now: clock.Now})
	b := sim.AddBrand("simbrand", brandTok)
	api := srv.URL + "/API/v3/"

	st, _, who := brandGet(t, api+"whoami", brandTok)
	if st != 200 || who["result"].(map[string]any)["brandId"] != "simbrand" {
		t.Fatalf("whoami: %d %v", st, who)
	}
	surveys, pages := brandAll(t, api+"surveys")
	if len(surveys) != 9 || pages != 2 {
		t.Fatalf("surveys: %d over %d pages, want 9 over 2", len(surveys), pages)
	}
	hist, _ := brandAll(t, api+"distributions/"+BrandDistPulse+"/history")
	if len(hist) != 4 {
		t.Fatalf("history: %d rows", len(hist))
	}
	for _, h := range hist {
		if _, ok := h["surveyLink"].(string); !ok {
			t.Errorf("history surveyLink is %T, want a string (as recorded)", h["surveyLink"])
		}
		if _, ok := h["surveyId"]; ok {
			t.Errorf("history element carries surveyId; the recorded shape has none")
		}
	}
	links, _ := brandAll(t, api+"distributions/"+BrandDistPulse+"/links?surveyId="+BrandSurveyPulse)
	if len(links) != 4 || links[0]["linkExpiration"] != clock.Now().Add(20*time.Hour).Format(time.RFC3339) {
		t.Fatalf("links: %v", links)
	}
	if _, ok := links[0]["id"]; ok {
		t.Errorf("links element carries id; the recorded shape has none")
	}
	dists, _ := brandAll(t, api+"distributions?surveyId="+BrandSurveyPulse)
	stats := dists[0]["stats"].(map[string]any)
	if stats["sent"] != 3.0 || stats["finished"] != 1.0 {
		t.Fatalf("stats %v", stats)
	}

	// A recipient finishing changes history and stats, not the survey's lastModified.
	clock.Advance(time.Hour)
	since := clock.Now().Add(-time.Minute).Format(time.RFC3339)
	if !b.SetRecipientStatus(BrandDistPulse, "alice@example.com", "SurveyFinished") {
		t.Fatal("alice not found")
	}
	if changed, _ := brandAll(t, api+"surveys?lastModified="+since); len(changed) != 0 {
		t.Errorf("a recipient finishing modified %d surveys", len(changed))
	}
	dists, _ = brandAll(t, api+"distributions?surveyId="+BrandSurveyPulse)
	if f := dists[0]["stats"].(map[string]any)["finished"]; f != 2.0 {
		t.Errorf("finished = %v after alice finished, want 2", f)
	}
	b.TouchSurvey(BrandSurveyOnboarding, "")
	if changed, _ := brandAll(t, api+"surveys?lastModified="+since); len(changed) != 1 || changed[0]["id"] != BrandSurveyOnboarding {
		t.Errorf("lastModified filter: %v", changed)
	}

	// Per-endpoint 429 with Retry-After; other endpoints unaffected.
	b.Throttle("history", 1, 7)
	st, h, body := brandGet(t, api+"distributions/"+BrandDistPulse+"/history", brandTok)
	if st != 429 || h.Get("Retry-After") != "7" {
		t.Errorf("throttled history: %d Retry-After %q %v", st, h.Get("Retry-After"), body)
	}
	if st, _, _ := brandGet(t, api+"whoami", brandTok); st != 200 {
		t.Errorf("whoami while history throttled: %d", st)
	}
	if st, _, _ := brandGet(t, api+"distributions/"+BrandDistPulse+"/history", brandTok); st != 200 {
		t.Errorf("history after the throttle: %d", st)
	}

	// Revoked token: 401 with DCD_7.
	b.RevokeAfter(1)
	if st, _, _ := brandGet(t, api+"whoami", brandTok); st != 200 {
		t.Errorf("call before the revocation: %d", st)
	}
	st, _, body = brandGet(t, api+"whoami", brandTok)
	errb, _ := body["meta"].(map[string]any)["error"].(map[string]any)
	if st != 401 || errb["errorCode"] != "DCD_7" {
		t.Errorf("revoked: %d %v", st, body)
	}
	// The HTTP control adds a recipient.
	b.Revoke(false)
	resp, err := http.Post(srv.URL+"/_control/brands/simbrand/recipients", "application/json",
		strings.NewReader(`{"distributionId":"`+BrandDistPulse+`","email":"new@example.com","firstName":"Nia","lastName":"New"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("add recipient: %v %v", err, resp)
	}
	resp.Body.Close()
	if hist, _ := brandAll(t, api+"distributions/"+BrandDistPulse+"/history"); len(hist) != 5 || hist[4]["status"] != "Success" {
		t.Errorf("after adding: %v", hist)
	}
}

// TestBrandEventSubscriptions: a subscription registered over the API gets a form-encoded
// completedResponse post when a recipient finishes, before SetRecipientStatus returns.
func TestBrandEventSubscriptions(t *testing.T) {
	sim, srv := startSim(t, Config{})
	b := sim.AddBrand("evbrand", brandTok)
	got := make(chan map[string]string, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", ct)
		}
		_ = r.ParseForm()
		m := map[string]string{}
		for k := range r.PostForm {
			m[k] = r.PostForm.Get(k)
		}
		got <- m
	}))
	defer recv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/API/v3/eventsubscriptions",
		strings.NewReader(`{"publicationUrl":"`+recv.URL+`/hook","topics":"surveyengine.completedResponse.`+BrandSurveyPulse+`","encrypt":false}`))
	req.Header.Set("X-API-TOKEN", brandTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("subscribe: %v %v", err, resp)
	}
	resp.Body.Close()
	b.SetRecipientStatus(BrandDistOnboarding, "erin@example.com", "SurveyFinished") // another survey: no post
	b.SetRecipientStatus(BrandDistPulse, "alice@example.com", "SurveyFinished")
	select {
	case m := <-got:
		if m["Topic"] != "surveyengine.completedResponse."+BrandSurveyPulse || m["RecipientID"] != "CID_alice00000001" ||
			m["DistributionID"] != BrandDistPulse || m["ResponseID"] == "" || m["CompletedDate"] == "" {
			t.Errorf("event %v", m)
		}
	default:
		t.Fatal("no event posted by the time SetRecipientStatus returned")
	}
	if posts := b.EventPosts(); len(posts) != 1 || posts[0].Status != 200 {
		t.Errorf("posts %+v", posts)
	}
}

func TestHooksRecordNotifications(t *testing.T) {
	_, srv := startSim(t, Config{})
	req, _ := http.NewRequest("POST", srv.URL+"/_hooks/demo", strings.NewReader(`{"type":"survey.request"}`))
	req.Header.Set("webhook-id", "ntf_1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("post: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, _ = http.Post(srv.URL+"/_hooks/demo", "application/json", strings.NewReader(`not json`))
	if resp.StatusCode != 400 {
		t.Errorf("non-JSON: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp, _ = http.Get(srv.URL + "/_hooks/demo")
	var got struct{ Hits []struct{ WebhookID string } }
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.Hits) != 1 || got.Hits[0].WebhookID != "ntf_1" {
		t.Fatalf("hits %+v", got)
	}
}
