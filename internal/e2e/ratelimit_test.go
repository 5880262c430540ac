//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// TestTwoNodesShareOneRateLimit: two serve processes on one PostgreSQL schema and one broker
// deliver to one destination limited to 600 calls/min, which the simulator's workflow enforces
// too. ~400 profiles spread over both nodes go out with no 429, at 10/s within 2 % (measured
// from the 20th run to the last), each exactly once. A pause through node 1 stops node 2 within
// 2 s of the pause response; resume through node 2 sends what waited.
func TestTwoNodesShareOneRateLimit(t *testing.T) {
	dbURL := pgSchema(t)
	e := newEnv(t, simulator.Config{})
	n1 := e.startNode("node1", dbURL)
	n2 := e.startNode("node2", dbURL)
	destID, wf := n1.destination("shared", simulator.Workflow{RatePerMinute: 600}, map[string]any{"rateLimitPerMinute": 600})
	wfOf := map[string]string{destID: wf}

	const total, batch = 400, 50
	l := newLedger()
	c := &http.Client{Timeout: 10 * time.Second}
	nodes := []*node{n1, n2}
	for k := range total / batch {
		b := make([]item, batch)
		for i := range b {
			b[i] = newItem(fmt.Sprintf("shared-%d-%d@example.com", k, i), []string{"aud-shared"}, []string{destID})
		}
		if err := l.sendAll(context.Background(), func(a int) *node { return nodes[(k+a)%2] }, c, b, time.Now().Add(20*time.Second)); err != nil {
			fatal(t, err)
		}
	}
	ingested := time.Now()

	// 400 calls at 10/s: ~40 s.
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	_, err := e.sim.WaitRuns(ctx, wf, total)
	cancel()
	if err != nil {
		fatalf(t, "the simulator got %d of %d calls within 75s: %v", len(e.sim.Runs(wf)), total, err)
	}
	recs := awaitTerminal(t, n2, l, 30*time.Second)
	rc := checkRuns(t, e, wfOf, l, recs)
	if st := e.sim.Stats().Workflows[wf]; st.RateLimited != 0 || rc.byStatus[http.StatusTooManyRequests] != 0 {
		errorf(t, "the simulator refused %d calls with 429 (runs by status %v)", st.RateLimited, rc.byStatus)
	}
	var dups []string
	for key, cnt := range rc.perKey {
		if cnt != 1 {
			dups = append(dups, key)
		}
	}
	if len(dups) > 0 {
		errorf(t, "%d of %d Idempotency-Keys sent more than once, want exactly once each", len(dups), len(rc.perKey))
		t0 := e.sim.Runs(wf)[0].Time
		for _, key := range dups[:min(6, len(dups))] {
			var at []string
			for _, r := range e.sim.Runs(wf) {
				if r.IdempotencyKey == key {
					at = append(at, fmt.Sprintf("+%s", r.Time.Sub(t0).Round(time.Millisecond)))
				}
			}
			t.Logf("  %s sent at %v (from the first run)", key, at)
		}
	}
	if rc.delivered != total {
		errorf(t, "delivered %d of %d (by status %v)", rc.delivered, total, rc.terminalBy)
	}

	runs := e.sim.Runs(wf)
	slices.SortFunc(runs, func(a, b simulator.Run) int { return a.Time.Compare(b.Time) })
	first, last := runs[19].Time, runs[len(runs)-1].Time
	rate := float64(len(runs)-20) / last.Sub(first).Seconds()
	t.Logf("%d runs; first %s after ingest, rate from the 20th to the last: %.3f/s over %s",
		len(runs), runs[0].Time.Sub(ingested).Round(time.Millisecond), rate, last.Sub(first).Round(time.Millisecond))
	if math.Abs(rate-10)/10 > 0.02 {
		errorf(t, "delivered rate %.3f/s, want 10/s within 2%% (600/min shared by both nodes)", rate)
		for _, w := range []int{0, 10, 20} { // burstiness: calls per second in a few windows
			from := runs[0].Time.Add(time.Duration(w) * time.Second)
			cnt := 0
			for _, r := range runs {
				if !r.Time.Before(from) && r.Time.Before(from.Add(time.Second)) {
					cnt++
				}
			}
			t.Logf("  calls in second %d: %d", w, cnt)
		}
	}

	// Pause through node 1; node 2 must stop sending within 2 s of the answer.
	status, body := n1.must("POST", "/v1/destinations/"+destID+"/pause", e.operatorKey, nil)
	if status != http.StatusOK {
		fatalf(t, "pause: %d %s", status, body)
	}
	pausedAt := time.Now()
	before := len(e.sim.Runs(wf))
	l2 := newLedger()
	b := make([]item, 20)
	for i := range b {
		b[i] = newItem(fmt.Sprintf("paused-%d@example.com", i), []string{"aud-shared"}, []string{destID})
	}
	if err := l2.sendAll(context.Background(), func(int) *node { return n2 }, c, b, time.Now().Add(10*time.Second)); err != nil {
		fatal(t, err)
	}
	time.Sleep(time.Until(pausedAt.Add(3 * time.Second))) // the observation window itself
	var within, late []string
	for _, r := range e.sim.Runs(wf)[before:] {
		d := r.Time.Sub(pausedAt)
		if d > 2*time.Second {
			late = append(late, fmt.Sprintf("%s at pause%+v", runEmail(r), d.Round(time.Millisecond)))
		} else {
			within = append(within, runEmail(r))
		}
	}
	t.Logf("after the pause: %d runs within 2 s, %d later", len(within), len(late))
	if len(late) > 0 {
		errorf(t, "%d calls more than 2 s after the pause answer, e.g. %v", len(late), late[:min(5, len(late))])
	}

	// Resume through node 2: what waited goes out.
	if status, body := n2.must("POST", "/v1/destinations/"+destID+"/resume", e.operatorKey, nil); status != http.StatusOK {
		fatalf(t, "resume: %d %s", status, body)
	}
	resumedAt := time.Now()
	awaitTerminal(t, n1, l2, 45*time.Second)
	t.Logf("the %d held deliveries finished %s after the resume answer", l2.accepted(), time.Since(resumedAt).Round(time.Millisecond))
}
