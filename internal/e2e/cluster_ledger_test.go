package e2e

import (
	"testing"
	"time"
)

// checkClusterLedger waits (120 s) until every update l accepted is terminal on n, then checks
// the ledger: each delivered to every one of dests, and no run at the simulator of a profile
// answered 503 "not written, safe to send again" (one answered "may still have been written"
// may reach Qualtrics: checkRuns counts it ambiguous). It logs how long the wait took, and the
// state of qgate's consumer groups when the test has failed.
func checkClusterLedger(t *testing.T, e *env, c *kafkaCluster, n *node, wfOf map[string]string, dests []string, l *ledger) runCheck {
	t.Helper()
	start := time.Now()
	recs := awaitTerminal(t, n, l, 120*time.Second)
	if t.Failed() {
		c.logGroups(t, map[string]string{"qgate-router": e.profileTopic(), "qgate-dispatcher": e.deliveryTopic()})
	}
	t.Logf("RECOVERY delivery: all accepted updates terminal %s after the load ended", time.Since(start).Round(time.Millisecond))
	rc := checkRuns(t, e, wfOf, l, recs)
	if rc.delivered != len(dests)*l.accepted() {
		errorf(t, "delivered %d of %d deliveries (by status %v)", rc.delivered, len(dests)*l.accepted(), rc.terminalBy)
	}
	if len(rc.refusedRun) > 0 {
		errorf(t, "%d runs of profiles answered 503 \"not written\" reached the simulator, e.g. %v",
			len(rc.refusedRun), rc.refusedRun[:min(3, len(rc.refusedRun))])
	}
	return rc
}
