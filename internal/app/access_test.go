package app_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestAccessKeysAndRoles(t *testing.T) {
	n := startNode(t, nil)
	ingest := n.createKey("ingest")
	support := n.createKey("support")
	profile := sampleProfile("roles@example.com", 0)

	cases := []struct {
		name, key string
		status    int
		code      string
	}{
		{"no key", "", 401, "unauthorized"},
		{"unknown key", "qg_aaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbb", 401, "unauthorized"},
		{"garbage", "not-a-key", 401, "unauthorized"},
		{"tampered secret", ingest[:len(ingest)-2] + "zz", 401, "unauthorized"},
		{"wrong role", support, 403, "forbidden"},
		{"ingest role", ingest, 202, ""},
		{"admin may do everything", testAdminKey, 202, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := n.do("POST", "/v1/profiles", tc.key, profile)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			if tc.code != "" {
				eb := decode[struct {
					Errors []struct{ Path, Code, Message string }
				}](t, body)
				if eb.Errors[0].Code != tc.code || eb.Errors[0].Path != "header.Authorization" || eb.Errors[0].Message == "" {
					t.Fatalf("error body %s", body)
				}
			}
		})
	}

	// Only admin manages keys.
	if status, _, _ := n.do("GET", "/v1/keys", ingest, nil); status != http.StatusForbidden {
		t.Fatalf("ingest key listing keys: %d", status)
	}
	status, body, _ := n.do("POST", "/v1/keys", testAdminKey, map[string]string{"name": "x", "role": "superuser"})
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"path":"role"`) {
		t.Fatalf("bad role: %d %s", status, body)
	}
	status, body, _ = n.do("GET", "/v1/keys", testAdminKey, nil)
	if status != http.StatusOK {
		t.Fatalf("list: %d %s", status, body)
	}
	list := decode[struct {
		Keys []map[string]any `json:"keys"`
	}](t, body)
	if len(list.Keys) != 2 || strings.Contains(string(body), ingest) || strings.Contains(string(body), "hash") {
		t.Fatalf("list shows %d keys or a secret: %s", len(list.Keys), body)
	}

	// Revocation takes effect at once on this node.
	id := strings.Split(ingest, "_")[1]
	if status, body, _ := n.do("DELETE", "/v1/keys/"+id, testAdminKey, nil); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _, _ := n.do("POST", "/v1/profiles", ingest, profile); status != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", status)
	}
	if status, _, _ := n.do("DELETE", "/v1/keys/"+id, testAdminKey, nil); status != http.StatusNotFound {
		t.Fatalf("revoking twice: %d", status)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	n := startNode(t, nil)
	key := n.createKey("ingest")
	n.do("POST", "/v1/profiles", key, hashedProfile())
	n.do("POST", "/v1/profiles", key, sampleProfile("m@example.com", 0))
	if status, _, _ := n.do("GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("healthz %d", status)
	}
	status, body, _ := n.do("GET", "/readyz", "", nil)
	if status != 200 || !strings.Contains(string(body), `"kafka":"ok"`) || !strings.Contains(string(body), `"store":"ok"`) {
		t.Fatalf("readyz %d %s", status, body)
	}
	_, body, _ = n.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`qgate_ingest_profiles_total{code="hashed_email",verdict="rejected"} 1`,
		`qgate_ingest_profiles_total{code="",verdict="accepted"} 1`,
		`qgate_ingest_produce_seconds_count 1`,
		`qgate_http_request_duration_seconds_count{method="POST",route="/v1/profiles",status="202"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// The edges of the HTTP surface answer with the same error body as everything else.
func TestHTTPEdgesAnswerWithErrorBodies(t *testing.T) {
	n := startNode(t, nil)
	type errBody struct {
		Errors []struct{ Path, Code, Message string }
	}

	status, body, _ := n.do("GET", "/v1/nothing-here", testAdminKey, nil)
	if eb := decode[errBody](t, body); status != http.StatusNotFound || eb.Errors[0].Code != "route_not_found" || eb.Errors[0].Message == "" {
		t.Fatalf("unknown route: %d %s", status, body)
	}
	status, body, hdr := n.do("PUT", "/v1/profiles", testAdminKey, "{}")
	if eb := decode[errBody](t, body); status != http.StatusMethodNotAllowed || eb.Errors[0].Code != "method_not_allowed" || hdr.Get("Allow") != "POST" {
		t.Fatalf("wrong method: %d %s Allow=%q", status, body, hdr.Get("Allow"))
	}
	status, _, hdr = n.do("GET", "/v1/keys", "", nil)
	if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %d %q", status, hdr.Get("WWW-Authenticate"))
	}

	// A blank key name is refused and creates nothing.
	status, body, _ = n.do("POST", "/v1/keys", testAdminKey, map[string]string{"name": "   ", "role": "ingest"})
	if eb := decode[errBody](t, body); status != http.StatusUnprocessableEntity || eb.Errors[0].Path != "name" {
		t.Fatalf("blank name: %d %s", status, body)
	}
	_, body, _ = n.do("GET", "/v1/keys", testAdminKey, nil)
	if keys := decode[struct{ Keys []any }](t, body); len(keys.Keys) != 0 {
		t.Fatalf("a refused key was stored: %s", body)
	}

	// If-Match: * means any version.
	op := n.createKey("operator")
	status, body, _ = n.do("POST", "/v1/destinations", op, dstBody("edge", "tok-edge-1234"))
	if status != http.StatusCreated {
		t.Fatalf("create destination: %d %s", status, body)
	}
	id := decode[struct{ ID string }](t, body).ID
	status, body, _ = dstDoIfMatch(t, n, id, op, "*", `{"rateLimitPerMinute": 1200}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"rateLimitPerMinute":1200`) {
		t.Fatalf("If-Match *: %d %s", status, body)
	}
}

// Once shutdown begins, readiness fails so load balancers stop sending ingest.
func TestReadinessFailsWhileDraining(t *testing.T) {
	n := startNode(t, nil)
	if status, _, _ := n.do("GET", "/readyz", "", nil); status != http.StatusOK {
		t.Fatalf("readyz before drain: %d", status)
	}
	n.app.DrainIngest()
	status, body, _ := n.do("GET", "/readyz", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"draining"`) {
		t.Fatalf("readyz while draining: %d %s", status, body)
	}
	key := n.createKey("ingest")
	status, body, hdr := n.do("POST", "/v1/profiles", key, sampleProfile("drain@example.com", 0))
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("ingest while draining: %d %s", status, body)
	}
}
