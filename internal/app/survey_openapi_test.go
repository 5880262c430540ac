package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// oaSurveyWatch drives every survey-watch operation for TestOpenAPI: successes and failures
// must match the documented statuses and schemas.
func oaSurveyWatch(t *testing.T, spec *oaSpec, e *deliveryEnv) {
	base, op, sup := e.base, e.operator, e.support
	for _, r := range []string{"/ui/surveys", "/ui/surveys.js"} {
		res := spec.call(t, base, oaReq{method: "GET", route: r, want: 200})
		if len(res.body) < 100 || !strings.Contains(res.header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d bytes, CSP %q", r, len(res.body), res.header.Get("Content-Security-Policy"))
		}
	}
	e.sim.AddBrand("oabrand", "oa-brand-token-1")
	const (
		rc  = "/v1/survey-connections"
		rci = "/v1/survey-connections/{id}"
		rct = "/v1/survey-connections/{id}/test"
		rcs = "/v1/survey-connections/{id}/sync"
	)
	good := map[string]any{"name": "oa survey", "baseUrl": e.simURL + "/API/v3/", "apiToken": "oa-brand-token-1", "expiryLead": "24h"}
	created := spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: good, want: 201, validBody: true})
	id := decode[svConn](t, created.body).ID
	p := rc + "/" + id
	spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: good, want: 409, validBody: true})
	spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: map[string]any{"name": "x", "baseUrl": "https://evil.example/API/v3/", "apiToken": "short"}, want: 422})
	spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "POST", route: rc, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "POST", route: rc, key: sup, body: good, want: 403})
	spec.call(t, base, oaReq{method: "POST", route: rc, body: good, want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rc, key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rc, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rc, want: 401})

	spec.call(t, base, oaReq{method: "POST", route: rct, path: p + "/test", key: op, want: 200})
	spec.call(t, base, oaReq{method: "POST", route: rct, path: rc + "/svc_nope/test", key: op, want: 404})
	spec.call(t, base, oaReq{method: "POST", route: rct, path: p + "/test", key: sup, want: 403})
	spec.call(t, base, oaReq{method: "POST", route: rct, path: p + "/test", want: 401})
	spec.call(t, base, oaReq{method: "POST", route: rcs, path: p + "/sync", key: op, want: 202})
	spec.call(t, base, oaReq{method: "POST", route: rcs, path: rc + "/svc_nope/sync", key: op, want: 404})
	spec.call(t, base, oaReq{method: "POST", route: rcs, path: p + "/sync", key: sup, want: 403})
	spec.call(t, base, oaReq{method: "POST", route: rcs, path: p + "/sync", want: 401})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := spec.call(t, base, oaReq{method: "GET", route: rci, path: p, key: op, want: 200})
		c := decode[svConn](t, res.body)
		if c.LastSync != nil && c.LastSync.Outcome == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not succeed: %s", res.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	spec.call(t, base, oaReq{method: "GET", route: rci, path: rc + "/svc_nope", key: op, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: rci, path: p, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rci, path: p, want: 401})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: map[string]any{"incrementalEvery": "30m", "lowCompletionBelow": 0.4, "bounceRateAbove": 0.05}, want: 200, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: map[string]any{"name": "y"}, header: map[string]string{"If-Match": `"1"`}, want: 409, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: map[string]any{"expiryLead": "1m"}, want: 422, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: rc + "/svc_nope", key: op, body: map[string]any{"name": "z"}, want: 404})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: sup, body: map[string]any{"name": "z"}, want: 403})
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, body: map[string]any{"name": "z"}, want: 401})

	// Channels.
	const rn, rni = "/v1/notification-channels", "/v1/notification-channels/{id}"
	sink := newWebhookSink(t)
	ch := map[string]any{"name": "oa hook", "kind": "webhook", "url": sink.srv.URL, "secret": sink.secret, "events": []string{"survey.request", "survey.stats"}}
	res := spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: ch, want: 201, validBody: true})
	cid := decode[struct{ ID string }](t, res.body).ID
	spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: ch, want: 409, validBody: true})
	spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: map[string]any{"name": "bad", "kind": "fax", "url": "ftp://x", "events": []string{"survey.nope"}}, want: 422})
	spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "POST", route: rn, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "POST", route: rn, key: sup, body: ch, want: 403})
	spec.call(t, base, oaReq{method: "POST", route: rn, body: ch, want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rn, key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rn, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rn, want: 401})
	pc := rn + "/" + cid
	spec.call(t, base, oaReq{method: "GET", route: rni, path: pc, key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rni, path: rn + "/nch_nope", key: op, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: rni, path: pc, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rni, path: pc, want: 401})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: map[string]any{"events": []string{"survey.request"}}, want: 200, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: map[string]any{"name": "q"}, header: map[string]string{"If-Match": `"1"`}, want: 409, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: map[string]any{"kind": "slack"}, want: 422, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: rn + "/nch_nope", key: op, body: map[string]any{"name": "q"}, want: 404})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, key: sup, body: map[string]any{"name": "q"}, want: 403})
	spec.call(t, base, oaReq{method: "PATCH", route: rni, path: pc, body: map[string]any{"name": "q"}, want: 401})
	const rns = "/v1/notification-channels/{id}/stats"
	spec.call(t, base, oaReq{method: "GET", route: rns, path: pc + "/stats", key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rns, path: pc + "/stats?window=7d", key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rns, path: pc + "/stats?window=1d", key: sup, want: 422})
	spec.call(t, base, oaReq{method: "GET", route: rns, path: rn + "/nch_nope/stats", key: sup, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: rns, path: pc + "/stats", key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rns, path: pc + "/stats", want: 401})

	// Reads.
	const rp, rs, rsi, rd = "/v1/people/{email}/surveys", "/v1/surveys", "/v1/surveys/{surveyId}", "/v1/distributions/{id}"
	spec.call(t, base, oaReq{method: "GET", route: rp, path: "/v1/people/bob@example.com/surveys", key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rp, path: "/v1/people/not-an-email/surveys", key: op, want: 422})
	spec.call(t, base, oaReq{method: "GET", route: rp, path: "/v1/people/bob@example.com/surveys", key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rp, path: "/v1/people/bob@example.com/surveys", want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rs, path: rs + "?connectionId=" + id, key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rs, path: rs + "?active=maybe", key: sup, want: 422})
	spec.call(t, base, oaReq{method: "GET", route: rs, key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rs, want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rsi, path: rs + "/" + simulator.BrandSurveyPulse, key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rsi, path: rs + "/SV_nope", key: sup, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: rsi, path: rs + "/SV_nope", key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rsi, path: rs + "/SV_nope", want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/distributions/" + simulator.BrandDistPulse + "?status=Success", key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/distributions/" + simulator.BrandDistPulse + "?status=Nope", key: op, want: 422})
	spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/distributions/EMD_nope", key: sup, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/distributions/EMD_nope", key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/distributions/EMD_nope", want: 401})

	// Notification status: the delivery engine's support API, by channel.
	const rdl = "/v1/deliveries"
	spec.call(t, base, oaReq{method: "GET", route: rdl, path: rdl + "?destinationId=" + cid + "&status=delivered&limit=5", key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: "/v1/dead-letters", path: "/v1/dead-letters?destinationId=" + cid, key: sup, want: 200})

	// Qualtrics' event posts.
	const re = "/v1/survey-connections/{id}/events"
	spec.call(t, base, oaReq{method: "PATCH", route: rci, path: p, key: op, body: map[string]any{"eventsKey": "oa-events-key-0123"}, want: 200, validBody: true})
	form := "Topic=surveyengine.completedResponse." + simulator.BrandSurveyPulse + "&RecipientID=CID_bob0000000002&DistributionID=" + simulator.BrandDistPulse + "&Status=Complete"
	fctype := "application/x-www-form-urlencoded"
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=oa-events-key-0123", body: form, ctype: fctype, want: 200})
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=oa-events-key-0123", body: "Topic=controlpanel.deactivateSurvey&SurveyID=" + simulator.BrandSurveyPulse, ctype: fctype, want: 200})
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=oa-events-key-0123", body: "Topic=surveyengine.completedResponse.SV_x", ctype: fctype, want: 422})
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=oa-events-key-0123", body: "Topic=%zz", ctype: fctype, want: 400})
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=oa-events-key-0123", body: `{"Topic":"x"}`, want: 415})
	spec.call(t, base, oaReq{method: "POST", route: re, path: p + "/events?key=wrong", body: form, ctype: fctype, want: 401})

	// Deletes last.
	spec.call(t, base, oaReq{method: "DELETE", route: rni, path: pc, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "DELETE", route: rni, path: pc, want: 401})
	spec.call(t, base, oaReq{method: "DELETE", route: rni, path: pc, key: op, want: 204})
	spec.call(t, base, oaReq{method: "DELETE", route: rni, path: pc, key: op, want: 404})
	spec.call(t, base, oaReq{method: "DELETE", route: rci, path: p, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "DELETE", route: rci, path: p, want: 401})
	spec.call(t, base, oaReq{method: "DELETE", route: rci, path: p, key: op, want: 204})
	spec.call(t, base, oaReq{method: "DELETE", route: rci, path: p, key: op, want: 404})
}
