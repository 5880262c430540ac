package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/simulator"
)

// The OpenAPI document and the profile schema it references are loaded under these URLs; the
// document refers to the profile schema by the relative name "profile-update.schema.json",
// which resolves to the profile schema's own $id.
const (
	oaDocURL     = "https://qgate.example/schemas/openapi.yaml"
	oaProfileURL = "https://qgate.example/schemas/profile-update.schema.json"
)

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaSpec is schemas/openapi.yaml, ready to validate requests and responses against.
type oaSpec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema // by JSON pointer into the document
	seen     map[string][]int              // "METHOD /path" → statuses exercised
}

func loadOpenAPI(t *testing.T) *oaSpec {
	t.Helper()
	y, err := os.ReadFile("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatalf("openapi.yaml as JSON: %v", err)
	}
	f, err := os.Open("../../schemas/profile-update.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prof, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(oaDocURL, doc); err != nil {
		t.Fatalf("add openapi.yaml: %v", err)
	}
	if err := c.AddResource(oaProfileURL, prof); err != nil {
		t.Fatalf("add profile schema: %v", err)
	}
	root, ok := doc.(map[string]any)
	if !ok || root["openapi"] != "3.1.0" {
		t.Fatalf("openapi.yaml is not an OpenAPI 3.1.0 document")
	}
	s := &oaSpec{doc: root, compiler: c, compiled: map[string]*jsonschema.Schema{}, seen: map[string][]int{}}
	// Every component schema compiles (a broken one fails here, not in the middle of a flow).
	for name := range s.obj(t, "/components/schemas") {
		s.schema(t, "/components/schemas/"+oaEscape(name))
	}
	return s
}

// oaEscape escapes a JSON pointer token.
func oaEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// lookup returns the value at a JSON pointer of the document, or nil.
func (s *oaSpec) lookup(ptr string) any {
	var v any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	return v
}

func (s *oaSpec) obj(t *testing.T, ptr string) map[string]any {
	t.Helper()
	m, ok := s.lookup(ptr).(map[string]any)
	if !ok {
		t.Fatalf("openapi.yaml: no object at %s", ptr)
	}
	return m
}

// deref follows a local $ref (responses, headers, parameters) and returns the pointer and object.
func (s *oaSpec) deref(t *testing.T, ptr string) (string, map[string]any) {
	t.Helper()
	m := s.obj(t, ptr)
	for i := 0; i < 5; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr, m
		}
		if !strings.HasPrefix(ref, "#/") {
			t.Fatalf("openapi.yaml: %s: only local $refs outside schemas, got %s", ptr, ref)
		}
		ptr = strings.TrimPrefix(ref, "#")
		m = s.obj(t, ptr)
	}
	t.Fatalf("openapi.yaml: $ref loop at %s", ptr)
	return "", nil
}

func (s *oaSpec) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if sch, ok := s.compiled[ptr]; ok {
		return sch
	}
	sch, err := s.compiler.Compile(oaDocURL + "#" + ptr)
	if err != nil {
		t.Fatalf("openapi.yaml: compile %s: %v", ptr, err)
	}
	s.compiled[ptr] = sch
	return sch
}

// operations returns every documented "METHOD /path".
func (s *oaSpec) operations(t *testing.T) []string {
	var ops []string
	for path, item := range s.obj(t, "/paths") {
		for _, m := range oaMethods {
			if _, ok := item.(map[string]any)[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func (s *oaSpec) opPtr(method, route string) string {
	return "/paths/" + oaEscape(route) + "/" + strings.ToLower(method)
}

// checkRequest validates a JSON request body against the operation's documented request body.
func (s *oaSpec) checkRequest(t *testing.T, method, route string, body []byte) {
	t.Helper()
	ptr := s.opPtr(method, route) + "/requestBody/content/application~1json/schema"
	if s.lookup(ptr) == nil {
		t.Errorf("%s %s: sent a JSON body, but openapi.yaml documents none", method, route)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request body: %v", err)
	}
	if err := s.schema(t, ptr).Validate(inst); err != nil {
		t.Errorf("%s %s: the request body does not match the documented schema: %v\nbody: %s", method, route, err, oaCut(body))
	}
}

// checkResponse validates a response against what openapi.yaml documents for (method, route,
// status): the status must be documented, its required headers present and valid, and the
// body must match the documented media type's schema (or be empty when none is documented).
func (s *oaSpec) checkResponse(t *testing.T, method, route string, status int, hdr http.Header, body []byte) {
	t.Helper()
	op := s.opPtr(method, route)
	if s.lookup(op) == nil {
		t.Errorf("%s %s is not documented in openapi.yaml", method, route)
		return
	}
	key := method + " " + route
	if !slices.Contains(s.seen[key], status) {
		s.seen[key] = append(s.seen[key], status)
	}
	rptr := op + "/responses/" + strconv.Itoa(status)
	if s.lookup(rptr) == nil {
		t.Errorf("%s %s answered %d, which openapi.yaml does not document for it: %s", method, route, status, oaCut(body))
		return
	}
	rptr, resp := s.deref(t, rptr)
	if hs, ok := resp["headers"].(map[string]any); ok {
		for name := range hs {
			hptr, h := s.deref(t, rptr+"/headers/"+oaEscape(name))
			v := hdr.Get(name)
			if v == "" {
				if h["required"] == true {
					t.Errorf("%s %s %d: documented header %s is missing", method, route, status, name)
				}
				continue
			}
			var inst any = v
			if sch, _ := h["schema"].(map[string]any); sch["type"] == "integer" {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Errorf("%s %s %d: header %s=%q is not an integer", method, route, status, name, v)
					continue
				}
				inst = json.Number(strconv.Itoa(n))
			}
			if err := s.schema(t, hptr+"/schema").Validate(inst); err != nil {
				t.Errorf("%s %s %d: header %s=%q: %v", method, route, status, name, v, err)
			}
		}
	}
	content, ok := resp["content"].(map[string]any)
	if !ok {
		if len(body) != 0 {
			t.Errorf("%s %s %d: openapi.yaml documents no body, got %s", method, route, status, oaCut(body))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s %s %d: Content-Type %q: %v", method, route, status, hdr.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s %s %d: media type %s is not documented (documented: %v)", method, route, status, mt, oaKeys(content))
		return
	}
	sch := s.schema(t, rptr+"/content/"+oaEscape(mt)+"/schema")
	var inst any = string(body)
	if mt == "application/json" {
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			t.Errorf("%s %s %d: the body is not JSON: %v: %s", method, route, status, err, oaCut(body))
			return
		}
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: the body does not match the documented schema: %v\nbody: %s", method, route, status, err, oaCut(body))
	}
}

func oaKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func oaCut(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// oaReq is one request of the flow and the status it must get.
type oaReq struct {
	method string
	route  string // the documented path template, such as /v1/destinations/{id}
	path   string // the concrete path and query; "" means route
	key    string
	body   any    // nil; []byte or string sent as is; anything else as JSON
	ctype  string // Content-Type; "" means application/json when there is a body
	header map[string]string
	want   int
	// validBody: the body is a valid request, so it must also match the documented request schema.
	validBody bool
}

type oaResp struct {
	status int
	body   []byte
	header http.Header
}

// call sends r to the node, checks the status and validates the exchange against the spec.
func (s *oaSpec) call(t *testing.T, base string, r oaReq) oaResp {
	t.Helper()
	var raw []byte
	switch b := r.body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	path := r.path
	if path == "" {
		path = r.route
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(r.method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != nil {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != r.want {
		t.Fatalf("%s %s: status %d, want %d: %s", r.method, path, resp.StatusCode, r.want, oaCut(body))
	}
	if r.validBody {
		s.checkRequest(t, r.method, r.route, raw)
	}
	s.checkResponse(t, r.method, r.route, resp.StatusCode, resp.Header, body)
	return oaResp{status: resp.StatusCode, body: body, header: resp.Header}
}

// oaProfile is a valid profile in audience aud.
func oaProfile(email, aud string) map[string]any {
	return map[string]any{
		"person":      map[string]any{"name": map[string]any{"firstName": "Ada"}},
		"identityMap": map[string]any{"Email": []any{map[string]any{"id": email}}},
		"segmentMembership": map[string]any{"ups": map[string]any{
			aud: map[string]any{"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
		}},
	}
}

const oaHashed = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"

// TestOpenAPI checks schemas/openapi.yaml against the running service: every route is
// documented and every documented operation exists, and real responses of every endpoint —
// successes and failures — match the documented status, headers and body schema.
func TestOpenAPI(t *testing.T) {
	spec := loadOpenAPI(t)
	// An external embedded broker, so the end of the flow can take Kafka away (503s).
	broker, err := kafka.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	brokerClosed := false
	t.Cleanup(func() {
		if !brokerClosed {
			broker.Close()
		}
	})
	e := startDelivery(t, func(c *config.Config) {
		c.KafkaBrokers = broker.Addrs()
		c.SecretKey = strings.Repeat("cd", 32)
		c.MaxBodyBytes = 64 << 10
		c.ProduceTimeout = 2 * time.Second
	})
	base := e.base
	admin := testAdminKey

	t.Run("routes", func(t *testing.T) {
		param := regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)
		var served []string
		for _, r := range e.app.Handler().(*gin.Engine).Routes() {
			served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
		}
		slices.Sort(served)
		served = slices.Compact(served)
		documented := spec.operations(t)
		for _, op := range served {
			if !slices.Contains(documented, op) {
				t.Errorf("route %s is served but not documented in openapi.yaml", op)
			}
		}
		for _, op := range documented {
			if !slices.Contains(served, op) {
				t.Errorf("openapi.yaml documents %s, which is not served", op)
			}
		}
	})

	t.Run("ops", func(t *testing.T) {
		spec.call(t, base, oaReq{method: "GET", route: "/healthz", want: 200})
		spec.call(t, base, oaReq{method: "GET", route: "/readyz", want: 200})
		spec.call(t, base, oaReq{method: "GET", route: "/metrics", want: 200})
		for _, r := range []string{"/ui", "/ui/app.js", "/ui/style.css"} {
			res := spec.call(t, base, oaReq{method: "GET", route: r, want: 200})
			if len(res.body) < 100 || !strings.Contains(res.header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("%s: %d bytes, CSP %q", r, len(res.body), res.header.Get("Content-Security-Policy"))
			}
		}
	})

	t.Run("keys", func(t *testing.T) {
		const r = "/v1/keys"
		created := spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: map[string]any{"name": "oa support", "role": "support"}, want: 201, validBody: true})
		k := decode[struct{ ID, Key string }](t, created.body)
		spec.call(t, base, oaReq{method: "GET", route: r, key: admin, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: r, key: k.Key, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: r, want: 401})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: map[string]any{"name": "x", "role": "root"}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: map[string]any{"name": "x", "role": "ingest", "extra": 1}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: `{"name":`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: "name=x", ctype: "application/x-www-form-urlencoded", want: 415})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: `{"name":"` + strings.Repeat("x", 1<<20) + `","role":"ingest"}`, want: 413})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.operator, body: map[string]any{"name": "x", "role": "ingest"}, want: 403})
		spec.call(t, base, oaReq{method: "POST", route: r, body: map[string]any{"name": "x", "role": "ingest"}, want: 401})

		const rk = "/v1/keys/{id}"
		spec.call(t, base, oaReq{method: "DELETE", route: rk, path: "/v1/keys/" + k.ID, key: admin, want: 204})
		spec.call(t, base, oaReq{method: "DELETE", route: rk, path: "/v1/keys/" + k.ID, key: admin, want: 404})
		spec.call(t, base, oaReq{method: "DELETE", route: rk, path: "/v1/keys/nope", key: e.support, want: 403})
		spec.call(t, base, oaReq{method: "DELETE", route: rk, path: "/v1/keys/nope", want: 401})
		spec.call(t, base, oaReq{method: "GET", route: r, key: k.Key, want: 401}) // revoked
		spec.call(t, base, oaReq{method: "GET", route: r, key: admin, want: 200}) // with revokedAt
	})

	t.Run("ingest", func(t *testing.T) {
		const r = "/v1/profiles"
		good := oaProfile("oa-ingest@example.com", "aud-oa-ingest")
		hashed := oaProfile(oaHashed, "aud-oa-ingest")
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: good, want: 202, validBody: true})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: map[string]any{"profiles": []any{good, good}}, want: 202, validBody: true})
		spec.call(t, base, oaReq{method: "POST", route: r, key: admin, body: map[string]any{"profiles": []any{good, hashed, "not an object"}}, want: 202})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: hashed, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: map[string]any{"profiles": []any{hashed, map[string]any{"Bad": 1}}}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: `{"profiles": [`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: `{"profiles": []}`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: `{"profiles": [` + strings.Repeat(`{},`, 500) + `{}]}`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: `{"note": "` + strings.Repeat("x", 64<<10) + `"}`, want: 413})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.ingest, body: "hello", ctype: "text/plain", want: 415})
		spec.call(t, base, oaReq{method: "POST", route: r, body: good, want: 401})
		spec.call(t, base, oaReq{method: "POST", route: r, key: "qg_nokey_nosecret", body: good, want: 401})
		spec.call(t, base, oaReq{method: "POST", route: r, key: e.operator, body: good, want: 403})
	})

	t.Run("destinations", func(t *testing.T) {
		const (
			rl = "/v1/destinations"
			ri = "/v1/destinations/{id}"
		)
		create := func(name string, want int) oaResp {
			wf := "WF_oa_" + name
			e.sim.AddWorkflow(simulator.Workflow{ID: wf, Username: "user-" + name, Token: "token-" + name + "-secret"})
			return spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, want: want, validBody: true, body: map[string]any{
				"name": "oa-" + name, "description": "OpenAPI check", "url": e.sim.EventURL(e.simURL, wf), "username": "user-" + name,
				"apiToken":           "token-" + name + "-secret",
				"identityMappings":   []any{map[string]any{"source": "Email", "target": "email"}, map[string]any{"source": "ECID", "target": "external_id"}},
				"attributeMappings":  []any{map[string]any{"source": "person.name.firstName", "target": "firstName"}},
				"audiences":          []any{"aud-oa-dst"},
				"rateLimitPerMinute": 600,
			}})
		}
		a := create("alpha", 201)
		if a.header.Get("Location") == "" || a.header.Get("ETag") != `"1"` {
			t.Errorf("create: Location %q ETag %q", a.header.Get("Location"), a.header.Get("ETag"))
		}
		id := decode[struct{ ID string }](t, a.body).ID
		create("beta", 201)
		create("alpha", 409)
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, want: 422, body: map[string]any{
			"name": "oa-bad", "url": "http://example.com/x", "username": "a:b", "apiToken": "short",
			"identityMappings": []any{map[string]any{"source": "Email", "target": "phone"}}, "audiences": []any{}}})
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, want: 422, body: map[string]any{"name": "x", "version": 3}})
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, body: `{"name": "x",`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, body: "x", ctype: "text/plain", want: 415})
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.operator, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
		spec.call(t, base, oaReq{method: "POST", route: rl, key: e.support, body: map[string]any{}, want: 403})
		spec.call(t, base, oaReq{method: "POST", route: rl, body: map[string]any{}, want: 401})

		first := spec.call(t, base, oaReq{method: "GET", route: rl, path: rl + "?limit=1", key: e.operator, want: 200})
		page := decode[struct{ NextCursor *string }](t, first.body)
		if page.NextCursor == nil {
			t.Fatalf("a page of 1 of 2 has no nextCursor: %s", first.body)
		}
		spec.call(t, base, oaReq{method: "GET", route: rl, path: rl + "?limit=1&cursor=" + url.QueryEscape(*page.NextCursor), key: e.operator, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rl, key: admin, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rl, path: rl + "?limit=0&cursor=bogus", key: e.operator, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rl, key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rl, want: 401})

		p := "/v1/destinations/" + id
		missing := "/v1/destinations/dst_00000000-0000-7000-8000-000000000000"
		spec.call(t, base, oaReq{method: "GET", route: ri, path: p, key: e.operator, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: ri, path: missing, key: e.operator, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: ri, path: p, key: e.support, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: ri, path: p, want: 401})

		e.sim.AddWorkflow(simulator.Workflow{ID: "WF_oa_alpha", Username: "user-alpha", Token: "rotated-token-0001"})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, header: map[string]string{"If-Match": `"1"`},
			body: map[string]any{"description": "changed", "apiToken": "rotated-token-0001", "enabled": nil}, want: 200, validBody: true})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, header: map[string]string{"If-Match": "1"}, body: map[string]any{"description": "stale"}, want: 409})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: map[string]any{"description": "stale", "version": 1}, want: 409})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: map[string]any{"name": "oa-beta"}, want: 409})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, header: map[string]string{"If-Match": "two"}, body: map[string]any{}, want: 422})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: map[string]any{"rateLimitPerMinute": 0, "audiences": []any{"a", "a"}}, want: 422})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: map[string]any{"enabled": "yes"}, want: 422})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: `{`, want: 400})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: "x", ctype: "text/plain", want: 415})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: missing, key: e.operator, body: map[string]any{}, want: 404})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: `{"description":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.support, body: map[string]any{}, want: 403})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, body: map[string]any{}, want: 401})
		spec.call(t, base, oaReq{method: "PATCH", route: ri, path: p, key: e.operator, body: map[string]any{}, want: 200, validBody: true})

		for _, action := range []string{"pause", "resume"} {
			r := "/v1/destinations/{id}/" + action
			spec.call(t, base, oaReq{method: "POST", route: r, path: p + "/" + action, key: e.operator, want: 200})
			spec.call(t, base, oaReq{method: "POST", route: r, path: p + "/" + action, key: e.operator, want: 200}) // idempotent
			spec.call(t, base, oaReq{method: "POST", route: r, path: missing + "/" + action, key: e.operator, want: 404})
			spec.call(t, base, oaReq{method: "POST", route: r, path: p + "/" + action, key: e.ingest, want: 403})
			spec.call(t, base, oaReq{method: "POST", route: r, path: p + "/" + action, want: 401})
		}

		const rt = "/v1/destinations/{id}/test"
		res := spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, want: 200})
		if tr := decode[struct{ Delivered bool }](t, res.body); !tr.Delivered {
			t.Errorf("test against the simulator: %s", res.body)
		}
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator,
			body: map[string]any{"profile": oaProfile("oa-test@example.com", "aud-oa-dst")}, want: 200, validBody: true})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: map[string]any{"profile": nil}, want: 200, validBody: true})
		// A profile with neither mapped identity (only a custom namespace) is excluded, not sent.
		excl := spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: map[string]any{"profile": map[string]any{
			"identityMap":       map[string]any{"crmId": []any{map[string]any{"id": "c-1"}}},
			"segmentMembership": map[string]any{"ups": map[string]any{"aud-oa-dst": map[string]any{"lastQualificationTime": "2023-09-05T10:43:55Z", "status": "realized"}}},
		}}, want: 200, validBody: true})
		if tr := decode[struct{ Outcome, Reason string }](t, excl.body); tr.Outcome != "excluded" || tr.Reason != delivery.ReasonMissingIdentity {
			t.Errorf("test with no mapped identity: %s", excl.body)
		}
		e.sim.ForceUnauthorized("WF_oa_alpha", true)
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, want: 200})
		e.sim.ForceUnauthorized("WF_oa_alpha", false)
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: map[string]any{"profile": map[string]any{"Bad": 1}}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: map[string]any{"profile": 5}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: `{"profile":`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: "x", ctype: "text/plain", want: 415})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, body: `{"profile":{"note":"` + strings.Repeat("x", 1<<20) + `"}}`, want: 413})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: missing + "/test", key: e.operator, want: 404})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.support, want: 403})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", want: 401})

		spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, want: 401})
		spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: e.operator, want: 204})
		spec.call(t, base, oaReq{method: "DELETE", route: ri, path: p, key: e.operator, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: ri, path: p, key: e.operator, want: 404})
		spec.call(t, base, oaReq{method: "POST", route: rt, path: p + "/test", key: e.operator, want: 404})
	})

	t.Run("support", func(t *testing.T) {
		const aud = "aud-oa-support"
		in := map[string]any{"audiences": []any{aud}}
		ok, _ := e.destination("oa-ok", in)
		ext, _ := e.destination("oa-ext", map[string]any{"audiences": []any{aud},
			"identityMappings": []any{map[string]any{"source": "ECID", "target": "external_id"}}})
		retry, wfRetry := e.destination("oa-retry", in)
		e.sim.Script(wfRetry, simulator.Step{Status: 503}, simulator.Step{Status: 200})
		dead, wfDead := e.destination("oa-dead", in)
		e.sim.Script(wfDead, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"nope"}}}`})

		id := e.post(oaProfile("oa-support@example.com", aud))
		recs := []delivery.Record{
			e.awaitStatus(id, ok, delivery.Delivered),
			e.awaitStatus(id, ext, delivery.Excluded),
			e.awaitStatus(id, retry, delivery.Delivered),
			e.awaitStatus(id, dead, delivery.DeadLettered),
		}
		const ru, rd = "/v1/updates/{updateId}", "/v1/deliveries/{deliveryId}"
		v := spec.call(t, base, oaReq{method: "GET", route: ru, path: "/v1/updates/" + id, key: e.support, want: 200})
		if n := len(decode[supportView](t, v.body).Deliveries); n != len(recs) {
			t.Errorf("update view has %d deliveries, want %d: %s", n, len(recs), v.body)
		}
		for _, rec := range recs {
			spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/deliveries/" + rec.DeliveryID, key: e.support, want: 200})
		}
		spec.call(t, base, oaReq{method: "GET", route: ru, path: "/v1/updates/" + id, key: admin, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: ru, path: "/v1/updates/00000000-0000-7000-8000-000000000000", key: e.support, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: ru, path: "/v1/updates/" + id, key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: ru, path: "/v1/updates/" + id, want: 401})
		spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/deliveries/dlv_00000000000000000000000000000000", key: e.support, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/deliveries/" + recs[0].DeliveryID, key: e.operator, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rd, path: "/v1/deliveries/" + recs[0].DeliveryID, want: 401})

		const rs, rdl, rr = "/v1/deliveries", "/v1/dead-letters", "/v1/dead-letters/replay"
		spec.call(t, base, oaReq{method: "GET", route: rs, path: rs + "?identity=oa-support%40example.com&limit=2", key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rs, path: rs + "?status=dead_lettered&destinationId=" + dead + "&since=2020-01-01T00:00:00Z", key: admin, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rs, path: rs + "?status=gone", key: e.support, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rs, key: e.operator, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rs, want: 401})
		spec.call(t, base, oaReq{method: "GET", route: rdl, path: rdl + "?destinationId=" + dead, key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rdl, path: rdl + "?limit=500", key: e.support, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rdl, key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rdl, want: 401})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: map[string]any{"deliveryIds": []string{recs[0].DeliveryID}}, want: 200, validBody: true})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: map[string]any{"filter": map[string]any{"destinationId": dead, "reason": "client_error", "limit": 10}}, want: 200, validBody: true})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: map[string]any{"filter": map[string]any{"destinationId": "dst_00000000-0000-7000-8000-000000000000"}}, want: 404})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: map[string]any{}, want: 422})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: `{"deliveryIds":`, want: 400})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: "x", ctype: "text/plain", want: 415})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.support, body: `{"deliveryIds":["` + strings.Repeat("x", 1<<20) + `"]}`, want: 413})
		spec.call(t, base, oaReq{method: "POST", route: rr, key: e.operator, body: map[string]any{}, want: 403})
		spec.call(t, base, oaReq{method: "POST", route: rr, body: map[string]any{}, want: 401})
		const rst = "/v1/destinations/{id}/stats"
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/" + dead + "/stats", key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/" + ok + "/stats?window=7d", key: e.operator, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/" + ok + "/stats?window=1d", key: e.operator, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/dst_00000000-0000-7000-8000-000000000000/stats", key: e.support, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/" + ok + "/stats", key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rst, path: "/v1/destinations/" + ok + "/stats", want: 401})
		// The support page's reads (support_ui_test.go checks what they say).
		const rsd, rse, rpl = "/v1/support/destinations", "/v1/destinations/{id}/series", "/v1/deliveries/{deliveryId}/payload"
		spec.call(t, base, oaReq{method: "GET", route: rsd, key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rsd, path: rsd + "?limit=1", key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rsd, path: rsd + "?limit=0", key: e.support, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rsd, key: e.operator, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rsd, want: 401})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/" + dead + "/series", key: e.support, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/" + ok + "/series?window=24h", key: e.operator, want: 200})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/" + ok + "/series?window=7d", key: e.support, want: 422})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/dst_00000000-0000-7000-8000-000000000000/series", key: e.support, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/" + ok + "/series", key: e.ingest, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rse, path: "/v1/destinations/" + ok + "/series", want: 401})
		for _, rec := range recs {
			spec.call(t, base, oaReq{method: "GET", route: rpl, path: "/v1/deliveries/" + rec.DeliveryID + "/payload", key: e.support, want: 200})
		}
		spec.call(t, base, oaReq{method: "GET", route: rpl, path: "/v1/deliveries/dlv_00000000000000000000000000000000/payload", key: e.support, want: 404})
		spec.call(t, base, oaReq{method: "GET", route: rpl, path: "/v1/deliveries/" + recs[0].DeliveryID + "/payload", key: e.operator, want: 403})
		spec.call(t, base, oaReq{method: "GET", route: rpl, path: "/v1/deliveries/" + recs[0].DeliveryID + "/payload", want: 401})
	})

	t.Run("survey watch", func(t *testing.T) { oaSurveyWatch(t, spec, e) }) // survey_openapi_test.go
	t.Run("alerts", func(t *testing.T) { oaAlerts(t, spec, e) })            // alerts_openapi_test.go

	// Kafka goes away: ingest answers 503 with Retry-After and the verdicts, readyz 503.
	t.Run("unavailable", func(t *testing.T) {
		broker.Close()
		brokerClosed = true
		spec.call(t, base, oaReq{method: "POST", route: "/v1/profiles", key: e.ingest,
			body: map[string]any{"profiles": []any{oaProfile("oa-down@example.com", "aud-oa-ingest"), oaProfile(oaHashed, "aud-oa-ingest")}}, want: 503})
		spec.call(t, base, oaReq{method: "GET", route: "/readyz", want: 503})
	})

	// Every documented operation was driven; list the documented statuses the flow cannot reach.
	var never, missed []string
	for _, op := range spec.operations(t) {
		method, route, _ := strings.Cut(op, " ")
		seen := spec.seen[op]
		if len(seen) == 0 {
			never = append(never, op)
			continue
		}
		for code := range spec.obj(t, spec.opPtr(method, route)+"/responses") {
			n, _ := strconv.Atoi(code)
			if !slices.Contains(seen, n) {
				missed = append(missed, fmt.Sprintf("%s %s", op, code))
			}
		}
	}
	if len(never) > 0 {
		t.Errorf("documented operations the test never exercised: %v", never)
	}
	slices.Sort(missed)
	t.Logf("documented statuses not exercised (store failures, panics, races): %v", missed)
}
