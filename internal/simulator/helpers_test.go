package simulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	wfID    = "WF_test"
	wfUser  = "ops.user"
	wfToken = "tok-123"
)

// fakeClock is an injectable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startSim starts a simulator over real HTTP with one workflow.
func startSim(t *testing.T, cfg Config) (*Simulator, *Server) {
	t.Helper()
	sim, srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	return sim, srv
}

func basic(user, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Env    struct {
		Result json.RawMessage `json:"result"`
		Meta   struct {
			HTTPStatus string `json:"httpStatus"`
			RequestID  string `json:"requestId"`
			Error      *struct {
				ErrorMessage string `json:"errorMessage"`
				ErrorCode    string `json:"errorCode"`
			} `json:"error"`
		} `json:"meta"`
	}
}

func do(t *testing.T, client *http.Client, method, url string, header map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Env); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return out
}

// serve calls the handler directly (no network), for clock-driven tests.
func serve(sim *Simulator, method, target string, header map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewBufferString(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	return rec
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func jsonHeaders(extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "X-API-TOKEN": wfToken}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(h, extra[i])
			continue
		}
		h[extra[i]] = extra[i+1]
	}
	return h
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func jsonBody(s string) io.Reader { return bytes.NewBufferString(s) }
