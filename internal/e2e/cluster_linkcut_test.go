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

// TestClusterClientLinkCut (issue #11 §2.5): qgate reaches one broker, node K, only through a
// TCP proxy in the test, and the other two directly. make test-kafka starts the cluster with
// `scripts/kafka.sh --proxy-node 3`: every node has a second client listener, CLIENT, and node
// K advertises its CLIENT listener at the proxy's address; qgate bootstraps from the CLIENT
// addresses, so the metadata sends it to the proxy for K, while the brokers replicate over
// their own listener, which the proxy does not touch. K stays a healthy member of the cluster
// (it keeps its leaderships and its place in every ISR): only qgate's link to it fails.
//
// Under 30 profiles/s over 60 profiles to two destinations, the link is cut for 15 s (every
// connection closed, new ones refused), restored, and later stalled for 15 s (connections
// stay open and carry nothing, new ones are accepted and never forwarded; what they held is
// dropped at the end). Every request is answered 202, or 503 + Retry-After, within the produce
// timeout + margin; each fault costs 503s (the profiles of K's partitions cannot be written),
// and none is answered to a request started a produce timeout after the restore; every
// accepted update ends delivered to both destinations, keys only of accepted updates, per
// (profile, destination) in order, and none accepted during a fault waits longer than the fault
// + the session timeout + a margin. The test prints, per fault, when the last 503 came and
// how long after the restore everything accepted before it was delivered.
func TestClusterClientLinkCut(t *testing.T) {
	c := requireCluster(t)
	if c.proxyNode == 0 {
		fatalf(t, "the cluster in %s has no CLIENT listeners to put a proxy in front of: start it with `scripts/kafka.sh start --proxy-node 3` (make test-kafka does)", c.dir)
	}
	e := newEnv(t, simulator.Config{})
	proxy := startProxy(t, c.proxyAddr, c.proxyTarget)
	e.brokerAddr = strings.Join(c.clientBrokers, ",")
	n, dests, wfOf := clusterNode(t, e, c, "link", "aud-link", 2)
	// qgate dials node K when it first needs it — a fetch for a partition K leads, once the
	// consumer groups have joined, or a produce — which may come after /readyz: wait for it.
	if !proxy.awaitFirst(30 * time.Second) {
		fatalf(t, "qgate made no connection through the proxy to node %d (%s → %s) within 30 s of its start: it reaches that broker some other way", c.proxyNode, c.proxyAddr, c.proxyTarget)
	}
	led := 0
	for _, topic := range []string{e.profileTopic(), e.deliveryTopic()} {
		lead, err := c.leaders(topic)
		if err != nil {
			fatal(t, err)
		}
		for _, l := range lead {
			if l == c.proxyNode {
				led++
			}
		}
	}
	if led == 0 {
		fatalf(t, "node %d leads no partition of the test's topics: cutting the link to it would test nothing", c.proxyNode)
	}

	const produceTimeout, margin = 2 * time.Second, 3 * time.Second
	const faultFor, after = 15 * time.Second, 15 * time.Second
	// An update accepted during a fault may wait for the fault, then for the consumer groups:
	// a member whose heartbeats to a coordinator on node K failed rejoins, and the coordinator
	// waits up to the session timeout (10 s) for the old member; the margin covers a rejoin's
	// backoff (0.5 s), a fetch wait (1.5 s), the heartbeat interval (1 s) and the lane's start.
	const session, deliveryMargin = 10 * time.Second, 10 * time.Second
	const waitBound = faultFor + session + deliveryMargin
	load := startOrderedLoad(func() *node { return n }, 2, "link", "aud-link", dests)
	defer load.end()
	load.awaitAccepted(t, 100, 30*time.Second)

	type fault struct {
		name               string
		start, healed, end time.Time // end: the next fault's start, or the end of the load
	}
	faults := []*fault{{name: "cut"}, {name: "stall"}}
	for _, f := range faults {
		if proxy.open() == 0 {
			fatalf(t, "%s: qgate holds no connection through the proxy to node %d: the fault would meet nothing", f.name, c.proxyNode)
		}
		f.start = time.Now()
		if f.name == "cut" {
			proxy.cut()
		} else {
			proxy.blackhole()
		}
		time.Sleep(faultFor) // the fault is the scenario
		proxy.restore()
		f.healed = time.Now()
		time.Sleep(after) // load on the healed link
		f.end = time.Now()
	}
	load.end()

	unavailable, _ := checkIngest(t, load.l, produceTimeout+margin)
	results := load.l.allResults()
	t.Logf("proxy to node %d (leader of %d partitions of the test's topics): %d connections accepted", c.proxyNode, led, proxy.accepts())

	rc := checkClusterLedger(t, e, c, n, wfOf, dests, load.l)
	oc := checkOrder(t, e, wfOf, load.l)

	var lines []string
	for _, f := range faults {
		var bad, ok int
		var lastBad time.Time
		for _, r := range results {
			// A request is the fault's if it was answered during the fault or before the next
			// (one in flight when the next began is the next one's).
			if end := r.start.Add(r.dur); end.Before(f.start) || !end.Before(f.end) {
				continue
			}
			switch r.status {
			case http.StatusServiceUnavailable:
				bad++
				// A request started a produce timeout after the restore never met the fault:
				// the connections the fault broke were re-dialled by the requests before it.
				if r.start.After(f.healed.Add(produceTimeout)) {
					errorf(t, "%s: 503 for a request that started %s after the restore: %s", f.name, r.start.Sub(f.healed).Round(time.Millisecond), r)
				}
				if end := r.start.Add(r.dur); end.After(lastBad) {
					lastBad = end
				}
			case http.StatusAccepted:
				if r.start.Before(f.healed) {
					ok++
				}
			}
		}
		if bad == 0 {
			errorf(t, "%s: no 503 while qgate could not reach node %d: the fault did not take", f.name, c.proxyNode)
		}
		last := "no 503"
		if !lastBad.IsZero() {
			last = fmt.Sprintf("last 503 answered %s after the restore", lastBad.Sub(f.healed).Round(time.Millisecond))
		}
		// Delivery: how long after the restore the updates accepted before it were delivered,
		// and the longest any update accepted during the fault waited.
		longest, _ := oc.longestWait(f.start, f.healed, time.Time{}, time.Time{})
		if longest > waitBound {
			errorf(t, "%s: an update accepted during it waited %s for its first successful run, more than the fault %s + session timeout %s + margin %s",
				f.name, longest.Round(time.Millisecond), faultFor, session, deliveryMargin)
		}
		var caughtUp time.Time
		for _, w := range oc.waits {
			if done := w.accepted.Add(w.wait); w.accepted.Before(f.healed) && done.After(caughtUp) {
				caughtUp = done
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s: %d 503s, %d requests accepted during it, %s; everything accepted before the restore delivered %s after it; longest wait 202 → delivered %s",
			f.name, faultFor, bad, ok, last, caughtUp.Sub(f.healed).Round(time.Millisecond), longest.Round(time.Millisecond)))
	}
	t.Logf("RECOVERY client link: %s", strings.Join(lines, "; "))
	t.Logf("ingest: %d requests, %d accepted updates, %d 503s; simulator: %d runs (by status %v), %d of updates answered \"may have been written\"; order held over %d (profile, destination) pairs; %d repeated runs of one key; deliveries by status %v",
		len(results), load.l.accepted(), unavailable, rc.runs, rc.byStatus, rc.unknownOK, oc.pairs, oc.duplicates, rc.terminalBy)
}
