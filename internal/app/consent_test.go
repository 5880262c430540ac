package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/support"
)

// withConsents is richProfile(email) carrying AEP's consents field group.
func withConsents(email string, consents map[string]any) map[string]any {
	p := richProfile(email)
	if consents != nil {
		p["consents"] = consents
	}
	return p
}

func val(v string) map[string]any { return map[string]any{"val": v} }

// A destination that requires consent receives only the updates that grant it; the others are
// excluded with reason consent_denied (findable by identity, counted in the stats), never sent.
// A destination without a policy receives every one.
func TestConsentPolicyExcludesUpdatesWithoutConsent(t *testing.T) {
	e := startDelivery(t, nil)
	strict, wfStrict := e.destination("consentstrict", map[string]any{"consentPolicy": map[string]any{"require": []string{"collect", "marketing.email"}}})
	open, wfOpen := e.destination("consentopen", nil)

	status, body, _ := e.do("GET", "/v1/destinations/"+strict, e.operator, nil)
	if got := decode[struct {
		ConsentPolicy struct{ Require []string }
	}](t, body); status != http.StatusOK || len(got.ConsentPolicy.Require) != 2 || got.ConsentPolicy.Require[1] != "marketing.email" {
		t.Fatalf("destination with a consent policy: %d %s", status, body)
	}

	cases := []struct {
		email    string
		consents map[string]any
		sent     bool
	}{
		{"granted@example.com", map[string]any{"collect": val("y"), "marketing": map[string]any{"email": val("y"), "preferred": "email"}}, true},
		{"default@example.com", map[string]any{"collect": val("y"), "marketing": map[string]any{"email": val("dy")}}, true},
		{"optout@example.com", map[string]any{"collect": val("y"), "marketing": map[string]any{"email": val("n")}}, false},
		{"nocollect@example.com", map[string]any{"collect": val("n"), "marketing": map[string]any{"email": val("y")}}, false},
		{"pending@example.com", map[string]any{"collect": val("p"), "marketing": map[string]any{"email": val("y")}}, false},
		{"none@example.com", nil, false},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = e.post(withConsents(c.email, c.consents))
	}
	for i, c := range cases {
		e.awaitStatus(ids[i], open, delivery.Delivered)
		if c.sent {
			e.awaitStatus(ids[i], strict, delivery.Delivered)
			continue
		}
		if d := e.awaitStatus(ids[i], strict, delivery.Excluded); d.Reason != "consent_denied" || len(d.Attempts) != 0 {
			t.Errorf("%s: %+v, want excluded with consent_denied and no attempt", c.email, d)
		}
	}
	if runs := e.sim.Runs(wfStrict); len(runs) != 2 {
		t.Fatalf("the strict destination received %d runs, want the 2 with consent", len(runs))
	}
	if runs := e.runs(wfOpen, len(cases)); len(runs) != len(cases) {
		t.Fatalf("the open destination received %d runs", len(runs))
	}

	// Support finds an excluded one by the email it carried.
	status, body, _ = e.do("GET", "/v1/deliveries?identity="+url.QueryEscape("optout@example.com")+"&destinationId="+strict, e.support, nil)
	if page := decode[support.DeliveryPage](t, body); status != http.StatusOK || len(page.Deliveries) != 1 || page.Deliveries[0].Reason != "consent_denied" {
		t.Fatalf("search for the excluded one: %d %s", status, body)
	}
	status, body, _ = e.do("GET", "/v1/destinations/"+strict+"/stats?window=1h", e.support, nil)
	st := decode[support.StatsView](t, body)
	if status != http.StatusOK || st.Received != 6 || st.ByStatus[delivery.Delivered] != 2 || st.ExcludedByReason["consent_denied"] != 4 {
		t.Fatalf("stats: %d %s", status, body)
	}

	// Lifting the requirement (an empty list) lets the next update through.
	status, body, _ = e.do("PATCH", "/v1/destinations/"+strict, e.operator, map[string]any{"consentPolicy": map[string]any{"require": []string{}}})
	if status != http.StatusOK {
		t.Fatalf("patch consent policy: %d %s", status, body)
	}
	after := e.post(withConsents("none-after@example.com", nil))
	e.awaitStatus(after, strict, delivery.Delivered)
}

// A bad consent policy is refused with the path of each bad entry, and nothing is created.
func TestConsentPolicyValidation(t *testing.T) {
	e := startDelivery(t, nil)
	for _, c := range []struct {
		policy     any
		path, code string
	}{
		{map[string]any{"require": []string{"collect.val"}}, "consentPolicy.require[0]", "invalid_consent"},
		{map[string]any{"require": []string{"collect", "Marketing"}}, "consentPolicy.require[1]", "invalid_consent"},
		{map[string]any{"require": []string{"collect", ""}}, "consentPolicy.require[1]", "invalid_consent"},
		{map[string]any{"require": []string{"collect", "collect"}}, "consentPolicy.require[1]", "duplicate_consent"},
	} {
		body := map[string]any{
			"name": "consentbad", "url": e.sim.EventURL(e.simURL, "WF_x"), "username": "u", "apiToken": "token-123456",
			"identityMappings": []any{map[string]any{"source": "Email", "target": "email"}}, "audiences": []any{aud1},
			"consentPolicy": c.policy,
		}
		status, resp, _ := e.do("POST", "/v1/destinations", e.operator, body)
		eb := decode[errorBody](t, resp)
		if status != http.StatusUnprocessableEntity || len(eb.Errors) != 1 || eb.Errors[0].Path != c.path || eb.Errors[0].Code != c.code || eb.Errors[0].Message == "" {
			t.Errorf("%v: %d %s, want 422 %s %s", c.policy, status, resp, c.path, c.code)
		}
	}
	if status, body, _ := e.do("GET", "/v1/destinations", e.operator, nil); status != http.StatusOK || len(decode[struct{ Destinations []any }](t, body).Destinations) != 0 {
		t.Fatalf("a refused destination was created: %s", body)
	}
}
