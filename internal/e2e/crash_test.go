//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// TestKill9LosesNothingAccepted: ~2,000 profiles go in, in batches of 50, while the serve
// process is SIGKILLed at ~40% and restarted on the same data dir and broker. Every profile the
// receiver accepted ends delivered, dead-lettered or excluded for each of its destinations,
// and the simulator sees only Idempotency-Keys of accepted (update, destination) pairs.
func TestKill9LosesNothingAccepted(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	n := e.startNode("serve", "")

	const dests = 3
	var destIDs [dests]string
	wfOf := map[string]string{}
	for i := range dests {
		id, wf := n.destination(fmt.Sprintf("crash%d", i), simulator.Workflow{}, nil)
		destIDs[i] = id
		wfOf[id] = wf
		if i == dests-1 {
			e.sim.Script(wf, simulator.Step{Status: 503}, simulator.Step{Status: 503}, simulator.Step{Status: 200})
		}
	}

	// Profile i belongs to audience i%3 and, for even i, also to (i+1)%3: each destination
	// receives about 1,000 profiles (20 s at 3,000 calls/min) and half the updates fan out to two.
	const total, batch = 2000, 50
	items := make([]item, total)
	for i := range items {
		a := []int{i % dests}
		if i%2 == 0 {
			a = append(a, (i+1)%dests)
		}
		var auds, ds []string
		for _, k := range a {
			auds = append(auds, fmt.Sprintf("aud-crash%d", k))
			ds = append(ds, destIDs[k])
		}
		items[i] = newItem(fmt.Sprintf("crash-%d@example.com", i), auds, ds)
	}

	l := newLedger()
	killAt := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	deadline := time.Now().Add(75 * time.Second)
	batches := make(chan []item)
	errs := make(chan error, total/batch)
	var wg sync.WaitGroup
	for range 2 { // two concurrent clients, so the kill is likely to hit a request in flight
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for b := range batches {
				if err := l.sendAll(ctx, func(int) *node { return n }, c, b, deadline); err != nil {
					errs <- err
				}
				if l.accepted() >= total*4/10 {
					once.Do(func() { close(killAt) })
				}
			}
		})
	}
	go func() {
		for i := 0; i < total; i += batch {
			batches <- items[i : i+batch]
		}
		close(batches)
	}()

	select {
	case <-killAt:
	case <-time.After(60 * time.Second):
		fatalf(t, "40%% of the profiles not accepted within 60s (accepted %d)", l.accepted())
	}
	killed := time.Now()
	if err := n.p.signal(syscall.SIGKILL); err != nil {
		fatal(t, err)
	}
	if _, ok := n.p.waitExit(10 * time.Second); !ok {
		fatal(t, "serve survived SIGKILL for 10s")
	}
	atKill := l.accepted()
	t.Logf("SIGKILL at %s with %d of %d accepted", killed.Format("15:04:05.000"), atKill, total)
	n.restart()
	t.Logf("restarted and ready after %s", time.Since(killed).Round(time.Millisecond))

	wg.Wait()
	close(errs)
	for err := range errs {
		errorln(t, "ingest:", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if atKill >= total {
		errorf(t, "the kill came after every profile was accepted: the test proved nothing")
	}
	var transportErrs, unavailable int
	for _, r := range l.allResults() {
		switch {
		case r.err != nil:
			transportErrs++
		case r.status == http.StatusServiceUnavailable:
			unavailable++
		}
	}
	t.Logf("ingest: %d accepted updates, %d requests without an answer, %d 503s; %d profiles sent in requests without an answer",
		l.accepted(), transportErrs, unavailable, len(l.ambiguous))

	start := time.Now()
	recs := awaitTerminal(t, n, l, 60*time.Second)
	t.Logf("all accepted updates terminal %s after ingest ended", time.Since(start).Round(time.Millisecond))
	rc := checkRuns(t, e, wfOf, l, recs)
	if len(rc.refusedRun) > 0 {
		errorf(t, "%d runs of profiles qgate answered 503 for (not accepted), e.g. %v", len(rc.refusedRun), rc.refusedRun[:min(5, len(rc.refusedRun))])
	}
	dups := 0
	for _, c := range rc.perKey {
		if c > 1 {
			dups++
		}
	}
	t.Logf("simulator: %d runs (by status %v), %d keys with more than one run, %d runs of unanswered requests; deliveries by status %v",
		rc.runs, rc.byStatus, dups, rc.unknownOK, rc.terminalBy)
	if rc.byStatus[503] < 2 {
		errorf(t, "the scripted 503s were not used (%v)", rc.byStatus)
	}
}
