//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// TestStoreOutageCut: PostgreSQL, qgate's store, becomes unreachable for 20 s while deliveries
// flow — a proxy between qgate and PostgreSQL closes every connection and refuses new ones —
// then comes back. Nothing accepted is lost or left pending, and delivery resumes by itself.
func TestStoreOutageCut(t *testing.T) { testStoreOutage(t, (*tcpProxy).cut) }

// TestStoreOutageBlackhole: the same, but the proxy keeps the connections open and moves no
// byte (a network partition): store calls hang until qgate's own timeouts end them.
func TestStoreOutageBlackhole(t *testing.T) { testStoreOutage(t, (*tcpProxy).blackhole) }

// testStoreOutage runs ~600 profiles to three destinations on the simulator (one slow, all
// behind qgate's rate limit so that deliveries queue and flow throughout) with PostgreSQL behind
// a proxy, and fails the store with outage 5 s into the load for 20 s. The ledger: every update
// answered "accepted" ends delivered for each destination in the store (GET /v1/updates/{id})
// and has a successful run at its workflow; no run carries a key of no accepted update; a
// repeated run is allowed only under the same Idempotency-Key, and counted. Ingest answers
// during the outage 202 or 503 with Retry-After; a request without an answer (timed out) is
// indeterminate, and its profiles are sent again, like those answered 503.
func testStoreOutage(t *testing.T, outage func(*tcpProxy)) {
	dbURL := pgSchema(t) // before any process, so the schema outlives them
	e := newEnv(t, simulator.Config{})
	u, err := url.Parse(dbURL)
	if err != nil {
		fatal(t, err)
	}
	proxy := startProxy(t, "127.0.0.1:0", u.Host)
	u.Host = proxy.addr
	n := e.startNode("serve", u.String())
	if proxy.accepts() == 0 {
		fatalf(t, "qgate is ready but never connected through the proxy: cutting it would not cut its store")
	}

	const profiles, clients, batch = 600, 3, 5
	const before, outageFor = 5 * time.Second, 20 * time.Second
	wfOf := map[string]string{}
	var dests []string
	for i := range 3 {
		id, wf := n.destination(fmt.Sprintf("pgout%d", i), simulator.Workflow{}, map[string]any{"audiences": []any{"aud-pgout"}})
		wfOf[id] = wf
		dests = append(dests, id)
	}
	e.sim.SetLatency(wfOf[dests[0]], 30*time.Millisecond)

	l := newLedger()
	loadCtx, stopLoad := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stopLoad()
	var wg sync.WaitGroup
	sendErrs := make(chan error, clients)
	for w := range clients { // each client: a batch every 250 ms, resending what was not accepted
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for b := range profiles / clients / batch {
				items := make([]item, batch)
				for i := range items {
					items[i] = newItem(fmt.Sprintf("pgout-%d-%d-%d@example.com", w, b, i), []string{"aud-pgout"}, dests)
				}
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
				}
				if err := l.sendAll(loadCtx, func(int) *node { return n }, c, items, time.Now().Add(2*time.Minute)); err != nil {
					sendErrs <- fmt.Errorf("client %d: %w", w, err)
					return
				}
			}
		})
	}

	time.Sleep(before) // the timeline of the scenario: load, then the outage
	if l.accepted() == 0 {
		fatalf(t, "nothing accepted before the outage: %v", l.allResults())
	}
	acceptedBefore := l.accepted()
	cutAt := time.Now()
	outage(proxy)
	time.Sleep(outageFor)
	restoredAt := time.Now()
	proxy.restore()
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		errorf(t, "ingest: %v", err)
	}

	var n202, n503, indeterminate, acceptedDuring int
	for _, r := range l.allResults() {
		during := r.start.Before(restoredAt) && r.start.Add(r.dur).After(cutAt)
		switch {
		case r.status == 0:
			indeterminate++
		case r.status == http.StatusAccepted:
			n202++
			if during {
				acceptedDuring += r.accepted
			}
		case r.status == http.StatusServiceUnavailable:
			n503++
			if r.retryAfter == "" {
				errorf(t, "503 without Retry-After: %s", r)
			}
		default:
			errorf(t, "ingest answered neither 202 nor 503: %s", r)
		}
	}
	t.Logf("ingest: %d accepted updates (%d before the outage, %d in requests overlapping it); %d × 202, %d × 503, %d requests without an answer",
		l.accepted(), acceptedBefore, acceptedDuring, n202, n503, indeterminate)
	if l.accepted() < profiles {
		fatalf(t, "only %d of %d profiles accepted", l.accepted(), profiles)
	}

	start := time.Now()
	recs := awaitTerminal(t, n, l, 60*time.Second)
	if !t.Failed() {
		t.Logf("every accepted update terminal %s after the load ended (%s after the store came back)",
			time.Since(start).Round(time.Millisecond), time.Since(restoredAt).Round(time.Millisecond))
	}
	rc := checkRuns(t, e, wfOf, l, recs)
	want := len(dests) * l.accepted()
	if rc.delivered != want {
		errorf(t, "delivered %d of %d deliveries (by status %v)", rc.delivered, want, rc.terminalBy)
	}
	var repeatedKeys, repeatedRuns, after int
	for _, k := range rc.perKey {
		if k > 1 {
			repeatedKeys++
			repeatedRuns += k - 1
		}
	}
	for _, wf := range wfOf {
		for _, r := range e.sim.Runs(wf) {
			if r.Time.After(restoredAt) {
				after++
			}
		}
	}
	if after == 0 {
		errorf(t, "no run reached the simulator after the store came back: delivery did not resume")
	}
	t.Logf("simulator: %d runs (by status %v), %d after the store came back; %d keys sent more than once (%d extra runs, each under the same Idempotency-Key); deliveries by status %v; %d profiles answered 503 reached the simulator anyway",
		rc.runs, rc.byStatus, after, repeatedKeys, repeatedRuns, rc.terminalBy, len(rc.refusedRun))
}
