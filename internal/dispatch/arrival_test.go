package dispatch

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// A partition moves from node B to node A, which holds the destination's claim. B, not the
// holder, parked a profile's job and committed it; A then reads the profile's next job, its
// first record of the partition since (an offset gap) or ever (a partition new to A). A knows
// of B's park only from the store, and it re-reads the store only every ClaimTTL/3 (20 s here):
// it must not send the later job first.
func TestArrivingPartitionWaitsBehindAnotherNodesPark(t *testing.T) {
	for _, tc := range []struct {
		name      string
		partition int // of B's job and A's next one; A's first job is on partition 0
	}{{"offset gap", 0}, {"partition new to the node", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st, g, a, b := twoNodes(t, Options{DrainInterval: drainTick, ClaimTTL: time.Minute, IdleRelease: time.Hour})
				defer a.close()
				defer b.close()

				first := a.offer("p") // partition 0, offset 1: A serves the destination
				advance(time.Second)
				if h := st.holder(rigDest); h != "node-a" {
					t.Fatalf("claim held by %q, want node-a", h)
				}
				b.partition, b.seq = tc.partition, 1
				parked := b.offer("p") // offset 2: B parks it and commits
				advance(time.Second)
				if _, ok := st.parkedRow(parked); !ok {
					t.Fatalf("%s is not parked by B", parked)
				}
				if n := a.snd.count(); n != 1 {
					t.Fatalf("A sent %d before the partition arrived, want 1", n)
				}
				a.partition, a.seq = tc.partition, 2
				next := a.offer("p")  // offset 3: the partition arrives at A
				after := a.offer("p") // offset 4, in sequence: the partition is A's now
				advance(5 * time.Second)

				if want, order := []string{first, parked, next, after}, sentInOrder(a); fmt.Sprint(order) != fmt.Sprint(want) {
					t.Errorf("A sent %v, want %v (B's parked job before the later ones of the profile)", order, want)
				}
				for _, id := range []string{first, parked, next, after} {
					if s := st.statusOf(id); s != delivery.Delivered {
						t.Errorf("%s: status %q, want delivered", id, s)
					}
				}
				if n := b.snd.count(); n != 0 {
					t.Errorf("B sent %d without the claim", n)
				}
				g.check(t)
			})
		})
	}
}
