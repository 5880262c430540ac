package dispatch

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Node A serves the destination; then its partition moves to node B, which from then on reads
// every job of the destination (one every 200 ms). B asks for the claim, A — with no job of its
// own any more — hands it over, and B sends its jobs as they come instead of parking each one
// for A to drain. One node sends at a time, each delivery once, a profile's in order; once B
// holds the claim nothing it reads is parked.
func TestClaimFollowsTheNodeThatConsumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour}
		st, g, a, b := twoNodes(t, opts)
		defer a.close()
		defer b.close()

		offered := map[string]time.Time{}
		var ids []string
		for range 3 {
			id := a.offer("p")
			ids, offered[id] = append(ids, id), time.Now()
			advance(200 * time.Millisecond)
		}
		if h := st.holder(rigDest); h != "node-a" {
			t.Fatalf("claim held by %q, want node-a", h)
		}
		b.seq = a.seq // the partition moves on to B
		start := time.Now()
		for range 100 { // 20 s
			id := b.offer("p")
			ids, offered[id] = append(ids, id), time.Now()
			advance(200 * time.Millisecond)
		}
		advance(5 * time.Second)

		if h := st.holder(rigDest); h != "node-b" {
			t.Fatalf("after 20 s of B consuming every job the claim is held by %q, want node-b", h)
		}
		if order := sentInOrder(a, b); fmt.Sprint(order) != fmt.Sprint(ids) {
			t.Errorf("sent in the order %v, want %v", order, ids)
		}
		for _, id := range ids {
			if s := st.statusOf(id); s != delivery.Delivered {
				t.Errorf("%s: status %q, want delivered", id, s)
			}
		}
		// B took over within a few claim renewals, and sent every later job as it came.
		var took time.Time
		for _, s := range b.snd.all() {
			if took.IsZero() {
				took = s.at
			}
		}
		if took.IsZero() || took.Sub(start) > 3*opts.ClaimTTL {
			t.Fatalf("B's first send came %v after its first job, want within 3 claim lifetimes", took.Sub(start))
		}
		for _, s := range b.snd.all() {
			if s.at.After(took.Add(opts.ClaimTTL)) && s.at.Sub(offered[s.id]) > drainTick {
				t.Errorf("%s went out %v after B read it, once B held the claim (parked, not sent at once)", s.id, s.at.Sub(offered[s.id]))
			}
		}
		t.Logf("B sent its first job %v after the partition moved; A sent %d, B %d", took.Sub(start), a.snd.count(), b.snd.count())
		g.check(t)
	})
}

// The node that asked for the claim never takes it (it asks once, then every claim of its is
// refused, as if it had stopped): the holder hands the claim over, stays away for ClaimTTL, then
// takes it back and drains what the asker parked meanwhile. Nothing waits for a node that is gone.
func TestHandedOverClaimReturnsWhenTheAskerNeverTakesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour}
		st, g, a, b := twoNodes(t, opts)
		defer a.close()
		defer b.close()

		ids := []string{a.offer("p")}
		advance(200 * time.Millisecond)
		asked := 0
		st.setFault(func(c storeCall) storeFault {
			if c.op == opClaim && c.node == "node-b" {
				if asked++; asked > 1 {
					return storeFault{refuse: true}
				}
			}
			return storeFault{}
		})
		b.seq = a.seq
		ids = append(ids, b.offer("p")) // B asks for the claim
		handed := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !handed; {
			advance(100 * time.Millisecond)
			handed = st.holder(rigDest) == ""
		}
		if !handed {
			t.Fatal("A never handed the claim over to B, which asked for it")
		}
		released := time.Now()
		for range 4 { // parked by B, which never takes the claim
			ids = append(ids, b.offer("p"))
		}
		advance(3 * opts.ClaimTTL)

		if h := st.holder(rigDest); h != "node-a" {
			t.Errorf("the claim is held by %q after the asker never took it, want node-a back", h)
		}
		var order []string
		for _, s := range a.snd.all() {
			order = append(order, s.id)
			if !s.at.Before(released) && s.at.Before(released.Add(opts.ClaimTTL)) {
				t.Errorf("%s went out %v after the handover, before the asker's ClaimTTL passed", s.id, s.at.Sub(released))
			}
		}
		if fmt.Sprint(order) != fmt.Sprint(ids) {
			t.Errorf("A sent %v, want %v", order, ids)
		}
		if n := b.snd.count(); n != 0 {
			t.Errorf("B sent %d without ever holding the claim", n)
		}
		g.check(t)
	})
}

// A lane that only serves the park (started for parked deliveries, with no job offered to it)
// does not ask for the claim: the holder, quiet as it is, keeps it.
func TestALaneForTheParkAloneDoesNotAskForTheClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		g := &claimGuard{st: st}
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour}
		a := startNode(t, st, "node-a", opts, fastRate, g.script("node-a", ok200))
		defer a.close()
		a.offer("p")
		advance(time.Second)
		// A delivery parked until much later makes B start a lane for the destination.
		job, err := delivery.EncodeJob(delivery.Job{DeliveryID: "dlv_later", UpdateID: "upd_later", DestinationID: rigDest, ProfileKey: "q", ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Write(t.Context(), delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_later", DestinationID: rigDest, ProfileKey: "q", Seq: 99, DueAt: time.Now().Add(time.Hour), Job: job}}}); err != nil {
			t.Fatal(err)
		}
		b := startNode(t, st, "node-b", opts, fastRate, g.script("node-b", ok200))
		defer b.close()
		advance(20 * time.Second)
		if _, ok := b.d.laneOf(rigDest); !ok {
			t.Fatal("B started no lane for the parked delivery: the test tests nothing")
		}
		if n := st.callsOf(opClaim + ":node-b"); n == 0 {
			t.Fatal("B's lane never tried the claim: the test tests nothing")
		}
		if h := st.holder(rigDest); h != "node-a" {
			t.Errorf("the claim is held by %q, want node-a: B's lane has no job of its own", h)
		}
		st.mu.Lock()
		asked := st.claims[rigDest].wanted
		st.mu.Unlock()
		if !asked.IsZero() {
			t.Errorf("B asked for the claim at %v with no job of its own", asked)
		}
		g.check(t)
	})
}
