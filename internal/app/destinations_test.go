package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/config"
)

// dstView is a destination as the operator API shows it.
type dstView struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Description        string           `json:"description"`
	URL                string           `json:"url"`
	Username           string           `json:"username"`
	TokenLast4         string           `json:"apiTokenLast4"`
	IdentityMappings   []map[string]any `json:"identityMappings"`
	AttributeMappings  []map[string]any `json:"attributeMappings"`
	Audiences          []string         `json:"audiences"`
	RateLimitPerMinute int              `json:"rateLimitPerMinute"`
	Enabled            bool             `json:"enabled"`
	Paused             bool             `json:"paused"`
	Version            int64            `json:"version"`
	CreatedAt          time.Time        `json:"createdAt"`
	UpdatedAt          time.Time        `json:"updatedAt"`
}

type dstErrors struct {
	Errors []struct{ Path, Code, Message string }
}

func dstBody(name, token string) map[string]any {
	return map[string]any{
		"name":              name,
		"description":       "NPS after purchase",
		"url":               "https://sjc1.qualtrics.com/inbound-event/v1/events/json/triggers?urlTokenId=abc",
		"username":          "api-user",
		"apiToken":          token,
		"identityMappings":  []any{map[string]any{"source": "Email", "target": "email"}},
		"attributeMappings": []any{map[string]any{"source": "person.name.firstName", "target": "firstName"}},
		"audiences":         []any{"seg-1"},
	}
}

// dstExpect checks status and, for errors, that one problem has path and code.
func dstExpect(t *testing.T, what string, status int, body []byte, wantStatus int, path, code string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d %s, want %d", what, status, body, wantStatus)
	}
	if code == "" {
		return
	}
	for _, p := range decode[dstErrors](t, body).Errors {
		if p.Path == path && p.Code == code && p.Message != "" {
			return
		}
	}
	t.Fatalf("%s: no problem %s/%s in %s", what, path, code, body)
}

func TestDestinationsOperatorAPI(t *testing.T) {
	n := startNode(t, nil)
	op := n.createKey("operator")

	// Create.
	status, body, hdr := n.do("POST", "/v1/destinations", op, dstBody("alpha", "alpha-token-1234"))
	dstExpect(t, "create", status, body, 201, "", "")
	a := decode[dstView](t, body)
	if !strings.HasPrefix(a.ID, "dst_") || a.Version != 1 || !a.Enabled || a.Paused || a.RateLimitPerMinute != 3000 ||
		a.TokenLast4 != "1234" || a.Name != "alpha" || len(a.Audiences) != 1 || a.CreatedAt.IsZero() {
		t.Fatalf("created: %s", body)
	}
	if strings.Contains(string(body), "alpha-token") || strings.Contains(string(body), `"apiToken"`) {
		t.Fatalf("token in response: %s", body)
	}
	if hdr.Get("Location") != "/v1/destinations/"+a.ID || hdr.Get("ETag") != `"1"` {
		t.Fatalf("headers: %v", hdr)
	}

	// Get.
	status, body, _ = n.do("GET", "/v1/destinations/"+a.ID, op, nil)
	dstExpect(t, "get", status, body, 200, "", "")
	if g := decode[dstView](t, body); g.ID != a.ID || g.Version != 1 || !g.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("get: %s", body)
	}
	status, body, _ = n.do("GET", "/v1/destinations/dst_nope", op, nil)
	dstExpect(t, "get unknown", status, body, 404, "id", "destination_not_found")

	// Name clash.
	status, body, _ = n.do("POST", "/v1/destinations", op, dstBody("alpha", "another-token"))
	dstExpect(t, "name clash", status, body, 409, "name", "name_taken")

	// Patch: version increments; token rotation changes last4; stale versions refused.
	status, body, hdr = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"description": "changed", "rateLimitPerMinute": 600})
	dstExpect(t, "patch", status, body, 200, "", "")
	p := decode[dstView](t, body)
	if p.Version != 2 || p.Description != "changed" || p.RateLimitPerMinute != 600 || p.Name != "alpha" || p.TokenLast4 != "1234" ||
		!p.UpdatedAt.After(a.UpdatedAt) || hdr.Get("ETag") != `"2"` {
		t.Fatalf("patched: %s", body)
	}
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"apiToken": "rotated-token-9876", "version": 2})
	dstExpect(t, "rotate", status, body, 200, "", "")
	if p = decode[dstView](t, body); p.Version != 3 || p.TokenLast4 != "9876" || strings.Contains(string(body), "rotated-token") {
		t.Fatalf("rotated: %s", body)
	}
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"description": "x", "version": 2})
	dstExpect(t, "stale body version", status, body, 409, "version", "version_conflict")
	status, body, _ = dstDoIfMatch(t, n, a.ID, op, "2", `{"description":"x"}`)
	dstExpect(t, "stale If-Match", status, body, 409, "header.If-Match", "version_conflict")
	status, body, _ = dstDoIfMatch(t, n, a.ID, op, `"3"`, `{"description":"via if-match"}`)
	dstExpect(t, "fresh If-Match", status, body, 200, "", "")
	if p = decode[dstView](t, body); p.Version != 4 {
		t.Fatalf("if-match patch: %s", body)
	}
	// A patch that changes nothing makes no new version.
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{})
	if dstExpect(t, "empty patch", status, body, 200, "", ""); decode[dstView](t, body).Version != 4 {
		t.Fatalf("empty patch bumped the version: %s", body)
	}
	// Patches are validated like creates, on the resulting destination.
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"audiences": []string{}, "apiToken": "short"})
	dstExpect(t, "invalid patch", status, body, 422, "audiences", "required")
	dstExpect(t, "invalid patch", status, body, 422, "apiToken", "too_small")
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"colour": "red"})
	dstExpect(t, "unknown field", status, body, 422, "colour", "unknown_field")
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, `{"description":`)
	dstExpect(t, "malformed", status, body, 400, "", "malformed_json")
	status, body, _ = n.do("PATCH", "/v1/destinations/dst_nope", op, map[string]any{"description": "x"})
	dstExpect(t, "patch unknown", status, body, 404, "id", "destination_not_found")

	// Pause and resume: version +1 each, idempotent.
	status, body, _ = n.do("POST", "/v1/destinations/"+a.ID+"/pause", op, nil)
	dstExpect(t, "pause", status, body, 200, "", "")
	if p = decode[dstView](t, body); !p.Paused || p.Version != 5 {
		t.Fatalf("paused: %s", body)
	}
	status, body, _ = n.do("POST", "/v1/destinations/"+a.ID+"/pause", op, nil)
	if dstExpect(t, "pause again", status, body, 200, "", ""); decode[dstView](t, body).Version != 5 {
		t.Fatalf("pausing twice bumped the version: %s", body)
	}
	status, body, _ = n.do("POST", "/v1/destinations/"+a.ID+"/resume", op, nil)
	dstExpect(t, "resume", status, body, 200, "", "")
	if p = decode[dstView](t, body); p.Paused || p.Version != 6 {
		t.Fatalf("resumed: %s", body)
	}
	status, body, _ = n.do("POST", "/v1/destinations/dst_nope/pause", op, nil)
	dstExpect(t, "pause unknown", status, body, 404, "id", "destination_not_found")
	status, body, _ = n.do("POST", "/v1/destinations/dst_nope/test", op, nil)
	dstExpect(t, "test unknown", status, body, 404, "id", "destination_not_found")

	// List pagination in creation order.
	ids := []string{a.ID}
	for i := range 4 {
		status, body, _ = n.do("POST", "/v1/destinations", op, dstBody(fmt.Sprintf("d%d", i), "token-12345678"))
		dstExpect(t, "create more", status, body, 201, "", "")
		ids = append(ids, decode[dstView](t, body).ID)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/destinations?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, body, _ = n.do("GET", path, op, nil)
		dstExpect(t, "list", status, body, 200, "", "")
		page := decode[struct {
			Destinations []dstView `json:"destinations"`
			NextCursor   *string   `json:"nextCursor"`
		}](t, body)
		for _, d := range page.Destinations {
			seen = append(seen, d.ID)
		}
		if strings.Contains(string(body), "token-1234") {
			t.Fatalf("token in list: %s", body)
		}
		if page.NextCursor == nil {
			if pages != 2 || !strings.Contains(string(body), `"nextCursor":null`) {
				t.Fatalf("pages %d, last %s", pages, body)
			}
			break
		}
		cursor = *page.NextCursor
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("listed %v, want %v", seen, ids)
	}
	status, body, _ = n.do("GET", "/v1/destinations", op, nil)
	if dstExpect(t, "list default", status, body, 200, "", ""); strings.Count(string(body), `"id"`) != 5 {
		t.Fatalf("default list: %s", body)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x"} {
		status, body, _ = n.do("GET", "/v1/destinations?"+q, op, nil)
		dstExpect(t, q, status, body, 422, "query.limit", "invalid_limit")
	}
	status, body, _ = n.do("GET", "/v1/destinations?cursor=!!", op, nil)
	dstExpect(t, "bad cursor", status, body, 422, "query.cursor", "invalid_cursor")

	// Delete: 204, then gone; the name is free again; the list no longer shows it.
	status, body, _ = n.do("DELETE", "/v1/destinations/"+a.ID, op, nil)
	dstExpect(t, "delete", status, body, 204, "", "")
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/destinations/" + a.ID},
		{"DELETE", "/v1/destinations/" + a.ID},
		{"POST", "/v1/destinations/" + a.ID + "/pause"},
		{"POST", "/v1/destinations/" + a.ID + "/test"},
	} {
		status, body, _ = n.do(r.method, r.path, op, nil)
		dstExpect(t, r.method+" "+r.path+" after delete", status, body, 404, "id", "destination_not_found")
	}
	status, body, _ = n.do("PATCH", "/v1/destinations/"+a.ID, op, map[string]any{"description": "x"})
	dstExpect(t, "patch deleted", status, body, 404, "id", "destination_not_found")
	status, body, _ = n.do("POST", "/v1/destinations", op, dstBody("alpha", "alpha-token-again"))
	dstExpect(t, "reuse name", status, body, 201, "", "")
	status, body, _ = n.do("GET", "/v1/destinations?limit=200", op, nil)
	if dstExpect(t, "list after delete", status, body, 200, "", ""); strings.Contains(string(body), a.ID) || strings.Count(string(body), `"id"`) != 5 {
		t.Fatalf("list after delete: %s", body)
	}
	// Renaming onto a live name clashes too.
	status, body, _ = n.do("PATCH", "/v1/destinations/"+ids[1], op, map[string]any{"name": "alpha"})
	dstExpect(t, "rename clash", status, body, 409, "name", "name_taken")
}

func dstDoIfMatch(t *testing.T, n *node, id, key, ifMatch, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("PATCH", n.base+"/v1/destinations/"+id, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("If-Match", ifMatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func TestDestinationsAccess(t *testing.T) {
	n := startNode(t, nil)
	op := n.createKey("operator")
	status, body, _ := n.do("POST", "/v1/destinations", op, dstBody("acl", "acl-token-1234"))
	dstExpect(t, "create", status, body, 201, "", "")
	id := decode[dstView](t, body).ID
	ingest, support := n.createKey("ingest"), n.createKey("support")

	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/destinations", dstBody("acl2", "acl-token-5678")},
		{"GET", "/v1/destinations", nil},
		{"GET", "/v1/destinations/" + id, nil},
		{"PATCH", "/v1/destinations/" + id, map[string]any{"description": "x"}},
		{"POST", "/v1/destinations/" + id + "/pause", nil},
		{"POST", "/v1/destinations/" + id + "/resume", nil},
		{"POST", "/v1/destinations/" + id + "/test", nil},
		{"DELETE", "/v1/destinations/" + id, nil},
	}
	for _, r := range routes {
		for _, k := range []struct {
			name, key string
			status    int
			code      string
		}{
			{"no key", "", 401, "unauthorized"},
			{"bad key", "qg_aaaaaaaaaaaaa_bbbb", 401, "unauthorized"},
			{"ingest", ingest, 403, "forbidden"},
			{"support", support, 403, "forbidden"},
		} {
			status, body, _ := n.do(r.method, r.path, k.key, r.body)
			dstExpect(t, r.method+" "+r.path+" with "+k.name, status, body, k.status, "header.Authorization", k.code)
		}
	}
	// Admin may do everything.
	status, body, _ = n.do("GET", "/v1/destinations/"+id, testAdminKey, nil)
	dstExpect(t, "admin get", status, body, 200, "", "")
	status, body, _ = n.do("POST", "/v1/destinations", testAdminKey, dstBody("by-admin", "admin-token-1234"))
	dstExpect(t, "admin create", status, body, 201, "", "")
}

func TestDestinationsValidation(t *testing.T) {
	n := startNode(t, nil) // default allow-list *.qualtrics.com, no private networks
	op := n.createKey("operator")

	for _, u := range []string{
		"http://sjc1.qualtrics.com/inbound-event/v1/events/json/triggers",
		"https://example.com/hook",
		"https://127.0.0.1/events",
		"https://169.254.169.254/",
		"https://10.0.0.8/events",
		"ftp://sjc1.qualtrics.com/x",
		"not a url",
	} {
		b := dstBody("u-"+u, "token-12345678")
		b["url"] = u
		status, body, _ := n.do("POST", "/v1/destinations", op, b)
		dstExpect(t, "url "+u, status, body, 422, "url", "url_not_allowed")
	}

	// Every problem at once, each with its path.
	b := dstBody("", "short")
	b["identityMappings"] = []any{
		map[string]any{"source": "Email", "target": "email"},
		map[string]any{"source": "ECID", "target": "email"},
		map[string]any{"source": "Email_LC_SHA256", "target": "external_id"},
	}
	b["attributeMappings"] = []any{
		map[string]any{"source": "person.name.firstName", "target": "first_name"},
		map[string]any{"source": "a", "target": "identityMap"},
	}
	b["audiences"] = []any{"seg-1", "seg-1"}
	b["rateLimitPerMinute"] = 5000
	status, body, _ := n.do("POST", "/v1/destinations", op, b)
	for _, want := range [][2]string{
		{"name", "required"},
		{"apiToken", "too_small"},
		{"identityMappings[1].target", "email_source_mismatch"},
		{"identityMappings[1].target", "duplicate_target"},
		{"identityMappings[2].source", "hashed_namespace"},
		{"attributeMappings[0].target", "invalid_target"},
		{"attributeMappings[1].target", "reserved_target"},
		{"audiences[1]", "duplicate_audience"},
		{"rateLimitPerMinute", "too_large"},
	} {
		dstExpect(t, "all problems", status, body, 422, want[0], want[1])
	}
	status, body, _ = n.do("POST", "/v1/destinations", op, map[string]any{})
	for _, f := range []string{"name", "url", "username", "apiToken", "identityMappings", "audiences"} {
		dstExpect(t, "empty body", status, body, 422, f, "required")
	}

	// Transport-level refusals.
	status, body, _ = n.do("POST", "/v1/destinations", op, `{"name":`)
	dstExpect(t, "malformed", status, body, 400, "", "malformed_json")
	req, _ := http.NewRequest("POST", n.base+"/v1/destinations", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+op)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("non-JSON: %d", resp.StatusCode)
	}
	status, body, _ = n.do("POST", "/v1/destinations", op, `{"name":"x","rateLimitPerMinute":"fast"}`)
	dstExpect(t, "wrong type", status, body, 422, "rateLimitPerMinute", "invalid_type")
}

// With QGATE_ALLOW_PRIVATE_NETWORKS (tests, demos) loopback http is allowed; metadata never.
func TestDestinationsPrivateNetworksSwitch(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.AllowPrivateNetworks = true
		c.AllowedHosts = []string{"*.qualtrics.com", "sim.test"}
	})
	op := n.createKey("operator")
	for u, want := range map[string]int{
		"http://127.0.0.1:9999/events": 201,
		"https://sim.test/events":      201,
		"https://169.254.169.254/":     422,
		"https://example.com/":         422,
	} {
		b := dstBody("p-"+u, "token-12345678")
		b["url"] = u
		status, body, _ := n.do("POST", "/v1/destinations", op, b)
		if status != want {
			t.Errorf("%s: %d %s, want %d", u, status, body, want)
		}
	}
}

// The token's plaintext never leaves qgate: not in responses, logs or the store.
func TestDestinationSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, func(c *config.Config) { c.DataDir = dir })
	op := n.createKey("operator")
	const marker = "ZANZIBARquokka"
	tok1, tok2 := "tok-"+marker+"-first-A1B2", "tok-"+marker+"-second-C3D4"

	var responses []string
	record := func(status int, body []byte, hdr http.Header) {
		responses = append(responses, fmt.Sprintf("%d %v %s", status, hdr, body))
	}
	status, body, hdr := n.do("POST", "/v1/destinations", op, dstBody("secret", tok1))
	record(status, body, hdr)
	id := decode[dstView](t, body).ID
	if decode[dstView](t, body).TokenLast4 != "A1B2" {
		t.Fatalf("last4: %s", body)
	}
	record(n.do("GET", "/v1/destinations/"+id, op, nil))
	record(n.do("GET", "/v1/destinations", op, nil))
	status, body, hdr = n.do("PATCH", "/v1/destinations/"+id, op, map[string]any{"apiToken": tok2})
	record(status, body, hdr)
	if decode[dstView](t, body).TokenLast4 != "C3D4" {
		t.Fatalf("rotated last4: %s", body)
	}
	record(n.do("PATCH", "/v1/destinations/"+id, op, map[string]any{"apiToken": "short"})) // 422 must not echo it either
	record(n.do("PATCH", "/v1/destinations/"+id, op, map[string]any{"apiToken": tok2 + " x"}))
	record(n.do("POST", "/v1/destinations/"+id+"/pause", op, nil))
	record(n.do("POST", "/v1/destinations/"+id+"/resume", op, nil))
	record(n.do("POST", "/v1/destinations/"+id+"/test", op, nil))
	record(n.do("POST", "/v1/destinations", op, dstBody("secret", tok1))) // 409
	for _, r := range responses {
		if strings.Contains(r, marker) {
			t.Fatalf("token in a response: %s", r)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the registry's refresh loop run and log
	if logs := n.logs.String(); strings.Contains(logs, marker) {
		t.Fatalf("token in the logs:\n%s", logs)
	}

	// Not in any file under the data dir (database, WAL, shared memory, secret key).
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), marker) {
			t.Errorf("token in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Not in any column of the table.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "qgate.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM destinations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	nrows := 0
	for rows.Next() {
		nrows++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if s := fmt.Sprintf("%s", v); strings.Contains(s, marker) || strings.Contains(s, tok2) {
				t.Errorf("token in column %s", cols[i])
			}
		}
	}
	if nrows != 1 {
		t.Fatalf("%d rows", nrows)
	}
}
