//go:build linux

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// TestClusterRollingRestart (issue #11 §2.3): under 30 profiles/s over 60 profiles (each
// updated every 2 s) to two destinations, the three brokers are restarted one after the
// other as an operator rolls a cluster: SIGTERM (a controlled shutdown: the broker hands its
// leaderships over first), wait until it exited, start it again, wait until the metadata lists
// it and every partition of the test's topics and of __consumer_offsets has its three replicas
// in sync again, then the next. Every request is answered 202, or 503 + Retry-After, within the
// produce timeout + margin; while each broker is down ingest goes on (a 202 for a request started
// then: two of three replicas meet min.insync.replicas=2); every accepted update ends delivered
// to both destinations, with only keys of accepted updates at the simulator, and per (profile,
// destination) in order.
func TestClusterRollingRestart(t *testing.T) {
	c := requireCluster(t)
	e := newEnv(t, simulator.Config{})
	n, dests, wfOf := clusterNode(t, e, c, "roll", "aud-roll", 2)

	const produceTimeout, margin = 2 * time.Second, 3 * time.Second
	topics := []string{e.profileTopic(), e.deliveryTopic(), "__consumer_offsets"}
	load := startOrderedLoad(func() *node { return n }, 2, "roll", "aud-roll", dests)
	defer load.end()
	load.awaitAccepted(t, 100, 30*time.Second)

	type restart struct {
		node                        int
		term, exited, back, fullISR time.Time
	}
	var rolls []restart
	began := time.Now()
	for id := 1; id <= c.nodes; id++ {
		r := restart{node: id, term: time.Now()}
		c.stop(t, id)
		r.exited = time.Now()
		c.start(t, id)
		r.back = time.Now()
		r.fullISR = c.awaitFullISR(t, 90*time.Second, topics...)
		rolls = append(rolls, r)
	}
	rolled := time.Now()
	time.Sleep(produceTimeout + 3*time.Second) // load on the rolled cluster
	load.end()

	unavailable, lastBad := checkIngest(t, load.l, produceTimeout+margin)
	results := load.l.allResults()
	var steps []string
	for _, r := range rolls {
		accepted := 0
		for _, res := range results {
			if res.status == http.StatusAccepted && res.start.After(r.exited) && res.start.Before(r.back) {
				accepted += res.accepted
			}
		}
		if accepted == 0 {
			errorf(t, "node %d down from %s to %s: no request started then was accepted", r.node, r.exited.Format("15:04:05.000"), r.back.Format("15:04:05.000"))
		}
		steps = append(steps, fmt.Sprintf("node %d: exited %s after SIGTERM, back in the metadata %s later, ISR full %s after that (%d accepted while it was down)",
			r.node, r.exited.Sub(r.term).Round(time.Millisecond), r.back.Sub(r.exited).Round(time.Millisecond), r.fullISR.Sub(r.back).Round(time.Millisecond), accepted))
	}
	t.Logf("rolling restart:\n  %s", strings.Join(steps, "\n  "))
	recovered := "no 503 at all"
	if !lastBad.IsZero() {
		recovered = fmt.Sprintf("last 503 answered %s after the roll began (roll ended at %s)", lastBad.Sub(began).Round(time.Millisecond), rolled.Sub(began).Round(time.Millisecond))
	}
	t.Logf("RECOVERY rolling restart: the roll of %d brokers took %s; %d requests, %d accepted updates, %d 503s; %s",
		c.nodes, rolled.Sub(began).Round(time.Millisecond), len(results), load.l.accepted(), unavailable, recovered)

	rc := checkClusterLedger(t, e, c, n, wfOf, dests, load.l)
	oc := checkOrder(t, e, wfOf, load.l)
	longest, _ := oc.longestWait(began, rolled, began, time.Time{})
	t.Logf("simulator: %d runs (by status %v), %d of updates answered 503 \"may have been written\"; order held over %d (profile, destination) pairs; %d repeated runs of one key; longest wait 202 → delivered of an update accepted during the roll %s; deliveries by status %v",
		rc.runs, rc.byStatus, rc.unknownOK, oc.pairs, oc.duplicates, longest.Round(time.Millisecond), rc.terminalBy)
}
