//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// Tests that need the three-node Apache Kafka cluster of `make test-kafka` (scripts/kafka.sh):
// without it they skip, saying so.

// clusterLoad is the ingest load of the cluster tests: three clients, each a batch of 5 every
// 200 ms (75 profiles/s), every profile to every destination of dests. Each batch is sent once:
// what is not accepted is not sent again (the ledger holds what was).
type clusterLoad struct {
	l    *ledger
	stop chan struct{}
	wg   sync.WaitGroup
}

func startClusterLoad(n *node, prefix, audience string, dests []string) *clusterLoad {
	cl := &clusterLoad{l: newLedger(), stop: make(chan struct{})}
	var seq atomic.Int64
	for w := range 3 {
		cl.wg.Go(func() {
			c := &http.Client{Timeout: 20 * time.Second}
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for k := 0; k < 1000; k++ { // bounded: ~200 s at most
				select {
				case <-cl.stop:
					return
				case <-tick.C:
				}
				b := make([]item, 5)
				for i := range b {
					b[i] = newItem(fmt.Sprintf("%s-%d-%d@example.com", prefix, w, seq.Add(1)), []string{audience}, dests)
				}
				cl.l.send(context.Background(), n, c, b)
			}
		})
	}
	return cl
}

func (cl *clusterLoad) end() {
	close(cl.stop)
	cl.wg.Wait()
}

// clusterNode starts one serve node (SQLite) on the cluster with dests destinations for
// audience and checks that qgate created its topics with replication factor 3.
func clusterNode(t *testing.T, e *env, c *kafkaCluster, name, audience string, dests int) (*node, []string, map[string]string) {
	t.Helper()
	return clusterNodeOn(t, e, c, "serve", "", name, audience, dests)
}

// clusterNodeOn is clusterNode for node nodeName on the store dbURL ("": SQLite).
func clusterNodeOn(t *testing.T, e *env, c *kafkaCluster, nodeName, dbURL, name, audience string, dests int) (*node, []string, map[string]string) {
	t.Helper()
	n := e.startNode(nodeName, dbURL)
	wfOf := map[string]string{}
	var ids []string
	for i := range dests {
		id, wf := n.destination(fmt.Sprintf("%s%d", name, i), simulator.Workflow{}, map[string]any{"audiences": []any{audience}})
		wfOf[id] = wf
		ids = append(ids, id)
	}
	for _, topic := range []string{e.profileTopic(), e.deliveryTopic()} {
		// The node created its topics and became ready only once every broker led them
		// (kafka.AwaitLeaders): whichever broker is asked knows them.
		if rf, err := c.replicationFactor(topic); err != nil || rf != 3 {
			fatalf(t, "topic %s: replication factor %d (%v), want 3", topic, rf, err)
		}
	}
	return n, ids, wfOf
}

// mostLeading is the node leading the most partitions of topic (ties: of also, then lowest ID).
func mostLeading(t *testing.T, c *kafkaCluster, topic, also string) (node int, led map[int]int) {
	t.Helper()
	count := map[int]int{}
	lead, err := c.leaders(topic)
	if err != nil {
		fatal(t, err)
	}
	for _, l := range lead {
		count[l] += 10
	}
	if more, err := c.leaders(also); err == nil {
		for _, l := range more {
			count[l]++
		}
	}
	for id := 1; id <= c.nodes; id++ {
		if count[id] > count[node] {
			node = id
		}
	}
	return node, lead
}

// awaitNewLeaders polls the metadata until no partition of topics is led by gone (or has no
// leader) and returns when that was first seen.
func awaitNewLeaders(t *testing.T, c *kafkaCluster, gone int, within time.Duration, topics ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, topic := range topics {
			lead, err := c.leaders(topic)
			if err != nil {
				ok = false
				break
			}
			for _, l := range lead {
				if l == gone || l < 0 {
					ok = false
				}
			}
		}
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			fatalf(t, "partitions of %v still led by node %d (or leaderless) %s after the kill", topics, gone, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterLeaderKilled (issue #11 §2.1): under 75 profiles/s, the broker leading the most
// profile-topic partitions is killed with SIGKILL. Until the cluster has elected new leaders
// (the controller fences the dead broker after broker.session.timeout.ms, 9 s by default)
// ingest may answer 503 + Retry-After; a request that starts once the new leaders are in the
// metadata must be accepted (qgate's producer re-reads the metadata on a leader error instead
// of waiting for kafka-go's ~6 s cache), and no request may wait longer than the produce timeout
// + margin. The killed broker is then started again; every accepted update ends delivered to
// both destinations, with only Idempotency-Keys of accepted updates at the simulator.
func TestClusterLeaderKilled(t *testing.T) {
	c := requireCluster(t)
	e := newEnv(t, simulator.Config{})
	n, dests, wfOf := clusterNode(t, e, c, "leader", "aud-leader", 2)

	const produceTimeout, margin = 2 * time.Second, 3 * time.Second
	// A request starting this long after the new leaders appear in the metadata must be accepted.
	const settle = 500 * time.Millisecond
	load := startClusterLoad(n, "leader", "aud-leader", dests)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.end()
		}
	}()
	// Load before the kill (the timeline of the test, not a sync): the first 202s.
	deadline := time.Now().Add(30 * time.Second)
	for load.l.accepted() < 100 {
		if time.Now().After(deadline) {
			fatalf(t, "fewer than 100 profiles accepted within 30s before the kill: %v", load.l.allResults())
		}
		time.Sleep(50 * time.Millisecond)
	}

	victim, before := mostLeading(t, c, e.profileTopic(), e.deliveryTopic())
	killed := time.Now()
	c.signal(t, victim, syscall.SIGKILL)
	elected := awaitNewLeaders(t, c, victim, 60*time.Second, e.profileTopic(), e.deliveryTopic())
	after, _ := c.leaders(e.profileTopic())
	t.Logf("killed node %d (leader of profile partitions %v) at %s; new leaders %v in the metadata %s after the kill",
		victim, before, killed.Format("15:04:05.000"), after, elected.Sub(killed).Round(time.Millisecond))
	time.Sleep(settle + produceTimeout + 5*time.Second) // load on the new leaders
	load.end()
	c.start(t, victim)
	t.Logf("node %d started again and registered %s after the kill", victim, time.Since(killed).Round(time.Millisecond))

	results := load.l.allResults()
	slices.SortFunc(results, func(a, b ingestResult) int { return a.start.Compare(b.start) })
	var lastBad time.Time
	var unavailable, acceptedAfter int
	for _, r := range results {
		switch {
		case r.err != nil:
			errorf(t, "request without a proper answer: %s", r)
		case r.status == http.StatusServiceUnavailable:
			unavailable++
			if r.retryAfter == "" {
				errorf(t, "503 without Retry-After: %s", r)
			}
			if r.start.Add(r.dur).Before(killed) {
				errorf(t, "503 answered before the kill: %s", r)
			}
			if r.start.After(elected.Add(settle)) {
				errorf(t, "503 for a request that started %s after the new leaders were in the metadata: %s",
					r.start.Sub(elected).Round(time.Millisecond), r)
			}
			lastBad = r.start.Add(r.dur)
		case r.status != http.StatusAccepted:
			errorf(t, "answer other than 202 or 503: %s", r)
		case r.start.After(elected):
			acceptedAfter += r.accepted
		}
		if r.dur > produceTimeout+margin {
			errorf(t, "request took %s (produce timeout %s + margin %s): %s", r.dur.Round(time.Millisecond), produceTimeout, margin, r)
		}
	}
	if acceptedAfter == 0 {
		errorf(t, "nothing accepted after the new leaders were elected")
	}
	recovered := "no 503 at all"
	if !lastBad.IsZero() {
		recovered = fmt.Sprintf("last 503 answered %s after the kill", lastBad.Sub(killed).Round(time.Millisecond))
	}
	t.Logf("RECOVERY ingest: %d requests, %d accepted updates, %d 503s; %s; new leaders %s after the kill",
		len(results), load.l.accepted(), unavailable, recovered, elected.Sub(killed).Round(time.Millisecond))

	rc := checkClusterLedger(t, e, c, n, wfOf, dests, load.l)
	t.Logf("simulator: %d runs (by status %v), %d of profiles answered 503 \"may have been written\"; deliveries by status %v",
		rc.runs, rc.byStatus, rc.unknownOK, rc.terminalBy)
}

// TestClusterQuorumLost (issue #11 §2.2): under load, two of the three nodes are killed with
// SIGKILL: no partition has the two in-sync replicas min.insync.replicas=2 asks for, and the
// controller quorum is gone too. No request that starts after the second kill may be answered
// 202; each gets 503 + Retry-After within the produce timeout (+ margin). One node is started
// again: ingest recovers by itself (the test prints how long after the restart), and every
// accepted update ends delivered.
func TestClusterQuorumLost(t *testing.T) {
	c := requireCluster(t)
	e := newEnv(t, simulator.Config{})
	n, dests, wfOf := clusterNode(t, e, c, "quorum", "aud-quorum", 1)

	const produceTimeout, margin = 2 * time.Second, 3 * time.Second
	const downFor = 10 * time.Second
	load := startClusterLoad(n, "quorum", "aud-quorum", dests)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.end()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for load.l.accepted() < 100 {
		if time.Now().After(deadline) {
			fatalf(t, "fewer than 100 profiles accepted within 30s before the kills: %v", load.l.allResults())
		}
		time.Sleep(50 * time.Millisecond)
	}

	first, _ := mostLeading(t, c, e.profileTopic(), e.deliveryTopic())
	second := first%c.nodes + 1
	c.signal(t, first, syscall.SIGKILL)
	c.signal(t, second, syscall.SIGKILL)
	down := time.Now()
	time.Sleep(downFor) // the outage is the scenario
	// Two of three are down until node first's JVM starts; it answers requests some time before
	// c.start returns (once it answers and lists itself), so a 202 in between is allowed.
	starting := time.Now()
	c.start(t, first)
	restarted := time.Now()
	t.Logf("killed nodes %d and %d at %s; node %d started again %s later, answering and in its own metadata %s after that",
		first, second, down.Format("15:04:05.000"), first, starting.Sub(down).Round(time.Millisecond), restarted.Sub(starting).Round(time.Millisecond))

	// Ingest must recover without anyone touching qgate: a 202 for a request started after the
	// restart, within 60 s.
	var recovered time.Duration = -1
	for wait := time.Now().Add(60 * time.Second); recovered < 0 && time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		for _, r := range load.l.allResults() {
			if r.status == http.StatusAccepted && r.start.After(restarted) {
				recovered = r.start.Add(r.dur).Sub(restarted)
				break
			}
		}
	}
	time.Sleep(3 * time.Second) // load on the recovered cluster
	load.end()

	var during503 int
	for _, r := range load.l.allResults() {
		switch {
		case r.err != nil:
			errorf(t, "request without a proper answer: %s", r)
		case r.status == http.StatusAccepted && r.start.After(down) && r.start.Before(starting):
			errorf(t, "202 with two of three brokers down (min.insync.replicas=2): %s", r)
		case r.status == http.StatusServiceUnavailable:
			if r.start.After(down) && r.start.Before(starting) {
				during503++
			}
			if r.retryAfter == "" {
				errorf(t, "503 without Retry-After: %s", r)
			}
		case r.status != http.StatusAccepted:
			errorf(t, "answer other than 202 or 503: %s", r)
		}
		if r.dur > produceTimeout+margin {
			errorf(t, "request took %s (produce timeout %s + margin %s): %s", r.dur.Round(time.Millisecond), produceTimeout, margin, r)
		}
	}
	if during503 == 0 {
		errorf(t, "no 503 while two brokers were down")
	}
	if recovered < 0 {
		fatalf(t, "no 202 within 60s after node %d came back", first)
	}
	t.Logf("RECOVERY quorum lost: %d 503s while two were down; first 202 answered %s after node %d was back (%s after the kills)",
		during503, recovered.Round(time.Millisecond), first, (restarted.Sub(down) + recovered).Round(time.Millisecond))

	c.start(t, second)
	rc := checkClusterLedger(t, e, c, n, wfOf, dests, load.l)
	t.Logf("simulator: %d runs (by status %v), %d of profiles answered 503 \"may have been written\"; deliveries by status %v",
		rc.runs, rc.byStatus, rc.unknownOK, rc.terminalBy)
}

// TestClusterBrokerPaused (issue #11 §2.3): under load, the broker leading the most profile
// partitions is frozen with SIGSTOP for 12 s, longer than broker.session.timeout.ms (9 s): its
// connections stay open and take requests but answer nothing, until the controller fences it and
// elects new leaders. Every request is answered (202 or 503 + Retry-After) within the produce
// timeout + margin; a request that starts once the new leaders are in the metadata (or the broker
// is resumed, whichever comes first) must be accepted; every accepted update ends delivered.
func TestClusterBrokerPaused(t *testing.T) {
	c := requireCluster(t)
	e := newEnv(t, simulator.Config{})
	n, dests, wfOf := clusterNode(t, e, c, "paused", "aud-paused", 2)

	const produceTimeout, margin = 2 * time.Second, 3 * time.Second
	const pauseFor, settle = 12 * time.Second, 1 * time.Second
	load := startClusterLoad(n, "paused", "aud-paused", dests)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.end()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for load.l.accepted() < 100 {
		if time.Now().After(deadline) {
			fatalf(t, "fewer than 100 profiles accepted within 30s before the pause: %v", load.l.allResults())
		}
		time.Sleep(50 * time.Millisecond)
	}
	victim, before := mostLeading(t, c, e.profileTopic(), e.deliveryTopic())
	paused := time.Now()
	c.signal(t, victim, syscall.SIGSTOP)
	elected := awaitNewLeaders(t, c, victim, pauseFor+20*time.Second, e.profileTopic(), e.deliveryTopic())
	if rest := pauseFor - time.Since(paused); rest > 0 {
		time.Sleep(rest) // the pause is the scenario
	}
	pid, err := c.pid(victim)
	if err != nil {
		fatal(t, err)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		fatal(t, err)
	}
	resumed := time.Now()
	t.Logf("paused node %d (leader of profile partitions %v) at %s for %s; new leaders in the metadata %s after the pause",
		victim, before, paused.Format("15:04:05.000"), resumed.Sub(paused).Round(time.Millisecond), elected.Sub(paused).Round(time.Millisecond))
	time.Sleep(settle + produceTimeout + 5*time.Second) // load after the pause
	load.end()

	ok := elected
	if resumed.Before(ok) {
		ok = resumed
	}
	var lastBad time.Time
	var unavailable int
	for _, r := range load.l.allResults() {
		switch {
		case r.err != nil:
			errorf(t, "request without a proper answer: %s", r)
		case r.status == http.StatusServiceUnavailable:
			unavailable++
			if r.retryAfter == "" {
				errorf(t, "503 without Retry-After: %s", r)
			}
			if r.start.Add(r.dur).Before(paused) {
				errorf(t, "503 answered before the pause: %s", r)
			}
			if r.start.After(ok.Add(settle)) {
				errorf(t, "503 for a request that started %s after the new leaders were in the metadata: %s", r.start.Sub(ok).Round(time.Millisecond), r)
			}
			lastBad = r.start.Add(r.dur)
		case r.status != http.StatusAccepted:
			errorf(t, "answer other than 202 or 503: %s", r)
		}
		if r.dur > produceTimeout+margin {
			errorf(t, "request took %s (produce timeout %s + margin %s): %s", r.dur.Round(time.Millisecond), produceTimeout, margin, r)
		}
	}
	recovered := "no 503 at all"
	if !lastBad.IsZero() {
		recovered = fmt.Sprintf("last 503 answered %s after the pause began", lastBad.Sub(paused).Round(time.Millisecond))
	}
	t.Logf("RECOVERY broker paused: %d requests, %d accepted updates, %d 503s; %s", len(load.l.allResults()), load.l.accepted(), unavailable, recovered)

	rc := checkClusterLedger(t, e, c, n, wfOf, dests, load.l)
	t.Logf("simulator: %d runs (by status %v), %d of profiles answered 503 \"may have been written\"; deliveries by status %v",
		rc.runs, rc.byStatus, rc.unknownOK, rc.terminalBy)
}
