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

// TestClusterNewTopicsTakeWritesAtOnce: a node that starts on topics it creates itself answers
// /readyz only once every broker leads them (kafka.AwaitLeaders), so the first requests, sent
// the moment it is ready, are accepted whole, in every partition. Before, a broker that had not
// applied the new topics' metadata yet could refuse or hold the first produces to its
// partitions, and the first requests answered 503 after the produce timeout (the CI run of stop
// 18: TestClusterLeaderKilled, "503 answered before the kill", accepted 4 of 5). Three rounds,
// each on new topics.
func TestClusterNewTopicsTakeWritesAtOnce(t *testing.T) {
	c := requireCluster(t)
	for round := range 3 {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) {
			e := newEnv(t, simulator.Config{})
			n := e.startNode("serve", "")
			// Every broker knows the topics and their replicas, whichever one is asked.
			for _, topic := range []string{e.profileTopic(), e.deliveryTopic()} {
				if rf, err := c.replicationFactor(topic); err != nil || rf != 3 {
					errorf(t, "topic %s right after the node was ready: replication factor %d (%v), want 3", topic, rf, err)
				}
			}
			// 4 × 25 profiles at once: with 100 keys every one of the 6 partitions gets some.
			l := newLedger()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for r := range 4 {
				items := make([]item, 25)
				for i := range items {
					items[i] = newItem(fmt.Sprintf("fresh-%d-%d-%d-%s@example.com", round, r, i, randomHex(2)), []string{"aud-fresh"}, nil)
				}
				wg.Go(func() { l.send(ctx, n, e.http, items) })
			}
			wg.Wait()
			for _, r := range l.allResults() {
				if r.err != nil || r.status != http.StatusAccepted || r.accepted != r.sent {
					errorf(t, "a first request on new topics was not accepted whole: %s", r)
				}
			}
			if got := l.accepted(); got != 100 {
				errorf(t, "%d of the first 100 profiles accepted, want all", got)
			}
			// A graceful stop leaves the consumer groups at once, for the next round's node.
			if err := n.p.signal(syscall.SIGTERM); err != nil {
				fatal(t, err)
			}
			if code, ok := n.p.waitExit(30 * time.Second); !ok || code != 0 {
				fatalf(t, "SIGTERM: exit code %d (exited: %v)", code, ok)
			}
		})
	}
}
