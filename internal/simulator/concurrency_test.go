package simulator

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentCallsAndControls hammers events, runs, API v3 and controls
// at once; -race checks the locking.
func TestConcurrentCallsAndControls(t *testing.T) {
	sim, srv := startSim(t, Config{RatePerMinute: 150, MaxRuns: 100})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	url := sim.EventURL(srv.URL, wfID)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				key := strconv.Itoa(g) + "-" + strconv.Itoa(i)
				got := do(t, client, "POST", url, jsonHeaders("Idempotency-Key", key), []byte(`{"k":"`+key+`"}`))
				if got.Status != 200 && got.Status != 429 && got.Status != 503 {
					t.Errorf("status %d", got.Status)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			sim.Script(wfID, Step{Status: 503})
			sim.SetKeyScript(wfID, "0-"+strconv.Itoa(i), Step{Status: 503})
			sim.SetLatency(wfID, 0)
			sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
			_ = sim.Runs(wfID)
			_ = sim.Stats()
			do(t, client, "GET", srv.URL+"/runs/"+wfID, nil, nil)
			do(t, client, "GET", srv.URL+"/API/v3/surveys", map[string]string{"X-API-TOKEN": wfToken}, nil)
			do(t, client, "GET", srv.URL+"/_control/workflows", nil, nil)
		}
	})
	wg.Wait()
	st := sim.Stats().Workflows[wfID]
	if st.Runs != 320 || st.Kept != 100 {
		t.Errorf("stats = %+v", st)
	}
	if ok := st.Runs - st.RateLimited; ok < 150 {
		t.Errorf("admitted %d, want at least the limit", ok)
	}
}
