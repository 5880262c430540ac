package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/internal/support"
)

// The support page's reads: destinations for the support role (no secrets, paged), an exclusion
// found by the identity the profile carried, the stored payload of a dead letter (the bytes the
// destination received), and the per-bucket series.
func TestSupportPageReads(t *testing.T) {
	e := startDelivery(t, nil)
	okID, _ := e.destination("ui-ok", nil)
	deadID, wfDead := e.destination("ui-dead", nil)
	extID, _ := e.destination("ui-ext", map[string]any{"identityMappings": []any{map[string]any{"source": "ECID", "target": "external_id"}}})
	e.sim.Script(wfDead, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"bad tier"}}}`})

	// Destinations for support: names, no URL, username or token; paged in ID order.
	status, body, _ := e.do("GET", "/v1/support/destinations", e.support, nil)
	list := decode[support.DestinationList](t, body)
	if status != http.StatusOK || len(list.Destinations) != 3 || list.NextCursor != nil {
		t.Fatalf("support destinations: %d %s", status, body)
	}
	for _, secret := range []string{"http", "user-ui", "token-ui", "apiToken", "username", "url"} {
		if strings.Contains(string(body), secret) {
			t.Fatalf("support's destination list carries %q: %s", secret, body)
		}
	}
	status, body, _ = e.do("GET", "/v1/support/destinations?limit=2", e.support, nil)
	first := decode[support.DestinationList](t, body)
	if status != http.StatusOK || len(first.Destinations) != 2 || first.NextCursor == nil {
		t.Fatalf("first page: %d %s", status, body)
	}
	_, body, _ = e.do("GET", "/v1/support/destinations?limit=2&cursor="+url.QueryEscape(*first.NextCursor), e.support, nil)
	second := decode[support.DestinationList](t, body)
	if len(second.Destinations) != 1 || second.NextCursor != nil || second.Destinations[0].ID <= first.Destinations[1].ID {
		t.Fatalf("second page: %s", body)
	}
	if status, _, _ := e.do("GET", "/v1/support/destinations", e.operator, nil); status != http.StatusForbidden {
		t.Fatalf("operator on support's list: %d", status)
	}

	// An email-only profile is excluded from the ECID destination, and found by its email.
	p := richProfile("Erin@Example.com")
	p["identityMap"] = map[string]any{"Email": []any{map[string]any{"id": "Erin@Example.com"}}}
	upd := e.post(p)
	e.awaitStatus(upd, extID, delivery.Excluded)
	dead := e.awaitStatus(upd, deadID, delivery.DeadLettered)
	e.awaitStatus(upd, okID, delivery.Delivered)
	status, body, _ = e.do("GET", "/v1/deliveries?identity=erin%40example.com&destinationId="+extID, e.support, nil)
	page := decode[support.DeliveryPage](t, body)
	if status != http.StatusOK || len(page.Deliveries) != 1 || page.Deliveries[0].Reason != delivery.ReasonMissingIdentity {
		t.Fatalf("exclusion by the carried email: %d %s", status, body)
	}

	// The dead letter's payload is the body the destination received.
	runs := e.runs(wfDead, 1)
	status, body, _ = e.do("GET", "/v1/deliveries/"+dead.DeliveryID+"/payload", e.support, nil)
	pv := decode[support.PayloadView](t, body)
	var got, sent bytes.Buffer
	if status != http.StatusOK || pv.Source != "dead_letter" || json.Compact(&got, pv.Payload) != nil || json.Compact(&sent, runs[0].Body) != nil || got.String() != sent.String() {
		t.Fatalf("dead letter payload: %d %s\nsent: %s", status, body, runs[0].Body)
	}
	status, body, _ = e.do("GET", "/v1/deliveries/"+delivery.ID(upd, okID)+"/payload", e.support, nil)
	if pv := decode[support.PayloadView](t, body); status != http.StatusOK || pv.Source != "none" || string(pv.Payload) != "null" {
		t.Fatalf("delivered payload: %d %s", status, body)
	}

	// The series: the window's attempts by outcome, the dead letter, no backlog at the end.
	status, body, _ = e.do("GET", "/v1/destinations/"+deadID+"/series?window=1h", e.support, nil)
	sv := decode[support.SeriesView](t, body)
	if status != http.StatusOK || len(sv.Buckets) != 60 || sv.StepSeconds != 60 || sv.Window != "1h" {
		t.Fatalf("series: %d %.300s", status, body)
	}
	var permanent, deadLettered int64
	for _, b := range sv.Buckets {
		permanent += b.Attempts["permanent"]
		deadLettered += b.DeadLettered
	}
	if last := sv.Buckets[len(sv.Buckets)-1]; permanent != 1 || deadLettered != 1 || last.Backlog != 0 || len(sv.Circuit) != 1 || sv.Circuit[0].State != "closed" {
		t.Fatalf("series figures: permanent %d, dead-lettered %d, last bucket %+v, circuit %+v", permanent, deadLettered, last, sv.Circuit)
	}
}

// The page's headers: a CSP that allows only its own script, styles and API.
func TestSupportPageHeaders(t *testing.T) {
	n := startNode(t, nil)
	for _, p := range []string{"/ui", "/ui/app.js", "/ui/style.css"} {
		status, body, h := n.do("GET", p, "", nil)
		if status != http.StatusOK || h.Get("Content-Security-Policy") != support.CSP || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %d %v", p, status, h)
		}
		// The page's script builds the DOM with textContent only.
		if p == "/ui/app.js" && (bytes.Contains(body, []byte("innerHTML")) || bytes.Contains(body, []byte("insertAdjacentHTML")) || bytes.Contains(body, []byte("eval("))) {
			t.Fatal("app.js writes HTML or evaluates code")
		}
		if p == "/ui" && bytes.Contains(body, []byte("<script>")) {
			t.Fatal("inline script in index.html")
		}
	}
}
