package dispatch

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Fault tests: the store fails under a running dispatcher — errors, calls that never answer,
// claims refused — and afterwards every job is accounted for: delivered once and recorded, no
// offset committed before its outcome (or its parking) was confirmed (the rig's ledger checks
// every commit), nothing left pending or parked.

// assertLedger checks that every id ended delivered, was sent exactly once, is not parked, and
// that every offset up to want is committed.
func assertLedger(t *testing.T, r *rig, ids []string, want int64) {
	t.Helper()
	for _, id := range ids {
		if st := r.st.statusOf(id); st != delivery.Delivered {
			t.Errorf("%s: status %q, want delivered", id, st)
		}
		if n := len(r.snd.of(id)); n != 1 {
			t.Errorf("%s: sent %d times, want once", id, n)
		}
		if _, ok := r.st.parkedRow(id); ok {
			t.Errorf("%s: still parked", id)
		}
	}
	if off := r.src.committedOffset(); off != want {
		t.Errorf("committed offset %d, want %d", off, want)
	}
}

// The store is down for 20 s — longer than one write's 10 s timeout — while deliveries are in
// flight: their outcomes are recorded once it is back, and no offset is committed before.
func TestStoreOutageLosesNothing(t *testing.T) {
	for _, mode := range []struct {
		name string
		hang bool
	}{{"errors", false}, {"timeouts", true}} {
		t.Run(mode.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := Options{Workers: 4, DrainInterval: drainTick, IdleRelease: time.Hour, BreakerTrips: noTrip,
					Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
				r := startRig(t, opts, fastRate, func(string, int, int) reply {
					rep := ok200()
					rep.latency = 100 * time.Millisecond
					return rep
				})
				defer r.close()
				var ids []string
				for i := range 40 {
					ids = append(ids, r.offer(fmt.Sprintf("p%d", i%8)))
				}
				advance(150 * time.Millisecond) // the first attempts are recorded, others in flight
				start := time.Now()
				r.st.outage(start.Add(20*time.Second), mode.hang)
				advance(2 * time.Minute)
				assertLedger(t, r, ids, int64(len(ids)))
			})
		})
	}
}

// A park write that fails for 15 s holds the job's offset until the park is durable, and that
// profile's later jobs wait behind it: all go out afterwards, in order, once each.
func TestFailedParkWriteHoldsOffsetAndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour}, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		r.reg.setPaused(rigDest, true)
		ids := []string{r.offer("p")} // parked by its worker: the destination is paused
		advance(time.Second)
		if _, ok := r.st.parkedRow(ids[0]); !ok || r.src.committedOffset() != 1 {
			t.Fatalf("the first job is not parked and committed (parked %v, offset %d)", ok, r.src.committedOffset())
		}

		until := time.Now().Add(15 * time.Second)
		r.st.setFault(func(c storeCall) storeFault {
			if c.op == opWrite && len(c.batch.Park) > 0 && time.Now().Before(until) {
				return storeFault{err: errStoreDown}
			}
			return storeFault{}
		})
		ids = append(ids, r.offer("p"), r.offer("p")) // behind the parked one: parked by the consumer
		advance(time.Second)
		r.reg.setPaused(rigDest, false)
		ids = append(ids, r.offer("p"))
		advance(12 * time.Second) // past the 10 s a write used to be given
		for _, id := range ids[1:] {
			if n := len(r.snd.of(id)); n != 0 {
				t.Fatalf("%s went out while an earlier job of its profile was not parked yet", id)
			}
		}
		if off := r.src.committedOffset(); off != 1 {
			t.Fatalf("committed offset %d while the park writes fail, want 1", off)
		}

		advance(time.Minute)
		assertLedger(t, r, ids, int64(len(ids)))
		sends := r.snd.all()
		for i := 1; i < len(sends); i++ {
			if sends[i].id < sends[i-1].id {
				t.Fatalf("profile p's deliveries went out as %v, want in order", sends)
			}
		}
	})
}

// Two reconciles at once — Wake's and another — must not lose a park made during their reads:
// the profile's next live job waits behind it.
func TestConcurrentReconcilesKeepParkCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour}, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		r.offer("warm")
		advance(time.Second)
		r.d.mu.Lock()
		l := r.d.lanes[rigDest]
		r.d.mu.Unlock()

		// Something else is parked, so that each reconcile reads the per-profile counts (one
		// that counts the park empty skips that read).
		if err := r.st.Write(t.Context(), delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_z1", DestinationID: rigDest, ProfileKey: "z",
			Seq: 1, DueAt: time.Now().Add(time.Hour), Job: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}

		// The first read waits (up to 1 s) for a second one to begin; after the second read, a
		// worker parks a delivery of q (row written, then counted), which neither read saw.
		first, second := make(chan struct{}), make(chan struct{})
		calls := 0
		r.st.afterParkedProfiles = func() {
			r.st.mu.Lock()
			calls++
			n := calls
			r.st.mu.Unlock()
			switch n {
			case 1:
				close(first)
				select {
				case <-second:
				case <-time.After(time.Second):
				}
			case 2:
				_ = r.st.Write(t.Context(), delivery.Batch{Park: []delivery.Parked{{DeliveryID: "dlv_q1", DestinationID: rigDest, ProfileKey: "q",
					Seq: 1, DueAt: time.Now().Add(time.Hour), Job: []byte(`{}`)}}})
				l.mu.Lock()
				l.addParkedLocked("q")
				l.mu.Unlock()
				close(second)
			}
		}
		r.d.Wake(rigDest)
		select {
		case <-first:
		case <-time.After(10 * time.Second):
			t.Fatal("no reconcile read the per-profile park counts")
		}
		r.d.Wake(rigDest)
		advance(2 * time.Second)
		r.st.mu.Lock()
		r.st.afterParkedProfiles = nil
		r.st.mu.Unlock()
		l.mu.Lock()
		n := l.parked["q"]
		l.mu.Unlock()
		if n != 1 {
			t.Errorf("profile q counts %d parked after two reconciles, want 1", n)
		}
		live := r.offer("q")
		advance(10 * time.Millisecond)
		if len(r.snd.of(live)) != 0 {
			t.Fatal("q's live job overtook its parked delivery")
		}
	})
}

// A store that does not answer for one destination's lane — its park state, its claim — holds up
// neither the consumer nor the other destinations; the job waits (unsent, uncommitted) and goes
// out once the store answers.
func TestSlowStoreForOneLaneDoesNotFreezeTheConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour}, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		until := time.Now().Add(30 * time.Second)
		r.st.setFault(func(c storeCall) storeFault {
			if c.dest == rigDest && time.Now().Before(until) {
				return storeFault{hang: true}
			}
			return storeFault{}
		})
		slow := []string{r.offer("p"), r.offer("p")}
		other := r.offerTo(otherDest, "p", 0)
		advance(time.Second)
		if n := len(r.snd.of(other)); n != 1 {
			t.Fatalf("another destination's job: %d sends within 1 s while one lane's store calls hang, want 1", n)
		}
		for _, id := range slow {
			if n := len(r.snd.of(id)); n != 0 {
				t.Fatalf("%s was sent before its lane had its park state and claim", id)
			}
		}
		if off := r.src.committedOffset(); off != 0 {
			t.Fatalf("committed offset %d while the first jobs wait for their lane", off)
		}
		advance(time.Minute)
		assertLedger(t, r, append(slow, other), 3)
		if a, b := r.snd.of(slow[0]), r.snd.of(slow[1]); len(a) == 1 && len(b) == 1 && a[0].all > b[0].all {
			t.Error("the profile's jobs went out out of order")
		}
	})
}

// An idle lane gives up its claim after IdleRelease and is removed: the node then stops calling
// the store for that destination. A new job brings a new lane, which claims again and sends.
func TestIdleLaneReleasesItsClaimAndIsRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle, ttl = 10 * time.Second, 3 * time.Second
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: idle, ClaimTTL: ttl}, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		first := r.offer("p")
		advance(time.Second)
		if h := r.st.holder(rigDest); h != "node-timing" {
			t.Fatalf("claim held by %q while sending, want node-timing", h)
		}
		advance(idle + 2*ttl)
		if h := r.st.holder(rigDest); h != "" {
			t.Fatalf("claim still held by %q after %v idle", h, idle+2*ttl)
		}
		if r.st.callsOf(opRelease) == 0 {
			t.Fatal("the idle claim expired instead of being released")
		}
		if _, ok := r.d.laneOf(rigDest); ok {
			t.Fatal("the idle lane was not removed")
		}
		calls := func() int {
			n := 0
			for _, op := range []string{opClaim, opRelease, opCount, opProfiles, opHeads} {
				n += r.st.callsOf(op + "@" + rigDest)
			}
			return n
		}
		before := calls()
		advance(5 * time.Minute)
		if n := calls() - before; n != 0 {
			t.Fatalf("%d store calls for the idle destination in 5 minutes, want none", n)
		}

		second := r.offer("p")
		advance(time.Second)
		if h := r.st.holder(rigDest); h != "node-timing" {
			t.Fatalf("a new job: claim held by %q, want node-timing", h)
		}
		assertLedger(t, r, []string{first, second}, 2)
	})
}

// A lane holds at most MaxQueuedBytes of payloads in memory: with 100 KB jobs and a 350 KB bound,
// three go to their workers and the rest park; all are delivered once, each profile in order.
func TestLaneBoundsQueuedBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size, bound = 100_000, 350_000
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour, MaxQueuedBytes: bound}, fastRate, func(string, int, int) reply {
			rep := ok200()
			rep.latency = time.Second
			return rep
		})
		defer r.close()
		r.offer("warm") // the lane is ready before the burst
		advance(2 * time.Second)
		var ids []string
		for _, p := range profilesOnDistinctWorkers(10, 16) {
			ids = append(ids, r.offerSized(p, size))
		}
		synctest.Wait()
		parked := 0
		for _, id := range ids {
			if _, ok := r.st.parkedRow(id); ok {
				parked++
			}
		}
		if inFlight := r.snd.count() - 1; inFlight != 3 || parked != 7 {
			t.Fatalf("%d jobs of %d bytes against a %d-byte bound: %d sent at once and %d parked, want 3 and 7", len(ids), size, bound, inFlight, parked)
		}
		advance(time.Minute)
		if m := r.snd.maxConcurrent(); m > 3 {
			t.Errorf("%d jobs of %d bytes in flight at once, want at most 3", m, size)
		}
		assertLedger(t, r, ids, int64(len(ids)+1))
	})
}

// Run returns only after the alert a circuit change records is written (or gave up): nothing of
// the dispatcher's is left running against the store.
func TestRunWaitsForAlertWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{DrainInterval: drainTick, IdleRelease: time.Hour, BreakerTrips: 1, BreakerTimeout: time.Hour},
			fastRate, func(string, int, int) reply { return unavailable(0) })
		r.st.setFault(func(c storeCall) storeFault {
			if c.op == opWrite && len(c.batch.Alerts) > 0 {
				return storeFault{hang: true}
			}
			return storeFault{}
		})
		r.offer("p")
		advance(time.Second)
		if s := r.d.BreakerState(rigDest); s != "open" {
			t.Fatalf("circuit %s after a failure with BreakerTrips 1", s)
		}
		if n := r.st.hangingCalls(); n != 1 {
			t.Fatalf("%d alert writes in progress, want 1", n)
		}
		start := time.Now()
		r.close() // fails if a store call is still in progress after Run returned
		if d := time.Since(start); d > writeTimeout+stopGrace+lateTry {
			t.Errorf("Run took %v to return, want at most %v", d, writeTimeout+stopGrace+lateTry)
		}
	})
}

// Stopping while the store does not answer: Run returns within the stop grace, nothing whose
// outcome was not confirmed is committed, and after the restart the same jobs (read again) go
// out with the same Idempotency-Keys and are recorded.
func TestStopDuringOutageLeavesJobsUncommitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		opts := Options{Workers: 16, DrainInterval: drainTick, IdleRelease: time.Hour, BreakerTrips: noTrip}
		r := startNode(t, st, "node-timing", opts, fastRate, func(string, int, int) reply { return ok200() })
		defer r.close()
		r.offer("warm")
		advance(time.Second)
		st.setFault(func(c storeCall) storeFault { return storeFault{hang: c.op == opWrite} })
		profiles := profilesOnDistinctWorkers(8, 16) // each sends at once, then waits for its write
		var ids []string
		for _, p := range profiles {
			ids = append(ids, r.offer(p))
		}
		advance(time.Second) // sent; their outcomes cannot be written
		if n := r.snd.count(); n != len(ids)+1 {
			t.Fatalf("%d sends, want %d", n, len(ids)+1)
		}
		start := time.Now()
		r.close()
		if d := time.Since(start); d > writeTimeout+stopGrace+lateTry {
			t.Fatalf("Run took %v to stop during the outage, want at most %v", d, writeTimeout+stopGrace+lateTry)
		}
		if off := r.src.committedOffset(); off != 1 {
			t.Fatalf("committed offset %d after stopping in the outage, want 1 (only the warm-up job)", off)
		}

		// The restart: the store is back, the uncommitted jobs are read again.
		st.setFault(nil)
		r2 := startNode(t, st, "node-timing", opts, fastRate, func(string, int, int) reply { return ok200() })
		defer r2.close()
		r2.offer("warm") // offset 1 again: already delivered, closed without a send
		for i := range ids {
			if id := r2.offer(profiles[i]); id != ids[i] {
				t.Fatalf("re-read job %d has ID %s, want %s", i, id, ids[i])
			}
		}
		advance(time.Minute)
		for _, id := range ids {
			if s := st.statusOf(id); s != delivery.Delivered {
				t.Errorf("%s: status %q after the restart, want delivered", id, s)
			}
			if n := len(r2.snd.of(id)); n != 1 {
				t.Errorf("%s: sent %d times after the restart, want once (same Idempotency-Key)", id, n)
			}
		}
		if n := len(r2.snd.of("dlv_0001")); n != 0 {
			t.Errorf("the delivered warm-up job was sent again after the restart")
		}
		if off := r2.src.committedOffset(); off != int64(len(ids)+1) {
			t.Errorf("committed offset %d after the restart, want %d", off, len(ids)+1)
		}
	})
}
