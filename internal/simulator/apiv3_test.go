package simulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func apiGet(t *testing.T, url, token string) response {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["X-API-TOKEN"] = token
	}
	return do(t, nil, "GET", url, h, nil)
}

func TestWhoami(t *testing.T) {
	_, srv := startSim(t, Config{APITokens: []string{"api-tok"}})
	for _, tt := range []struct {
		token, user string
		want        int
	}{
		{wfToken, wfUser, 200},
		{"api-tok", "api-user", 200},
		{"", "", 401},
		{"bad", "", 401},
	} {
		got := apiGet(t, srv.URL+"/API/v3/whoami", tt.token)
		if got.Status != tt.want {
			t.Fatalf("token %q: %d", tt.token, got.Status)
		}
		if tt.want != 200 {
			if got.Env.Meta.Error == nil || got.Env.Meta.HTTPStatus != "401 - Unauthorized" {
				t.Errorf("error envelope = %s", got.Raw)
			}
			continue
		}
		var who map[string]string
		if err := json.Unmarshal(got.Env.Result, &who); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"userName", "userId", "brandId", "datacenterId", "accountType", "firstName", "lastName", "email"} {
			if who[k] == "" && !(k == "lastName" && tt.user == "api-user") {
				t.Errorf("whoami.%s empty: %v", k, who)
			}
		}
		if who["userName"] != tt.user || got.Env.Meta.HTTPStatus != "200 - OK" {
			t.Errorf("whoami = %v (%s)", who, got.Env.Meta.HTTPStatus)
		}
	}
}

type surveyElem struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	OwnerID      string `json:"ownerId"`
	LastModified string `json:"lastModified"`
	CreationDate string `json:"creationDate"`
	IsActive     *bool  `json:"isActive"`
}

func TestSurveysPagination(t *testing.T) {
	_, srv := startSim(t, Config{})
	next := srv.URL + "/API/v3/surveys"
	var all []surveyElem
	pages := 0
	for next != "" {
		got := apiGet(t, next, wfToken)
		if got.Status != 200 {
			t.Fatalf("%s: %d %s", next, got.Status, got.Raw)
		}
		var res struct {
			Elements []surveyElem `json:"elements"`
			NextPage *string      `json:"nextPage"`
		}
		if err := json.Unmarshal(got.Env.Result, &res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got.Env.Result), `"nextPage":`) {
			t.Fatalf("nextPage missing: %s", got.Env.Result)
		}
		all = append(all, res.Elements...)
		pages++
		next = ""
		if res.NextPage != nil {
			if !strings.HasPrefix(*res.NextPage, srv.URL+"/API/v3/surveys?") {
				t.Fatalf("nextPage not absolute: %s", *res.NextPage)
			}
			next = *res.NextPage
		}
	}
	if pages != 3 || len(all) != 25 {
		t.Fatalf("pages = %d, surveys = %d", pages, len(all))
	}
	seen := map[string]bool{}
	for _, s := range all {
		if !strings.HasPrefix(s.ID, "SV_") || len(s.ID) != 18 || s.Name == "" || s.OwnerID == "" ||
			s.LastModified == "" || s.CreationDate == "" || s.IsActive == nil || seen[s.ID] {
			t.Errorf("survey = %+v", s)
		}
		seen[s.ID] = true
	}
	if got := apiGet(t, srv.URL+"/API/v3/surveys?offset=-1", wfToken); got.Status != 400 {
		t.Errorf("bad offset: %d", got.Status)
	}
}

func TestSurveyAndDistributions(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sv := sim.surveys[3] // has 3 distributions and expires
	got := apiGet(t, srv.URL+"/API/v3/surveys/"+sv.ID, wfToken)
	if got.Status != 200 {
		t.Fatalf("survey: %d", got.Status)
	}
	var detail struct {
		ID             string                     `json:"id"`
		Expiration     map[string]json.RawMessage `json:"expiration"`
		ResponseCounts map[string]int             `json:"responseCounts"`
	}
	if err := json.Unmarshal(got.Env.Result, &detail); err != nil {
		t.Fatal(err)
	}
	if _, ok := detail.Expiration["startDate"]; detail.ID != sv.ID || !ok || detail.ResponseCounts == nil {
		t.Errorf("detail = %s", got.Env.Result)
	}
	if _, ok := detail.Expiration["endDate"]; !ok {
		t.Errorf("no endDate: %s", got.Env.Result)
	}

	got = apiGet(t, srv.URL+"/API/v3/distributions?surveyId="+sv.ID, wfToken)
	var list struct {
		Elements []struct {
			ID    string         `json:"id"`
			Stats map[string]int `json:"stats"`
		} `json:"elements"`
		NextPage *string `json:"nextPage"`
	}
	if err := json.Unmarshal(got.Env.Result, &list); err != nil {
		t.Fatal(err)
	}
	if got.Status != 200 || len(list.Elements) != 3 || list.NextPage != nil {
		t.Fatalf("distributions = %d %s", got.Status, got.Raw)
	}
	for _, k := range []string{"sent", "failed", "started", "bounced", "opened", "skipped", "finished", "complaints", "blocked"} {
		if _, ok := list.Elements[0].Stats[k]; !ok {
			t.Errorf("stats.%s missing", k)
		}
	}

	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/API/v3/surveys/SV_nope", 404},
		{"GET", "/API/v3/distributions", 400},
		{"GET", "/API/v3/distributions?surveyId=SV_nope", 404},
		{"GET", "/API/v3/nothing", 404},
		{"POST", "/API/v3/surveys", 405},
	} {
		got := do(t, nil, tt.method, srv.URL+tt.path, map[string]string{"X-API-TOKEN": wfToken}, nil)
		if got.Status != tt.want || got.Env.Meta.Error == nil {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, got.Status, got.Raw)
		}
	}
	if got := do(t, nil, "GET", srv.URL+"/API/v3/surveys", map[string]string{"Authorization": basic(wfUser, wfToken)}, nil); got.Status != http.StatusUnauthorized {
		t.Errorf("basic auth on API v3: %d", got.Status)
	}
}

func TestSeedIsStable(t *testing.T) {
	a, b := seedSurveys(), seedSurveys()
	if a[0].ID != b[0].ID || a[23].distributions[0].ID != b[23].distributions[0].ID {
		t.Error("seed differs between calls")
	}
}
