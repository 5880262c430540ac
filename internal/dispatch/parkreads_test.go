package dispatch

import (
	"testing"
	"testing/synctest"
	"time"
)

// A lane that holds its destination's claim and has nothing parked renews the claim without
// reading the park: its reconcile counts the park empty (one CountParked), and neither the
// per-profile count nor the park read after the renewal follows (issue #12: at 400 destinations
// they were two of the four store calls of every renewal). TestClaimMovesBetweenNodes shows the
// other side: what another node parks is still found and sent at the holder's next renewal.
func TestRenewalsOfAnEmptyParkReadNothingMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{DrainInterval: drainTick, ClaimTTL: 3 * time.Second, IdleRelease: time.Hour}
		r := startRig(t, opts, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		id := r.offer("p")
		advance(time.Second)
		if got := r.st.statusOf(id); got != "delivered" {
			t.Fatalf("first job: %s", got)
		}
		claims, counts := r.st.callsOf(opClaim), r.st.callsOf(opCount)
		heads, profiles := r.st.callsOf(opHeads), r.st.callsOf(opProfiles)
		advance(10 * opts.ClaimTTL / 3) // ten renewals
		if n := r.st.callsOf(opClaim) - claims; n < 9 {
			t.Fatalf("%d claim renewals in ten renewal periods", n)
		}
		if n := r.st.callsOf(opCount) - counts; n < 9 {
			t.Fatalf("%d park counts in ten renewals: each renewal reconciles", n)
		}
		if n := r.st.callsOf(opHeads) - heads; n != 0 {
			t.Errorf("%d park reads in ten renewals of an empty park, want 0", n)
		}
		if n := r.st.callsOf(opProfiles) - profiles; n != 0 {
			t.Errorf("%d per-profile park counts in ten renewals of an empty park, want 0", n)
		}
		// Work still flows between the renewals.
		id = r.offer("p")
		advance(time.Second)
		if got := r.st.statusOf(id); got != "delivered" {
			t.Fatalf("job after the renewals: %s", got)
		}
	})
}
