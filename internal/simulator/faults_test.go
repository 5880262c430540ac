package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestScript(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.Script(wfID,
		Step{Status: 503},
		Step{Status: 429, RetryAfter: "7"},
		Step{Status: 500, Body: `{"custom":true}`},
		Step{Status: 0}, // behave normally
		Step{Status: 202},
	)
	url := sim.EventURL(srv.URL, wfID)
	want := []struct {
		status     int
		retryAfter string
		outcome    string
		scripted   bool
	}{
		{503, "", OutcomeFailed, true},
		{429, "7", OutcomeFailed, true},
		{500, "", OutcomeFailed, true},
		{200, "", OutcomeSuccessful, false},
		{202, "", OutcomeSuccessful, true},
		{200, "", OutcomeSuccessful, false}, // exhausted: normal again
	}
	for i, w := range want {
		got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{"i":1}`))
		if got.Status != w.status || got.Header.Get("Retry-After") != w.retryAfter {
			t.Errorf("call %d: %d Retry-After %q, want %d %q", i, got.Status, got.Header.Get("Retry-After"), w.status, w.retryAfter)
		}
		if i == 2 && string(got.Raw) != `{"custom":true}` {
			t.Errorf("custom body = %s", got.Raw)
		}
		if i == 0 && (got.Env.Meta.Error == nil || got.Env.Meta.HTTPStatus != "503 - Service Unavailable") {
			t.Errorf("scripted envelope = %s", got.Raw)
		}
	}
	runs := sim.Runs(wfID)
	if len(runs) != len(want) {
		t.Fatalf("runs = %d", len(runs))
	}
	for i, w := range want {
		if runs[i].Status != w.status || runs[i].Outcome != w.outcome || runs[i].Scripted != w.scripted {
			t.Errorf("run %d = %+v", i, runs[i])
		}
	}
}

// TestScriptOnlyForValidCalls: a malformed call is answered by the checks
// and leaves the script alone.
func TestScriptOnlyForValidCalls(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.Script(wfID, Step{Status: 503})
	url := sim.EventURL(srv.URL, wfID)
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`nope`)); got.Status != 400 {
		t.Fatalf("invalid JSON: %d", got.Status)
	}
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)); got.Status != 503 {
		t.Fatalf("scripted: %d", got.Status)
	}
}

// TestKeyScripts mimics the ordering test: per-delivery sequences keyed by
// Idempotency-Key, interleaved, each popping only its own script.
func TestKeyScripts(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetKeyScript(wfID, "a", Step{Status: 503}, Step{Status: 503}, Step{Status: 200})
	sim.SetKeyScript(wfID, "b", Step{Status: 400})
	sim.SetKeyScript(wfID, "c", Step{Status: 503}, Step{Status: 400})
	sim.Script(wfID, Step{Status: 502}) // for calls without a key script
	url := sim.EventURL(srv.URL, wfID)
	send := func(key string) int {
		return do(t, nil, "POST", url, jsonHeaders("Idempotency-Key", key), []byte(`{}`)).Status
	}
	seq := []struct {
		key  string
		want int
	}{
		{"a", 503}, {"b", 400}, {"c", 503}, {"a", 503}, {"c", 400}, {"b", 502}, {"a", 200}, {"a", 200}, {"d", 200},
	}
	for i, s := range seq {
		if got := send(s.key); got != s.want {
			t.Errorf("call %d key %s: %d, want %d", i, s.key, got, s.want)
		}
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Config{})
		sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
		sim.SetLatency(wfID, 2*time.Second)
		sim.Script(wfID, Step{Status: 503, Delay: time.Second})

		start := time.Now()
		rec := serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{}`)
		if rec.Code != 503 || time.Since(start) != 3*time.Second {
			t.Fatalf("scripted: %d after %v, want 503 after 3s", rec.Code, time.Since(start))
		}
		start = time.Now()
		rec = serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{}`)
		if rec.Code != 200 || time.Since(start) != 2*time.Second {
			t.Fatalf("latency: %d after %v, want 200 after 2s", rec.Code, time.Since(start))
		}
		// Latency applies to 401s too: the whole workflow is slow.
		start = time.Now()
		rec = serve(sim, "POST", "/events/"+wfID, jsonHeaders("X-API-TOKEN", "bad"), `{}`)
		if rec.Code != 401 || time.Since(start) != 2*time.Second {
			t.Fatalf("401: %d after %v", rec.Code, time.Since(start))
		}
	})
}

// TestLatencyClientTimesOutAfterProcessing: with latency beyond the client's
// timeout the run is recorded Successful although the client saw an error,
// the ambiguous case a gateway must handle.
func TestLatencyClientTimesOutAfterProcessing(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetLatency(wfID, time.Hour)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("POST", sim.EventURL(srv.URL, wfID), jsonBody(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-TOKEN", wfToken)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("want a timeout, got %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	runs, err := sim.WaitRuns(ctx, wfID, 1)
	if err != nil || runs[0].Outcome != OutcomeSuccessful {
		t.Fatalf("runs = %+v, err %v", runs, err)
	}
}

func TestHang(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetHang(wfID, true)
	client := &http.Client{Timeout: 150 * time.Millisecond}
	url := sim.EventURL(srv.URL, wfID)
	post := func(c *http.Client) (int, error) {
		req, _ := http.NewRequest("POST", url, jsonBody(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-TOKEN", wfToken)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(client); err == nil {
		t.Fatalf("hung call answered %d", code)
	}
	if st := sim.Stats().Workflows[wfID]; st.Hung != 1 || st.Runs != 0 {
		t.Fatalf("stats = %+v", st)
	}

	// Lifting the hang lets held calls proceed normally.
	done := make(chan int, 1)
	go func() { code, _ := post(http.DefaultClient); done <- code }()
	waitFor(t, func() bool { return sim.Stats().Workflows[wfID].Hung == 2 })
	sim.SetHang(wfID, false)
	if code := <-done; code != 200 {
		t.Fatalf("released call: %d", code)
	}

	// Close aborts held calls promptly and waits for their handlers.
	sim.SetHang(wfID, true)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := post(http.DefaultClient); errs <- err }()
	}
	waitFor(t, func() bool { return sim.Stats().Workflows[wfID].Hung == 5 })
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range 3 {
		if err := <-errs; err == nil {
			t.Error("a hung call got an answer after Close")
		}
	}
}

// waitFor polls cond; used only to observe another goroutine reaching a
// blocking point over the network, where synctest cannot help.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHangCloseWithoutServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Config{})
		sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
		sim.SetHang(wfID, true)
		aborted := make(chan any, 1)
		go func() {
			defer func() { aborted <- recover() }()
			serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{}`)
		}()
		synctest.Wait()
		sim.Close()
		if v := <-aborted; v != http.ErrAbortHandler {
			t.Fatalf("hung handler ended with %v, want ErrAbortHandler", v)
		}
		if rec := serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{}`); rec.Code != 503 {
			t.Errorf("after Close: %d", rec.Code)
		}
	})
}

func TestForceUnauthorizedAndReset(t *testing.T) {
	sim, srv := startSim(t, Config{})
	url := sim.EventURL(srv.URL, wfID)
	sim.ForceUnauthorized(wfID, true)
	for _, h := range []map[string]string{jsonHeaders(), jsonHeaders("X-API-TOKEN", "", "Authorization", basic(wfUser, wfToken))} {
		if got := do(t, nil, "POST", url, h, []byte(`{}`)); got.Status != 401 || got.Env.Meta.Error == nil {
			t.Fatalf("forced: %d %s", got.Status, got.Raw)
		}
	}
	sim.ForceUnauthorized(wfID, false)
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)); got.Status != 200 {
		t.Fatalf("unforced: %d", got.Status)
	}

	sim.ForceUnauthorized(wfID, true)
	sim.SetLatency(wfID, time.Hour)
	sim.SetHang(wfID, true)
	sim.Script(wfID, Step{Status: 500})
	sim.SetKeyScript(wfID, "k", Step{Status: 500})
	sim.Reset(wfID)
	if n := len(sim.Runs(wfID)); n != 0 {
		t.Fatalf("runs after reset = %d", n)
	}
	if got := do(t, nil, "POST", url, jsonHeaders("Idempotency-Key", "k"), []byte(`{}`)); got.Status != 200 {
		t.Fatalf("after reset: %d", got.Status)
	}
	if st := sim.Stats().Workflows[wfID]; st.Runs != 1 || st.Unauthorized != 0 {
		t.Errorf("stats after reset = %+v", st)
	}
}

func TestUnknownWorkflowControlPanics(t *testing.T) {
	sim := New(Config{})
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, ErrUnknownWorkflow) {
			t.Fatalf("recovered %v", err)
		}
	}()
	sim.Script("nope", Step{Status: 500})
}

func TestWaitRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Config{})
		sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
		var wg sync.WaitGroup
		var got []Run
		var err error
		wg.Go(func() { got, err = sim.WaitRuns(t.Context(), wfID, 3) })
		for range 3 {
			synctest.Wait()
			serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{}`)
		}
		wg.Wait()
		if err != nil || len(got) != 3 {
			t.Fatalf("WaitRuns = %d runs, %v", len(got), err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := sim.WaitRuns(ctx, wfID, 4); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout err = %v", err)
		}
		if _, err := sim.WaitRuns(ctx, "nope", 1); !errors.Is(err, ErrUnknownWorkflow) {
			t.Errorf("unknown err = %v", err)
		}
	})
}

func TestMaxRunsAndKeepBodies(t *testing.T) {
	keep := false
	sim := New(Config{MaxRuns: 3, KeepBodies: &keep})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	for i := range 5 {
		serve(sim, "POST", "/events/"+wfID+"?n="+string(rune('0'+i)), jsonHeaders(), `{}`)
	}
	runs := sim.Runs(wfID)
	if len(runs) != 3 || runs[0].Query != "n=2" || runs[2].Query != "n=4" || runs[0].Body != nil {
		t.Fatalf("runs = %+v", runs)
	}
	if st := sim.Stats().Workflows[wfID]; st.Runs != 5 || st.Kept != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRunsEndpoint(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{Now: clock.Now})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	for i := range 3 {
		serve(sim, "POST", "/events/"+wfID, jsonHeaders(), `{"i":`+string(rune('0'+i))+`}`)
		clock.Advance(time.Second)
	}
	decode := func(target string) (int, []Run) {
		rec := serve(sim, "GET", target, nil, "")
		var body struct {
			Runs []Run `json:"runs"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Runs
	}
	code, runs := decode("/runs/" + wfID)
	if code != 200 || len(runs) != 3 || string(runs[0].Body) != `{"i":0}` || runs[0].Auth != AuthToken {
		t.Fatalf("runs = %d %+v", code, runs)
	}
	since := runs[0].Time.Format(time.RFC3339Nano)
	if code, runs := decode("/runs/" + wfID + "?since=" + since); code != 200 || len(runs) != 2 || string(runs[0].Body) != `{"i":1}` {
		t.Fatalf("since: %d %+v", code, runs)
	}
	if code, _ := decode("/runs/" + wfID + "?since=yesterday"); code != 400 {
		t.Errorf("bad since: %d", code)
	}
	if code, _ := decode("/runs/nope"); code != 404 {
		t.Errorf("unknown: %d", code)
	}
	sim.Reset(wfID)
	if rec := serve(sim, "GET", "/runs/"+wfID, nil, ""); rec.Body.String() != `{"runs":[]}` {
		t.Errorf("empty history = %s", rec.Body)
	}
}
