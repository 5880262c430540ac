package simulator

import (
	"encoding/json"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	sim, srv := startSim(t, Config{})
	c := srv.URL + "/_control"
	ctl := func(method, path, body string) response {
		t.Helper()
		return do(t, nil, method, c+path, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}

	// Create and list workflows.
	if got := ctl("PUT", "/workflows/WF_new", `{"username":"u","token":"t","ratePerMinute":60}`); got.Status != 200 {
		t.Fatalf("put: %d %s", got.Status, got.Raw)
	}
	if got := ctl("PUT", "/workflows/WF_bad", `{"username":"u"}`); got.Status != 400 {
		t.Errorf("put without token: %d", got.Status)
	}
	if got := ctl("PUT", "/workflows/WF_bad", `{"token":"t","bogus":1}`); got.Status != 400 {
		t.Errorf("put with unknown field: %d", got.Status)
	}
	got := ctl("GET", "/workflows", "")
	var list struct {
		Workflows []WorkflowView `json:"workflows"`
	}
	if err := json.Unmarshal(got.Raw, &list); err != nil || len(list.Workflows) != 2 ||
		list.Workflows[0].ID != "WF_new" || list.Workflows[0].RatePerMinute != 60 || list.Workflows[0].Token != "t" {
		t.Fatalf("list = %s (%v)", got.Raw, err)
	}
	newURL := sim.EventURL(srv.URL, "WF_new")
	if got := do(t, nil, "POST", newURL, map[string]string{"Content-Type": "application/json", "Authorization": basic("u", "t")}, []byte(`{}`)); got.Status != 200 {
		t.Fatalf("event on new workflow: %d", got.Status)
	}

	// Scripts over HTTP.
	if got := ctl("PUT", "/workflows/"+wfID+"/script", `{"steps":[{"status":503,"retryAfter":"3"},{"status":200}]}`); got.Status != 200 {
		t.Fatalf("script: %d %s", got.Status, got.Raw)
	}
	if got := ctl("PUT", "/workflows/"+wfID+"/keyscript", `{"idempotencyKey":"k1","steps":[{"status":400}]}`); got.Status != 200 {
		t.Fatalf("keyscript: %d %s", got.Status, got.Raw)
	}
	url := sim.EventURL(srv.URL, wfID)
	for i, want := range []int{400, 503, 200, 200} {
		key := ""
		if i == 0 {
			key = "k1"
		}
		got := do(t, nil, "POST", url, jsonHeaders("Idempotency-Key", key), []byte(`{}`))
		if got.Status != want {
			t.Errorf("call %d: %d, want %d", i, got.Status, want)
		}
		if want == 503 && got.Header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After = %q", got.Header.Get("Retry-After"))
		}
	}

	// Faults over HTTP.
	got = ctl("PUT", "/workflows/"+wfID+"/faults", `{"unauthorized":true,"latency":"5ms","hang":false}`)
	var view WorkflowView
	if err := json.Unmarshal(got.Raw, &view); err != nil || got.Status != 200 || !view.Unauthorized || view.Latency != "5ms" {
		t.Fatalf("faults: %d %s", got.Status, got.Raw)
	}
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)); got.Status != 401 {
		t.Errorf("forced 401 over HTTP: %d", got.Status)
	}
	if got := ctl("PUT", "/workflows/"+wfID+"/faults", `{"latency":"soon"}`); got.Status != 400 {
		t.Errorf("bad latency: %d", got.Status)
	}
	if got := ctl("PUT", "/workflows/"+wfID+"/script", `{"steps":[{"status":503,"delay":"x"}]}`); got.Status != 400 {
		t.Errorf("bad delay: %d", got.Status)
	}
	if got := ctl("PUT", "/workflows/"+wfID+"/script", `{"steps":[{"status":42}]}`); got.Status != 400 {
		t.Errorf("bad status: %d", got.Status)
	}

	// Stats, then reset.
	got = ctl("GET", "/stats", "")
	var st Stats
	if err := json.Unmarshal(got.Raw, &st); err != nil || st.RejectedBeforeAuth != 1 || st.Workflows[wfID].Runs != 4 {
		t.Fatalf("stats = %s", got.Raw)
	}
	if got := ctl("POST", "/workflows/"+wfID+"/reset", ""); got.Status != 200 {
		t.Fatalf("reset: %d", got.Status)
	}
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)); got.Status != 200 {
		t.Errorf("after reset: %d", got.Status)
	}
	if got := ctl("POST", "/reset", ""); got.Status != 200 || len(sim.Runs(wfID)) != 0 || sim.Stats().RejectedBeforeAuth != 0 {
		t.Errorf("reset all: %d", got.Status)
	}

	// Hang over HTTP, then lift it.
	ctl("PUT", "/workflows/"+wfID+"/faults", `{"hang":true}`)
	done := make(chan int, 1)
	go func() { done <- do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)).Status }()
	waitFor(t, func() bool { return sim.Stats().Workflows[wfID].Hung == 1 })
	ctl("PUT", "/workflows/"+wfID+"/faults", `{"hang":false}`)
	select {
	case code := <-done:
		if code != 200 {
			t.Errorf("released: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hang not lifted")
	}

	// Unknown workflows and delete.
	for _, p := range []string{"/workflows/nope/script", "/workflows/nope/keyscript", "/workflows/nope/faults"} {
		body := `{"steps":[]}`
		if p == "/workflows/nope/keyscript" {
			body = `{"idempotencyKey":"k","steps":[]}`
		} else if p == "/workflows/nope/faults" {
			body = `{}`
		}
		if got := ctl("PUT", p, body); got.Status != 404 {
			t.Errorf("%s: %d", p, got.Status)
		}
	}
	if got := ctl("POST", "/workflows/nope/reset", ""); got.Status != 404 {
		t.Errorf("reset unknown: %d", got.Status)
	}
	if got := ctl("DELETE", "/workflows/WF_new", ""); got.Status != 204 {
		t.Errorf("delete: %d", got.Status)
	}
	if got := ctl("DELETE", "/workflows/WF_new", ""); got.Status != 404 {
		t.Errorf("delete again: %d", got.Status)
	}
	if got := do(t, nil, "GET", srv.URL+"/nowhere", nil, nil); got.Status != 404 || got.Env.Meta.Error == nil {
		t.Errorf("unknown path: %d %s", got.Status, got.Raw)
	}
}
