package simulator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestEventChecks(t *testing.T) {
	big := []byte(`{"pad":"` + strings.Repeat("x", 102400) + `"}`)
	exact := []byte(`{"pad":"` + strings.Repeat("x", 102400-len(`{"pad":""}`)) + `"}`)
	tests := []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		body     []byte
		want     int
		wantCode string
		wantRun  bool
		wantAuth string
	}{
		{name: "token ok", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: []byte(`{"a":1}`), want: 200, wantRun: true, wantAuth: "token"},
		{name: "basic ok", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "", "Authorization", basic(wfUser, wfToken)), body: []byte(`{"a":1}`), want: 200, wantRun: true, wantAuth: "basic"},
		{name: "deep path and query", method: "POST", path: "/events/" + wfID + "/deep/er?token=abc&x=1", header: jsonHeaders(), body: []byte(`[]`), want: 200, wantRun: true, wantAuth: "token"},
		{name: "charset ok", method: "POST", path: "/events/" + wfID, header: jsonHeaders("Content-Type", "application/json; charset=utf-8"), body: []byte(`{}`), want: 200, wantRun: true, wantAuth: "token"},
		{name: "exactly 100 KB", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: exact, want: 200, wantRun: true, wantAuth: "token"},
		{name: "unknown workflow", method: "POST", path: "/events/WF_nope", header: jsonHeaders(), body: []byte(`{}`), want: 404, wantCode: errorCode(404)},
		{name: "empty workflow", method: "POST", path: "/events/", header: jsonHeaders(), body: []byte(`{}`), want: 404, wantCode: errorCode(404)},
		{name: "unknown beats bad auth", method: "GET", path: "/events/WF_nope", header: nil, want: 404, wantCode: errorCode(404)},
		{name: "no auth", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", ""), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "wrong token", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "nope"), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "basic wrong user", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "", "Authorization", basic("other", wfToken)), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "basic wrong token", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "", "Authorization", basic(wfUser, "nope")), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "basic garbage", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "", "Authorization", "Basic !!!"), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "bearer refused", method: "POST", path: "/events/" + wfID, header: jsonHeaders("X-API-TOKEN", "", "Authorization", "Bearer "+wfToken), body: []byte(`{}`), want: 401, wantCode: errorCode(401)},
		{name: "auth beats method", method: "GET", path: "/events/" + wfID, header: nil, want: 401, wantCode: errorCode(401)},
		{name: "method", method: "GET", path: "/events/" + wfID, header: jsonHeaders(), want: 405, wantCode: errorCode(405), wantRun: true, wantAuth: "token"},
		{name: "put method", method: "PUT", path: "/events/" + wfID, header: jsonHeaders(), body: []byte(`{}`), want: 405, wantCode: errorCode(405), wantRun: true, wantAuth: "token"},
		{name: "method beats content type", method: "GET", path: "/events/" + wfID, header: jsonHeaders("Content-Type", "text/xml"), want: 405, wantCode: errorCode(405), wantRun: true, wantAuth: "token"},
		{name: "xml", method: "POST", path: "/events/" + wfID, header: jsonHeaders("Content-Type", "application/xml"), body: []byte(`<a/>`), want: 415, wantCode: errorCode(415), wantRun: true, wantAuth: "token"},
		{name: "no content type", method: "POST", path: "/events/" + wfID, header: jsonHeaders("Content-Type", ""), body: []byte(`{}`), want: 415, wantCode: errorCode(415), wantRun: true, wantAuth: "token"},
		{name: "content type beats size", method: "POST", path: "/events/" + wfID, header: jsonHeaders("Content-Type", "text/plain"), body: big, want: 415, wantCode: errorCode(415), wantRun: true, wantAuth: "token"},
		{name: "too large", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: big, want: 413, wantCode: errorCode(413), wantRun: true, wantAuth: "token"},
		{name: "size beats json", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: append(bytes.Repeat([]byte("{"), 102401), '}'), want: 413, wantCode: errorCode(413), wantRun: true, wantAuth: "token"},
		{name: "invalid json", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: []byte(`{"a":`), want: 400, wantCode: errorCode(400), wantRun: true, wantAuth: "token"},
		{name: "empty body", method: "POST", path: "/events/" + wfID, header: jsonHeaders(), body: nil, want: 400, wantCode: errorCode(400), wantRun: true, wantAuth: "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := startSim(t, Config{})
			got := do(t, nil, tt.method, srv.URL+tt.path, tt.header, tt.body)
			if got.Status != tt.want {
				t.Fatalf("status = %d, want %d (%s)", got.Status, tt.want, got.Raw)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if want := fmt.Sprintf("%d - %s", tt.want, http.StatusText(tt.want)); got.Env.Meta.HTTPStatus != want {
				t.Errorf("httpStatus = %q, want %q", got.Env.Meta.HTTPStatus, want)
			}
			if !requestIDPattern.MatchString(got.Env.Meta.RequestID) {
				t.Errorf("requestId = %q, not uuid-like", got.Env.Meta.RequestID)
			}
			if tt.want == 200 {
				if got.Env.Meta.Error != nil || len(got.Env.Result) == 0 {
					t.Errorf("success envelope = %s", got.Raw)
				}
			} else {
				if got.Env.Meta.Error == nil || got.Env.Meta.Error.ErrorMessage == "" || got.Env.Meta.Error.ErrorCode != tt.wantCode {
					t.Errorf("error envelope = %s, want code %s", got.Raw, tt.wantCode)
				}
				if got.Env.Result != nil {
					t.Errorf("error envelope has result: %s", got.Raw)
				}
			}
			if tt.want == 405 && got.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", got.Header.Get("Allow"))
			}

			runs := sim.Runs(wfID)
			rejected := sim.Stats().RejectedBeforeAuth
			if !tt.wantRun {
				if len(runs) != 0 || rejected != 1 {
					t.Fatalf("runs = %d, rejected = %d; want 0, 1", len(runs), rejected)
				}
				return
			}
			if len(runs) != 1 || rejected != 0 {
				t.Fatalf("runs = %d, rejected = %d; want 1, 0", len(runs), rejected)
			}
			run := runs[0]
			wantOutcome := OutcomeFailed
			if tt.want == 200 {
				wantOutcome = OutcomeSuccessful
			}
			if run.Status != tt.want || run.Outcome != wantOutcome || run.Auth != tt.wantAuth {
				t.Errorf("run = %+v, want status %d outcome %s auth %s", run, tt.want, wantOutcome, tt.wantAuth)
			}
			if run.RequestID != got.Env.Meta.RequestID {
				t.Errorf("run requestId %q != response %q", run.RequestID, got.Env.Meta.RequestID)
			}
			if tt.want == 200 && !bytes.Equal(run.Body, tt.body) {
				t.Errorf("run body = %.40s, want %.40s", run.Body, tt.body)
			}
			if tt.want != 200 && run.Body != nil {
				t.Errorf("failed run kept a body: %.40s", run.Body)
			}
			if q := strings.SplitN(tt.path, "?", 2); len(q) == 2 && run.Query != q[1] {
				t.Errorf("query = %q, want %q", run.Query, q[1])
			}
		})
	}
}

func TestRunRecordsHeaders(t *testing.T) {
	sim, srv := startSim(t, Config{})
	h := jsonHeaders("Idempotency-Key", "k-1", "User-Agent", "qgate/test")
	got := do(t, nil, "POST", sim.EventURL(srv.URL, wfID)+"/x?a=b", h, []byte(`{"email":"a@b.c"}`))
	if got.Status != 200 {
		t.Fatalf("status %d", got.Status)
	}
	run := sim.Runs(wfID)[0]
	if run.IdempotencyKey != "k-1" || run.UserAgent != "qgate/test" || run.ContentType != "application/json" ||
		run.Query != "a=b" || run.Path != "/events/"+wfID+"/x" || run.Method != "POST" || run.Time.IsZero() {
		t.Errorf("run = %+v", run)
	}
}

// TestOversizedBodyNotRead checks that a huge chunked body is refused after
// reading at most the limit, not all of it.
func TestOversizedBodyNotRead(t *testing.T) {
	sim, srv := startSim(t, Config{MaxBodyBytes: 1024})
	counted := &countingReader{r: io.LimitReader(zeroes{}, 10<<20)}
	req, _ := http.NewRequest("POST", srv.URL+"/events/"+wfID, counted)
	req.ContentLength = -1 // chunked: the server cannot refuse on the header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-TOKEN", wfToken)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status = %d, want 413", resp.StatusCode)
		}
	} // the server may close the connection before the client finishes writing
	if runs := sim.Runs(wfID); len(runs) != 1 || runs[0].Status != 413 {
		t.Fatalf("runs = %+v", runs)
	}
	if n := counted.n.Load(); n >= 10<<20 {
		t.Errorf("client wrote the whole body (%d bytes)", n)
	}
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
