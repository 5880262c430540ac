package dispatch

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// A destination that is down while many profiles wait for it: past MaxParkedProfiles the lane
// stops tracking them one by one (memory stays bounded) and parks every new job; when the
// destination is back, each profile's deliveries go out in order, and once the park has
// shrunk the lane tracks profiles again and live jobs go straight out.
func TestOverflowBoundsParkStateAndKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxProfiles, profiles = 4, 10
		var down atomic.Bool
		down.Store(true)
		opts := Options{BreakerTrips: 1, BreakerTimeout: time.Minute, DrainInterval: drainTick,
			MaxParkedProfiles: maxProfiles, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
		r := startRig(t, opts, fastRate, func(string, int, int) reply {
			if down.Load() {
				return unavailable(0)
			}
			return ok200()
		})
		defer r.close()
		lane := func() *lane {
			r.d.mu.Lock()
			defer r.d.mu.Unlock()
			return r.d.lanes[rigDest]
		}
		state := func() (overflow bool, tracked, total int) {
			l := lane()
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.overflow, len(l.parked), l.parkedTotal
		}

		p0 := r.offer("p0") // fails: the circuit opens and it is parked
		advance(time.Second)
		pairs := make([][2]string, profiles) // per profile: its first and second delivery
		for round := range 2 {
			for i := range profiles {
				pairs[i][round] = r.offer(fmt.Sprintf("p%d", i+1))
			}
		}
		advance(time.Second)
		if over, tracked, total := state(); !over || tracked > maxProfiles || total != 2*profiles+1 {
			t.Fatalf("after %d parked profiles: overflow %v, %d tracked, %d parked; want overflow, ≤ %d tracked, %d parked",
				profiles+1, over, tracked, total, maxProfiles, 2*profiles+1)
		}
		if n := r.snd.count(); n != 1 {
			t.Fatalf("%d sends while the circuit is open, want the 1 that opened it", n)
		}

		// The destination is back: the probe closes the circuit and the park drains, in order.
		down.Store(false)
		advance(time.Minute + 5*time.Second)
		for i, pair := range pairs {
			a, b := r.snd.of(pair[0]), r.snd.of(pair[1])
			if len(a) != 1 || len(b) != 1 {
				t.Fatalf("p%d: %d and %d sends of its two deliveries, want 1 each", i+1, len(a), len(b))
			}
			if a[0].all > b[0].all {
				t.Fatalf("p%d: its second delivery went out before its first", i+1)
			}
		}
		if s := r.snd.of(p0); len(s) != 2 {
			t.Fatalf("p0: %d sends, want the failure and the delivery", len(s))
		}
		// The park is empty; at the next claim renewal the lane tracks profiles again.
		advance(opts.ClaimTTL)
		if over, tracked, total := state(); over || tracked != 0 || total != 0 {
			t.Fatalf("after draining: overflow %v, %d tracked, %d parked; want none", over, tracked, total)
		}
		before := r.snd.count()
		live := r.offer("p1")
		advance(10 * time.Millisecond)
		if s := r.snd.of(live); len(s) != 1 || r.snd.count() != before+1 {
			t.Fatalf("a live job after the overflow: %d sends, want it sent at once", len(s))
		}
		if _, parked := r.st.parkedRow(live); parked {
			t.Fatal("a live job after the overflow was parked")
		}
	})
}

// A delivery parked while reconcile reads the store (so the read misses it) still counts: the
// profile's next live job must wait behind it, not overtake it. Reconcile reads the park's count,
// then (when it is not empty) the count per profile: the delivery is parked during either.
func TestReconcileKeepsParksMadeDuringItsRead(t *testing.T) {
	for _, c := range []struct {
		name     string
		nonEmpty bool // something else is parked: the per-profile count is read
	}{{"during the count of an empty park", false}, {"during the per-profile count", true}} {
		t.Run(c.name, func(t *testing.T) { testParkDuringReconcile(t, c.nonEmpty) })
	}
}

func testParkDuringReconcile(t *testing.T, nonEmpty bool) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour}, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		r.offer("warm")
		advance(time.Second)
		r.d.mu.Lock()
		l := r.d.lanes[rigDest]
		r.d.mu.Unlock()
		if nonEmpty {
			if err := r.st.Write(t.Context(), delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_z1", DestinationID: rigDest, ProfileKey: "z",
				Seq: 1, DueAt: time.Now().Add(time.Hour), Job: []byte(`{}`)}}}); err != nil {
				t.Fatal(err)
			}
		}

		// During the read, a worker parks a delivery of profile q (row written, then counted)
		// and lets go of it — as park() followed by release() does.
		ran := false
		during := func() {
			r.st.afterParkedProfiles, r.st.afterCountParked, ran = nil, nil, true
			_ = r.st.Write(context.Background(), delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_q1", DestinationID: rigDest, ProfileKey: "q",
				Seq: 1, DueAt: time.Now().Add(time.Hour), Job: []byte(`{}`)}}})
			l.mu.Lock()
			l.addParkedLocked("q")
			l.mu.Unlock()
		}
		if nonEmpty {
			r.st.afterParkedProfiles = during
		} else {
			r.st.afterCountParked = during
		}
		if empty := l.reconcile(); empty {
			t.Error("reconcile reported an empty park while a delivery was being parked")
		}
		if !ran {
			t.Fatal("the read that the park was to meet did not happen")
		}
		l.mu.Lock()
		n := l.parked["q"]
		l.mu.Unlock()
		if n != 1 {
			t.Fatalf("profile q counts %d parked after reconcile, want 1 (its row was written during the read)", n)
		}
		live := r.offer("q")
		advance(10 * time.Millisecond)
		if len(r.snd.of(live)) != 0 {
			t.Fatal("q's live job overtook its parked delivery")
		}
	})
}
