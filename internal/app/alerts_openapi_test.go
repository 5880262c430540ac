package app_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/notify"
)

// oaAlerts drives every alert-subscription operation and GET /v1/alerts for TestOpenAPI.
func oaAlerts(t *testing.T, spec *oaSpec, e *deliveryEnv) {
	base, op, sup := e.base, e.operator, e.support
	const (
		rl = "/v1/alert-subscriptions"
		ri = "/v1/alert-subscriptions/{id}"
	)
	secret := notify.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	good := map[string]any{"name": "oa alerts", "url": e.simURL + "/hooks/oa", "secret": secret,
		"events": []any{map[string]any{"type": "circuit.opened"}, map[string]any{"type": "failure.rate", "rate": 0.2}}}
	created := spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: good, want: 201, validBody: true})
	id := decode[struct{ ID string }](t, created.body).ID
	p := rl + "/" + id
	spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: good, want: 409, validBody: true})
	spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: map[string]any{"name": "x", "url": "ftp://x", "secret": "s", "events": []any{}}, want: 422})
	spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "POST", route: rl, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "POST", route: rl, key: sup, body: good, want: 403})
	spec.call(t, base, oaReq{method: "POST", route: rl, body: good, want: 401})
	spec.call(t, base, oaReq{method: "GET", route: rl, key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: rl, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: rl, want: 401})

	spec.call(t, base, oaReq{method: "GET", route: ri, path: p, key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: ri, path: rl + "/asub_nope", key: op, want: 404})
	spec.call(t, base, oaReq{method: "GET", route: ri, path: p, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: ri, path: p, want: 401})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: map[string]any{"enabled": false, "version": 1}, want: 200, validBody: true})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: map[string]any{"name": "y", "version": 1}, want: 409})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: map[string]any{"events": []any{map[string]any{"type": "nope"}}}, want: 422})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: `{"name":`, want: 400})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: "x", ctype: "text/plain", want: 415})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: op, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: rl + "/asub_nope", key: op, body: map[string]any{"enabled": true}, want: 404})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: sup, body: map[string]any{"enabled": true}, want: 403})
	spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, body: map[string]any{"enabled": true}, want: 401})

	spec.call(t, base, oaReq{method: "GET", route: "/v1/alerts", key: sup, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: "/v1/alerts", path: "/v1/alerts?destinationId=dst_x&event=circuit.opened&status=delivered&limit=5", key: op, want: 200})
	spec.call(t, base, oaReq{method: "GET", route: "/v1/alerts", path: "/v1/alerts?limit=0", key: sup, want: 422})
	spec.call(t, base, oaReq{method: "GET", route: "/v1/alerts", key: e.ingest, want: 403})
	spec.call(t, base, oaReq{method: "GET", route: "/v1/alerts", want: 401})

	spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: sup, want: 403})
	spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, want: 401})
	spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: op, want: 204})
	spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: op, want: 404})
}
