package dispatch

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Timing tests: a real Dispatcher (lanes, limiter, breaker, park and drainer) runs inside a
// testing/synctest bubble, whose clock only moves when every goroutine of the bubble is blocked.
// The sender is scripted and records the fake time of every request, so the waits the
// dispatcher chooses can be checked to the nanosecond without sleeping in real time.

const (
	fastRate  = 6_000_000 // per minute: 100k/s, so the limiter never matters in retry and breaker tests
	drainTick = 50 * time.Millisecond
	// limiterSlack bounds the extra delay the fast limiter adds when several workers send at once.
	limiterSlack = time.Millisecond
	// noTrip keeps the circuit closed in the retry tests, which fail on purpose (the breaker
	// has tests of its own).
	noTrip = 1 << 30
)

func retryingEvents(evs []delivery.Event) []delivery.Event {
	var out []delivery.Event
	for _, ev := range evs {
		if ev.Status == delivery.Retrying {
			out = append(out, ev)
		}
	}
	return out
}

// 503 five times, then 200: every retry waits a uniformly random time in
// [0, min(Max, Base·2^(n-1))] measured from the failed attempt, and goes out no earlier than the
// NextAttemptAt recorded with the failure — and no later than the next drain tick after it (waits
// over MaxInMemoryWait are parked) or, for short waits held in memory, at once.
func TestTimingRetryBackoffIsExponentialWithFullJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, failures = 64, 5
		b := Backoff{Base: time.Second, Max: 8 * time.Second} // ceilings 1s, 2s, 4s, 8s, 8s (capped)
		opts := Options{Workers: workers, Backoff: b, DrainInterval: drainTick, RetryWindow: time.Hour, BreakerTrips: noTrip}
		r := startRig(t, opts, fastRate, func(_ string, n, _ int) reply {
			if n <= failures {
				return unavailable(0)
			}
			return ok200()
		})
		defer r.close()

		// One profile per worker: no retry ever waits behind another profile's in-memory wait.
		var ids []string
		for _, p := range profilesOnDistinctWorkers(workers, workers) {
			ids = append(ids, r.offer(p))
		}
		advance(2 * time.Minute)

		maxInMemory := 250 * time.Millisecond // the default MaxInMemoryWait
		waits := map[int][]time.Duration{}
		held, parked := 0, 0
		for _, id := range ids {
			if st := r.st.statusOf(id); st != delivery.Delivered {
				t.Fatalf("%s: status %q, want delivered", id, st)
			}
			sends := r.snd.of(id)
			retrying := retryingEvents(r.st.eventsOf(id))
			if len(sends) != failures+1 || len(retrying) != failures {
				t.Fatalf("%s: %d sends and %d retrying events, want %d and %d", id, len(sends), len(retrying), failures+1, failures)
			}
			for i, ev := range retrying {
				n := i + 1
				if ev.Attempt == nil || ev.Attempt.N != n || !ev.Attempt.At.Equal(sends[i].at) || ev.Attempt.StatusCode != 503 || ev.NextAttemptAt == nil {
					t.Fatalf("%s: retrying event %d = %+v (attempt %+v), want attempt %d at %v", id, n, ev, ev.Attempt, n, sends[i].at)
				}
				due := *ev.NextAttemptAt
				wait := due.Sub(sends[i].at)
				if ceil := min(b.Max, b.Base<<(n-1)); wait < 0 || wait > ceil {
					t.Errorf("%s: wait before retry %d is %v, outside [0, %v]", id, n, wait, ceil)
				}
				waits[n] = append(waits[n], wait)
				next := sends[i+1].at
				if next.Before(due) {
					t.Errorf("%s: retry %d went out at +%v, %v before its backoff ended", id, n, next.Sub(sends[i].at), due.Sub(next))
				}
				late := drainTick + limiterSlack // parked: picked up at the next drain tick
				if wait <= maxInMemory {
					late = limiterSlack // held by the worker: sent as soon as the wait is over
					held++
				} else {
					parked++
				}
				if next.After(due.Add(late)) {
					t.Errorf("%s: retry %d went out %v after its backoff ended (wait %v), want at most %v", id, n, next.Sub(due), wait, late)
				}
			}
		}
		if held == 0 || parked == 0 {
			t.Errorf("expected both short (in-memory) and long (parked) waits; got %d and %d", held, parked)
		}
		// Full jitter, and a ceiling that doubles: with 64 samples each, these fail with
		// probability below 2^-64 when the waits are right.
		if m := maxOf(waits[1]); m <= 500*time.Millisecond {
			t.Errorf("first retries all waited <= %v; not spread over [0, 1s]", m)
		}
		if m := maxOf(append(waits[4], waits[5]...)); m <= 4*time.Second {
			t.Errorf("4th/5th retries all waited <= %v; the ceiling did not grow to 8s", m)
		}
		if m := minOf(waits[5]); m >= 4*time.Second {
			t.Errorf("5th retries all waited >= %v; not full jitter", m)
		}
	})
}

// A destination's Retry-After wins over a shorter backoff draw, exactly: the failure records
// NextAttemptAt = attempt + Retry-After and the retry does not go out before it, whether the wait
// is held in memory (sent at that very instant) or parked (sent at the next drain tick).
func TestTimingRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{
			Backoff:         Backoff{Base: time.Millisecond, Max: time.Millisecond}, // jitter ≤ 1ms: Retry-After always wins
			MaxInMemoryWait: 2 * time.Second,
			DrainInterval:   drainTick,
			BreakerTrips:    noTrip,
		}
		script := []reply{unavailable(7 * time.Second), tooMany(time.Second), unavailable(3 * time.Second), ok200()}
		r := startRig(t, opts, fastRate, func(_ string, n, _ int) reply { return script[n-1] })
		defer r.close()

		id := r.offer("p")
		synctest.Wait()
		sends := r.snd.of(id)
		if len(sends) != 1 {
			t.Fatalf("%d sends at once, want 1", len(sends))
		}
		t0 := sends[0].at

		// A 7s wait is longer than MaxInMemoryWait: the delivery waits in the park, due exactly then.
		advanceTo(t0.Add(7*time.Second - time.Nanosecond))
		if n := r.snd.count(); n != 1 {
			t.Fatalf("retry went out before Retry-After: %d sends at +7s-1ns", n)
		}
		p, ok := r.st.parkedRow(id)
		if !ok || !p.DueAt.Equal(t0.Add(7*time.Second)) || p.Attempts != 1 || p.FirstAttemptAt == nil || !p.FirstAttemptAt.Equal(t0) {
			t.Fatalf("parked row %+v (found %v), want due at +7s after 1 attempt first at %v", p, ok, t0)
		}
		advance(time.Minute)

		if st := r.st.statusOf(id); st != delivery.Delivered {
			t.Fatalf("status %q, want delivered", st)
		}
		sends = r.snd.of(id)
		if len(sends) != 4 {
			t.Fatalf("%d sends, want 4", len(sends))
		}
		retrying := retryingEvents(r.st.eventsOf(id))
		if len(retrying) != 3 {
			t.Fatalf("%d retrying events, want 3", len(retrying))
		}
		for i, want := range []time.Duration{7 * time.Second, time.Second, 3 * time.Second} {
			ev := retrying[i]
			if ev.NextAttemptAt == nil || !ev.NextAttemptAt.Equal(sends[i].at.Add(want)) {
				t.Errorf("retry %d: NextAttemptAt %v, want attempt + Retry-After %v = %v", i+1, ev.NextAttemptAt, want, sends[i].at.Add(want))
			}
			gap := sends[i+1].at.Sub(sends[i].at)
			if gap < want {
				t.Errorf("retry %d went out after %v, before Retry-After %v", i+1, gap, want)
			}
			late := drainTick + limiterSlack
			if want <= opts.MaxInMemoryWait {
				late = 0 // held in memory: exactly on time
			}
			if gap > want+late {
				t.Errorf("retry %d went out after %v, want within %v of Retry-After %v", i+1, gap, late, want)
			}
		}
	})
}

// Retrying lasts until the retry window, counted from the first attempt across parks: the first
// attempt at or after first+RetryWindow is the last, and the delivery is dead-lettered (with its
// payload) instead of being retried again.
func TestTimingRetryWindowDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 10 * time.Second
		b := Backoff{Base: time.Second, Max: 2 * time.Second}
		opts := Options{RetryWindow: window, Backoff: b, DrainInterval: drainTick, BreakerTrips: noTrip}
		r := startRig(t, opts, fastRate, func(string, int, int) reply { return unavailable(0) })
		defer r.close()

		id := r.offer("p")
		advance(time.Minute)

		sends := r.snd.of(id)
		if st := r.st.statusOf(id); st != delivery.DeadLettered {
			t.Fatalf("status %q after %d attempts, want dead_lettered", st, len(sends))
		}
		// Waits are at most 2s (+ a drain tick), so crossing 10s takes at least 6 attempts.
		if len(sends) < 6 {
			t.Fatalf("dead-lettered after %d attempts; the window is %v and waits at most %v", len(sends), window, b.Max)
		}
		first, last := sends[0].at, sends[len(sends)-1].at
		if prev := sends[len(sends)-2].at; prev.Sub(first) >= window {
			t.Errorf("attempt %d at +%v was already past the window but was retried", len(sends)-1, prev.Sub(first))
		}
		if e := last.Sub(first); e < window || e > window+b.Max+drainTick+limiterSlack {
			t.Errorf("last attempt at +%v, want in [%v, %v]", e, window, window+b.Max+drainTick+limiterSlack)
		}
		evs := r.st.eventsOf(id)
		retrying := retryingEvents(evs)
		if len(retrying) != len(sends)-1 {
			t.Errorf("%d retrying events for %d attempts, want one per attempt but the last", len(retrying), len(sends))
		}
		final := evs[len(evs)-1]
		if final.Status != delivery.DeadLettered || final.Reason != delivery.ReasonRetryWindow || final.Attempt == nil ||
			final.Attempt.N != len(sends) || !final.Attempt.At.Equal(last) || len(final.Payload) == 0 {
			t.Errorf("final event %+v (attempt %+v), want dead_lettered/%s for attempt %d at %v with the payload",
				final, final.Attempt, delivery.ReasonRetryWindow, len(sends), last)
		}
		if _, ok := r.st.parkedRow(id); ok {
			t.Error("a dead-lettered delivery is still parked")
		}
		if off := r.src.committedOffset(); off != 1 {
			t.Errorf("committed offset %d, want 1 (the dead letter is a finished outcome)", off)
		}
		n := r.snd.count()
		advance(time.Hour)
		if m := r.snd.count(); m != n {
			t.Errorf("%d more sends after the dead letter", m-n)
		}
	})
}

// The retry window counts from the first request actually made: a delivery the half-open
// circuit refused (its probe slot taken by another) was not attempted, so its window does not
// start there. Here b is refused at the probe, first sent 30 s later and fails; it must be
// retried, not dead-lettered as if its 10 s window had begun at the refusal.
func TestTimingRetryWindowStartsAtTheFirstRequestMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout, window = 30 * time.Second, 10 * time.Second
		opts := Options{BreakerTrips: 1, BreakerTimeout: timeout, RetryWindow: window, DrainInterval: drainTick,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
		r := startRig(t, opts, fastRate, func(_ string, _, all int) reply {
			switch all {
			case 1, 3: // a's first request; b's first request (b is refused, not sent, at the probe)
				return unavailable(0)
			case 2: // a's probe succeeds, slowly: b arrives while it is in flight
				rep := ok200()
				rep.latency = 2 * time.Second
				return rep
			}
			return ok200()
		})
		defer r.close()

		a := r.offer("a")
		advance(time.Second)
		if s := r.d.BreakerState(rigDest); s != "open" {
			t.Fatalf("circuit %s after a's failure, want open", s)
		}
		advance(timeout) // a's probe is in flight
		if s := r.d.BreakerState(rigDest); s != "half-open" {
			t.Fatalf("circuit %s during the probe, want half-open", s)
		}
		b := r.offer("b")
		advance(10 * time.Minute)

		sends := r.snd.of(b)
		if st := r.st.statusOf(b); st != delivery.Delivered || len(sends) != 2 {
			t.Fatalf("b: %q after %d requests, want delivered at its second (its window starts at its first request)", st, len(sends))
		}
		if st := r.st.statusOf(a); st != delivery.Delivered {
			t.Fatalf("a: %q, want delivered", st)
		}
	})
}

// BreakerTrips consecutive failures open the circuit. While it is open nothing is sent, live
// jobs included, for BreakerTimeout; then exactly one probe goes out. A failed probe opens it for
// another BreakerTimeout; a successful one closes it and the parked deliveries follow.
func TestTimingBreakerOpensAndProbesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const trips, timeout, probeLatency = 3, 30 * time.Second, 2 * time.Second
		opts := Options{BreakerTrips: trips, BreakerTimeout: timeout, DrainInterval: drainTick,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}} // retries at once, in memory
		r := startRig(t, opts, fastRate, func(_ string, _, all int) reply {
			switch {
			case all <= trips+1: // three failures, then the first probe fails too
				return unavailable(0)
			case all == trips+2: // the second probe succeeds, slowly
				rep := ok200()
				rep.latency = probeLatency
				return rep
			}
			return ok200()
		})
		defer r.close()

		a := r.offer("a")
		advance(time.Second)
		sends := r.snd.all()
		if len(sends) != trips || r.d.BreakerState(rigDest) != "open" {
			t.Fatalf("after %d failures: %d sends, circuit %s; want %d sends, open", trips, len(sends), r.d.BreakerState(rigDest), trips)
		}
		opened := sends[trips-1].at
		if sends[0].at.Add(10 * time.Millisecond).Before(opened) {
			t.Fatalf("the %d failures took %v; the retries should have gone out at once", trips, opened.Sub(sends[0].at))
		}

		// Deliveries arriving while it is open are parked, not sent.
		others := []string{r.offer("b"), r.offer("c"), r.offer("d")}
		advanceTo(opened.Add(timeout)) // gobreaker half-opens strictly after the timeout
		if n := r.snd.count(); n != trips {
			t.Fatalf("%d sends while the circuit was open", n-trips)
		}
		for _, id := range append([]string{a}, others...) {
			if _, ok := r.st.parkedRow(id); !ok {
				t.Fatalf("%s is not parked while the circuit is open", id)
			}
		}

		// Probe 1: one delivery, just after the timeout; it fails and the circuit opens again.
		advance(time.Second)
		sends = r.snd.all()
		if len(sends) != trips+1 {
			t.Fatalf("%d sends after the timeout, want exactly one probe", len(sends)-trips)
		}
		probe1 := sends[trips].at
		if lo, hi := opened.Add(timeout), opened.Add(timeout+2*time.Millisecond+drainTick); !probe1.After(lo) || probe1.After(hi) {
			t.Fatalf("probe at +%v after opening, want in (%v, %v]", probe1.Sub(opened), timeout, hi.Sub(opened))
		}
		if s := r.d.BreakerState(rigDest); s != "open" {
			t.Fatalf("circuit %s after a failed probe, want open", s)
		}

		// Probe 2 after another timeout; it is slow, and nothing else goes out while it is in
		// flight, not even a live job arriving meanwhile.
		advanceTo(probe1.Add(timeout))
		if n := r.snd.count(); n != trips+1 {
			t.Fatalf("%d sends within %v of the failed probe", n-trips-1, timeout)
		}
		advance(time.Second)
		sends = r.snd.all()
		if len(sends) != trips+2 {
			t.Fatalf("%d sends after the second timeout, want exactly one probe", len(sends)-trips-1)
		}
		probe2 := sends[trips+1].at
		if lo, hi := probe1.Add(timeout), probe1.Add(timeout+2*time.Millisecond+drainTick); !probe2.After(lo) || probe2.After(hi) {
			t.Fatalf("second probe at +%v after the first, want in (%v, %v]", probe2.Sub(probe1), timeout, hi.Sub(probe1))
		}
		if s := r.d.BreakerState(rigDest); s != "half-open" {
			t.Fatalf("circuit %s while the probe is in flight, want half-open", s)
		}
		late := r.offer("e")
		advanceTo(probe2.Add(probeLatency - time.Nanosecond))
		if n := r.snd.count(); n != trips+2 {
			t.Fatalf("%d other sends while the half-open probe was in flight", n-trips-2)
		}

		// The probe succeeds: closed, and everything parked is delivered.
		advance(2 * time.Minute)
		if s := r.d.BreakerState(rigDest); s != "closed" {
			t.Fatalf("circuit %s after a successful probe, want closed", s)
		}
		for _, id := range append([]string{a, late}, others...) {
			if st := r.st.statusOf(id); st != delivery.Delivered {
				t.Errorf("%s: %q, want delivered", id, st)
			}
		}
		// a: 3 failures + failed probe + 1; b, c, d, e: once each (one of them was probe 2).
		if n := r.snd.count(); n != trips+1+1+4 {
			t.Errorf("%d sends in all, want %d", n, trips+1+1+4)
		}
		if got, want := r.st.alertKinds(), []string{"circuit_opened", "circuit_opened", "circuit_closed"}; !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v", got, want)
		}
	})
}

// Failures must be consecutive: two failures and a success, over and over, never open a
// circuit that trips at three.
func TestTimingBreakerCountsOnlyConsecutiveFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{BreakerTrips: 3, BreakerTimeout: 30 * time.Second, DrainInterval: drainTick,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
		r := startRig(t, opts, fastRate, func(_ string, _, all int) reply {
			if all%3 != 0 {
				return unavailable(0)
			}
			return ok200()
		})
		defer r.close()

		var ids []string
		for range 5 {
			ids = append(ids, r.offer("p"))
		}
		advance(time.Second)
		for _, id := range ids {
			if st := r.st.statusOf(id); st != delivery.Delivered {
				t.Fatalf("%s: %q within 1s, want delivered (the circuit must stay closed)", id, st)
			}
		}
		if n := r.snd.count(); n != 15 {
			t.Errorf("%d sends, want 15", n)
		}
		if s, alerts := r.d.BreakerState(rigDest), r.st.alertKinds(); s != "closed" || len(alerts) != 0 {
			t.Errorf("circuit %s, alerts %v; want closed and none", s, alerts)
		}
	})
}

// One 401 (a destination fault) opens the circuit at once, far below BreakerTrips; the delivery
// is not dropped but retried as the probe after BreakerTimeout, and a success closes the circuit.
func TestTimingUnauthorizedOpensCircuitAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		opts := Options{BreakerTrips: 5, BreakerTimeout: timeout, DrainInterval: drainTick,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
		r := startRig(t, opts, fastRate, func(_ string, _, all int) reply {
			if all == 1 {
				return unauthorized()
			}
			return ok200()
		})
		defer r.close()

		a := r.offer("a")
		synctest.Wait()
		sends := r.snd.all()
		if len(sends) != 1 || r.d.BreakerState(rigDest) != "open" {
			t.Fatalf("after one 401: %d sends, circuit %s; want 1 send, open", len(sends), r.d.BreakerState(rigDest))
		}
		t1 := sends[0].at
		advance(time.Second)
		b := r.offer("b")
		advanceTo(t1.Add(timeout))
		if n := r.snd.count(); n != 1 {
			t.Fatalf("%d sends while the circuit was open after a 401", n-1)
		}
		advance(500 * time.Millisecond) // b is due at +31s
		sends = r.snd.all()
		if len(sends) != 2 || sends[1].id != a {
			t.Fatalf("after the timeout: sends %+v, want one probe (%s)", sends, a)
		}
		if p := sends[1].at.Sub(t1); p <= timeout || p > timeout+2*time.Millisecond+drainTick {
			t.Fatalf("probe at +%v, want just after %v", p, timeout)
		}
		advance(time.Minute)
		if s := r.d.BreakerState(rigDest); s != "closed" {
			t.Fatalf("circuit %s after a successful probe, want closed", s)
		}
		for _, id := range []string{a, b} {
			if st := r.st.statusOf(id); st != delivery.Delivered {
				t.Errorf("%s: %q, want delivered", id, st)
			}
		}
		evs := r.st.eventsOf(a)
		if len(evs) == 0 || evs[0].Status != delivery.Retrying || evs[0].Reason != "unauthorized" || evs[0].Attempt == nil || evs[0].Attempt.StatusCode != 401 {
			t.Errorf("first event of %s: %+v, want retrying/unauthorized (401)", a, evs)
		}
		if got, want := r.st.alertKinds(), []string{"circuit_opened", "circuit_closed"}; !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v", got, want)
		}
	})
}

// rateLimitPerMinute=60 is one request per second with a burst of one: N deliveries, sent by
// all the lane's workers at once, take exactly N-1 seconds, one per second, and no 60-second
// window ever holds more than 60.
func TestTimingRateLimitOnePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 75
		r := startRig(t, Options{}, 60, func(string, int, int) reply { return ok200() })
		defer r.close()

		start := time.Now()
		var ids []string
		for i := range n {
			ids = append(ids, r.offer(string(rune('A'+i%26))+string(rune('a'+i/26))))
		}
		advanceTo(start.Add(10*time.Second + 500*time.Millisecond))
		if c := r.snd.count(); c != 11 {
			t.Errorf("%d sends in the first 10.5s, want 11 (at 0s, 1s, … 10s)", c)
		}
		advance(2 * time.Minute)

		sends := r.snd.all()
		if len(sends) != n {
			t.Fatalf("%d sends, want %d", len(sends), n)
		}
		for _, id := range ids {
			if st := r.st.statusOf(id); st != delivery.Delivered {
				t.Fatalf("%s: %q, want delivered", id, st)
			}
		}
		if !sends[0].at.Equal(start) {
			t.Errorf("first send at +%v, want at once", sends[0].at.Sub(start))
		}
		for i := 1; i < n; i++ {
			if gap := sends[i].at.Sub(sends[i-1].at); gap != time.Second {
				t.Errorf("send %d came %v after the previous one, want exactly 1s", i, gap)
			}
		}
		if total := sends[n-1].at.Sub(sends[0].at); total != (n-1)*time.Second {
			t.Errorf("%d sends took %v, want %v", n, total, (n-1)*time.Second)
		}
		for i := 0; i+60 < n; i++ {
			if w := sends[i+60].at.Sub(sends[i].at); w < time.Minute {
				t.Errorf("61 sends within %v", w)
			}
		}
		if m := r.snd.maxConcurrent(); m != 1 {
			t.Errorf("%d requests in flight at once, want 1", m)
		}
	})
}

// A new rateLimitPerMinute takes effect from the next request: 60/min then, mid-stream, 120/min
// (0.5s apart), and later 30/min (2s apart).
func TestTimingRateLimitChangeTakesEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, Options{}, 60, func(string, int, int) reply { return ok200() })
		defer r.close()

		start := time.Now()
		for range 10 {
			r.offer("p") // one profile: one worker, sends strictly one after another
		}
		advanceTo(start.Add(3500 * time.Millisecond))
		r.reg.setRate(rigDest, 120)
		advance(time.Minute)

		// The wait already under way when the rate changed (the 5th send, reserved at 3s) keeps
		// its slot; every later one uses the new rate.
		want := []time.Duration{0, 1000, 2000, 3000, 4000, 4500, 5000, 5500, 6000, 6500}
		sends := r.snd.all()
		if len(sends) != len(want) {
			t.Fatalf("%d sends, want %d", len(sends), len(want))
		}
		for i, w := range want {
			if got := sends[i].at.Sub(start); got != w*time.Millisecond {
				t.Errorf("send %d at +%v, want +%v", i, got, w*time.Millisecond)
			}
		}

		r.reg.setRate(rigDest, 30)
		phase := time.Now()
		for range 4 {
			r.offer("p")
		}
		advance(time.Minute)
		sends = r.snd.all()[len(want):]
		if len(sends) != 4 {
			t.Fatalf("%d sends at 30/min, want 4", len(sends))
		}
		for i, s := range sends {
			if got, w := s.at.Sub(phase), time.Duration(i)*2*time.Second; got != w {
				t.Errorf("send %d at 30/min at +%v, want +%v", i, got, w)
			}
		}
	})
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func minOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}

// While the circuit is open, jobs are refused before they wait for the rate limiter: at 60/min a
// down destination's queued jobs reach the park at once, not one a second.
func TestTimingOpenCircuitParksWithoutWaitingForTheLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const trips = 2
		opts := Options{BreakerTrips: trips, BreakerTimeout: time.Hour, DrainInterval: drainTick,
			Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}
		r := startRig(t, opts, 60, func(string, int, int) reply { return unavailable(0) })
		defer r.close()

		r.offer("a")
		advance(3 * time.Second) // two failures one second apart (60/min) open the circuit
		if s := r.d.BreakerState(rigDest); s != "open" {
			t.Fatalf("circuit %s after %d failures", s, trips)
		}
		start := time.Now()
		var ids []string
		for _, p := range profilesOnDistinctWorkers(10, 16) {
			ids = append(ids, r.offer(p))
		}
		synctest.Wait()
		if time.Since(start) != 0 {
			t.Fatalf("fake time moved")
		}
		for _, id := range ids {
			if _, ok := r.st.parkedRow(id); !ok {
				t.Fatalf("%s is not parked at once while the circuit is open (it waits for the limiter)", id)
			}
		}
		if n := r.snd.count(); n != trips {
			t.Fatalf("%d sends, want the %d that opened the circuit", n, trips)
		}
	})
}

// At 3,000/min a lane that has been idle sends a burst of 20 at once and then one every
// 60/2,981 s, and no 60-second window holds more than 3,001 calls (the bound of one call every
// 20 ms); a lane that has just started has no burst to spend.
func TestTimingRateLimitBurstKeepsTheMinuteBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3300
		r := startRig(t, Options{}, 3000, func(string, int, int) reply { return ok200() })
		defer r.close()

		// A new lane: its first two calls are one interval apart, not a burst.
		start := time.Now()
		r.offer("warm-1")
		r.offer("warm-2")
		advance(time.Second)
		warm := r.snd.all()
		if len(warm) != 2 || warm[1].at.Sub(warm[0].at) < 20*time.Millisecond {
			t.Fatalf("a new lane's first calls: %v after start, want 2 at least 20ms apart", atOffsets(warm, start))
		}

		// Idle for a second: the bucket is full.
		burstAt := time.Now()
		for i := range n {
			r.offer(fmt.Sprintf("p%04d", i))
		}
		advance(3 * time.Minute)
		sends := r.snd.all()[2:]
		if len(sends) != n {
			t.Fatalf("%d sends, want %d", len(sends), n)
		}
		at := func(i int) time.Duration { return sends[i].at.Sub(burstAt) }
		if at(19) != 0 || at(20) == 0 {
			t.Errorf("burst: call 20 at +%v, call 21 at +%v; want 20 at once, then the rate", at(19), at(20))
		}
		interval := time.Minute / 2981
		for i := 21; i < n; i++ {
			if gap := sends[i].at.Sub(sends[i-1].at); gap < interval-time.Microsecond || gap > interval+time.Millisecond {
				t.Fatalf("call %d came %v after the previous one, want %v", i, gap, interval)
			}
		}
		all := r.snd.all()
		for i, j := 0, 0; i < len(all); i++ {
			for j < len(all) && all[j].at.Sub(all[i].at) <= time.Minute {
				j++
			}
			if j-i > 3001 {
				t.Fatalf("%d calls in the 60 s from +%v", j-i, all[i].at.Sub(start))
			}
		}
	})
}

func TestLimiterShapeHoldsTheMinute(t *testing.T) {
	for _, perMin := range []int{1, 2, 59, 60, 149, 150, 299, 300, 1000, 3000, 6000, 100000} {
		lim, burst := limiterShape(perMin)
		if burst < 1 || burst > 20 || lim <= 0 {
			t.Errorf("%d/min: burst %d, rate %v", perMin, burst, lim)
		}
		if most := float64(burst) + 60*float64(lim); most > float64(perMin)+1+1e-9 {
			t.Errorf("%d/min: up to %.2f calls in 60 s", perMin, most)
		}
		if float64(lim)*60 < float64(perMin)*0.99 && perMin >= 3000 {
			t.Errorf("%d/min: sustained %.1f/min, more than 1%% below the limit", perMin, float64(lim)*60)
		}
	}
	if l := newLimiter(3000); l.Tokens() > 1.01 {
		t.Errorf("a new limiter holds %.2f tokens, want 1", l.Tokens())
	}
}

func atOffsets(s []sendRec, from time.Time) []time.Duration {
	var out []time.Duration
	for _, x := range s {
		out = append(out, x.at.Sub(from))
	}
	return out
}
