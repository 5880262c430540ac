package destination

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/fault"
)

// fakeTester records what it was given and answers a fixed result.
type fakeTester struct {
	got     Destination
	profile json.RawMessage
	err     error
}

func (f *fakeTester) Test(_ context.Context, d Destination, p json.RawMessage) (TestResult, error) {
	f.got, f.profile = d, p
	if f.err != nil {
		return TestResult{}, f.err
	}
	return TestResult{Delivered: false, StatusCode: 401, LatencyMS: 12.5, Outcome: "destination_fault",
		Reason: "unauthorized", BodyExcerpt: `{"error":"bad token"}`, Payload: json.RawMessage(`{"email":"x@example.com"}`)}, nil
}

func serve(h *Handlers, method, path, contentType, body string) *httptest.ResponseRecorder {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	h.Register(e.Group("/v1"))
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

func TestTestEndpoint(t *testing.T) {
	svc, _, _ := newService(t)
	d, err := svc.Create(context.Background(), validRequest())
	if err != nil {
		t.Fatal(err)
	}
	h := &Handlers{Service: svc}
	path := "/v1/destinations/" + d.ID + "/test"

	// No tester wired: 503.
	if w := serve(h, "POST", path, "", ""); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "test_unavailable") {
		t.Fatalf("no tester: %d %s", w.Code, w.Body)
	}

	ft := &fakeTester{}
	svc.Tester = ft
	// No body: the tester gets the decrypted destination and no profile; a 401 from the
	// destination is still a 200 from qgate, with the result telling.
	w := serve(h, "POST", path, "", "")
	if w.Code != http.StatusOK {
		t.Fatalf("test: %d %s", w.Code, w.Body)
	}
	if ft.got.Token != "tok-0123456789" || ft.got.ID != d.ID || ft.profile != nil {
		t.Fatalf("tester got %+v profile %s", ft.got, ft.profile)
	}
	res := TestResult{}
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.StatusCode != 401 || res.Outcome != "destination_fault" || string(res.Payload) == "" {
		t.Fatalf("result %s %v", w.Body, err)
	}
	if strings.Contains(w.Body.String(), "tok-0123456789") {
		t.Fatal("token in test response")
	}

	// With a profile.
	w = serve(h, "POST", path, "application/json", `{"profile":{"identityMap":{"Email":[{"id":"a@example.com"}]}}}`)
	if w.Code != http.StatusOK || !strings.Contains(string(ft.profile), "a@example.com") {
		t.Fatalf("with profile: %d %s / %s", w.Code, w.Body, ft.profile)
	}
	// Empty JSON object: no profile.
	if w = serve(h, "POST", path, "application/json", `{}`); w.Code != 200 || ft.profile != nil {
		t.Fatalf("empty object: %d %s", w.Code, ft.profile)
	}
	// Bad bodies.
	for _, tc := range []struct {
		ct, body string
		status   int
	}{
		{"application/json", `{"profile":[1]}`, 422},
		{"application/json", `{"profile":`, 400},
		{"application/json", `{"other":1}`, 422},
		{"text/plain", `{"profile":{}}`, 415},
	} {
		if w := serve(h, "POST", path, tc.ct, tc.body); w.Code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.ct, tc.body, w.Code, w.Body, tc.status)
		}
	}
	// A tester error of a fault kind maps to its status.
	ft.err = fault.New(fault.Invalid, "profile", "no_identity", "the profile has no mapped identity")
	if w := serve(h, "POST", path, "", ""); w.Code != 422 || !strings.Contains(w.Body.String(), "no_identity") {
		t.Fatalf("tester fault: %d %s", w.Code, w.Body)
	}
	ft.err = errors.New("boom")
	if w := serve(h, "POST", path, "", ""); w.Code != 500 || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("tester error: %d %s", w.Code, w.Body)
	}
	// Unknown and deleted destinations: 404.
	if w := serve(h, "POST", "/v1/destinations/dst_nope/test", "", ""); w.Code != 404 || !strings.Contains(w.Body.String(), "destination_not_found") {
		t.Fatalf("unknown: %d %s", w.Code, w.Body)
	}
	_ = svc.Delete(context.Background(), d.ID)
	if w := serve(h, "POST", path, "", ""); w.Code != 404 {
		t.Fatalf("deleted: %d %s", w.Code, w.Body)
	}
}
