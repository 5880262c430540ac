package dispatch

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/store"
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
		r.st.setFault(func(op, _ string, b *store.Batch) storeFault {
			if op == opWrite && len(b.Park) > 0 && time.Now().Before(until) {
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
				_ = r.st.Write(t.Context(), store.Batch{Park: []store.Parked{{DeliveryID: "dlv_q1", DestinationID: rigDest, ProfileKey: "q",
					Seq: 1, DueAt: time.Now().Add(time.Hour), Job: []byte(`{}`)}}})
				l.mu.Lock()
				l.addParkedLocked("q")
				l.mu.Unlock()
				close(second)
			}
		}
		r.d.Wake(rigDest)
		<-first
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
