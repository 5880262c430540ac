package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/receiver"
	"github.com/qgate/qgate/internal/simulator"
)

// scripts are the per-delivery response sequences of the ordering test, and whether each ends
// delivered (true) or dead-lettered (false).
var scripts = []struct {
	steps     []simulator.Step
	delivered bool
}{
	{nil, true}, // plain 200
	{[]simulator.Step{{Status: 503}, {Status: 503}, {Status: 200}}, true},
	{[]simulator.Step{{Status: 400}}, false},
	{[]simulator.Step{{Status: 503}, {Status: 400}}, false},
	{[]simulator.Step{{Status: 429, RetryAfter: "1"}, {Status: 200}}, true},
	{[]simulator.Step{{Status: 503, Delay: orderingTimeout + 300*time.Millisecond}, {Status: 200}}, true}, // the client times out
}

// deliveryTrace says, for a failure message, what qgate recorded of a delivery's attempts and
// what the simulator saw of it: a client-side timeout of a call the simulator answered shows
// up as a "timeout" attempt beside a run with a status.
func (e *deliveryEnv) deliveryTrace(wf, deliveryID string) string {
	var b strings.Builder
	status, body, _ := e.do("GET", "/v1/deliveries/"+deliveryID, e.support, nil)
	fmt.Fprintf(&b, "qgate (%d): %s; simulator runs:", status, body)
	for _, r := range e.sim.Runs(wf) {
		if r.IdempotencyKey == deliveryID {
			fmt.Fprintf(&b, " [%s %d %s]", r.Time.Format("15:04:05.000"), r.Status, r.Outcome)
		}
	}
	return b.String()
}

// timedOut reports whether qgate recorded a client-side timeout among a delivery's attempts.
func (e *deliveryEnv) timedOut(deliveryID string) bool {
	_, body, _ := e.do("GET", "/v1/deliveries/"+deliveryID, e.support, nil)
	var d struct{ Attempts []struct{ Reason string } }
	if err := json.Unmarshal(body, &d); err != nil {
		return false
	}
	for _, a := range d.Attempts {
		if a.Reason == string(qualtrics.ReasonTimeout) {
			return true
		}
	}
	return false
}

// orderingTimeout is the delivery timeout of the ordering test: generous enough that an answer
// scripted without delay never times out on a loaded machine (which would turn a scripted
// dead letter into a retry that arrives).
const orderingTimeout = 1500 * time.Millisecond

func runsFor(s []simulator.Step) int {
	if len(s) == 0 {
		return 1
	}
	if s[len(s)-1].Status == 200 {
		return len(s)
	}
	return len(s)
}

// seqOf reads the test's sequence attribute from a delivered body.
func seqOf(t *testing.T, body json.RawMessage) (string, int) {
	t.Helper()
	var b struct {
		Seq         int `json:"seq"`
		IdentityMap struct {
			Email []struct{ ID string } `json:"Email"`
		} `json:"identityMap"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.IdentityMap.Email) == 0 {
		t.Fatalf("run body %s: %v", body, err)
	}
	return b.IdentityMap.Email[0].ID, b.Seq
}

// TestOrderingAcrossRetriesAndParking follows RudderStack's ordering test: 50 profiles × 20
// updates over 3 destinations, each delivery with its own scripted response sequence; each
// destination must receive each profile's updates in order, every delivery exactly once
// successfully (or dead-lettered as scripted), with nothing arriving twice.
func TestOrderingAcrossRetriesAndParking(t *testing.T) {
	e := startDelivery(t, func(c *cfgT) { c.DeliveryTimeout = orderingTimeout })
	const profiles, updates = 50, 20
	var dests, wfs []string
	for i := range 3 {
		id, wf := e.destination(fmt.Sprintf("order%d", i), onAudienceA)
		dests, wfs = append(dests, id), append(wfs, wf)
		// Paused while the updates arrive, so each delivery's script is in place before its
		// first attempt (the script is keyed by the delivery's Idempotency-Key).
		if status, body, _ := e.do("POST", "/v1/destinations/"+id+"/pause", e.operator, nil); status != 200 {
			t.Fatalf("pause: %d %s", status, body)
		}
	}
	type key struct {
		email string
		seq   int
	}
	updateOf := map[key]string{}
	for u := range updates {
		batch := make([]any, profiles)
		for p := range profiles {
			batch[p] = sampleProfile(fmt.Sprintf("order%d@example.com", p), u)
		}
		status, body, _ := e.do("POST", "/v1/profiles", e.ingest, map[string]any{"profiles": batch})
		if status != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", status, body)
		}
		for i, r := range decode[receiver.Response](t, body).Results {
			updateOf[key{fmt.Sprintf("order%d@example.com", i), u}] = r.UpdateID
		}
	}
	expectRuns := make([]int, len(dests))
	final := map[string]bool{} // deliveryId → delivered
	for k, id := range updateOf {
		for d := range dests {
			s := scripts[(len(k.email)+k.seq*7+d)%len(scripts)]
			dl := delivery.ID(id, dests[d])
			if s.steps != nil {
				e.sim.SetKeyScript(wfs[d], dl, s.steps...)
			}
			expectRuns[d] += runsFor(s.steps)
			final[dl] = s.delivered
		}
	}
	// Every delivery is routed (and parked) before the destinations resume.
	last := updateOf[key{fmt.Sprintf("order%d@example.com", profiles-1), updates - 1}]
	e.await("routing of the last update", last, func(v supportView) bool { return len(v.Deliveries) == len(dests) })
	for _, id := range dests {
		if status, body, _ := e.do("POST", "/v1/destinations/"+id+"/resume", e.operator, nil); status != 200 {
			t.Fatalf("resume: %d %s", status, body)
		}
	}

	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		stuck := 0
		for k, id := range updateOf {
			v, _ := e.updateView(id)
			for _, d := range v.Deliveries {
				if !d.Status.Terminal() && stuck < 15 {
					stuck++
					t.Logf("stuck: %s seq %d %s status=%s reason=%s attempts=%d next=%v", k.email, k.seq, d.DeliveryID, d.Status, d.Reason, len(d.Attempts), d.NextAttemptAt)
				}
			}
		}
		_, body, _ := e.do("GET", "/metrics", "", nil)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "qgate_deliver") || strings.HasPrefix(line, "qgate_destination_circuit") {
				t.Log(line)
			}
		}
	})
	for d, wf := range wfs {
		// At 3,000 calls/min (Qualtrics' limit, held by qgate and the simulator) this takes ~40 s.
		runs := e.runsWithin(wf, expectRuns[d], 150*time.Second)
		delivered := map[string]int{}
		lastSeq := map[string]int{}
		for _, r := range runs {
			email, seq := seqOf(t, r.Body)
			if prev, ok := lastSeq[email]; ok && seq < prev {
				t.Fatalf("%s: %s received update %d after update %d", wf, email, seq, prev)
			}
			lastSeq[email] = seq
			if r.Status == 200 {
				delivered[r.IdempotencyKey]++
			}
		}
		for dl, n := range delivered {
			if n > 1 {
				t.Fatalf("%s: delivery %s arrived %d times; %s", wf, dl, n, e.deliveryTrace(wf, dl))
			}
			if !final[dl] {
				t.Fatalf("%s: delivery %s was scripted to dead-letter but arrived; %s", wf, dl, e.deliveryTrace(wf, dl))
			}
		}
		want := 0
		for k, id := range updateOf {
			if final[delivery.ID(id, dests[d])] {
				want++
			}
			_ = k
		}
		if len(delivered) != want {
			t.Fatalf("%s: %d deliveries arrived, want %d", wf, len(delivered), want)
		}
		if len(runs) != expectRuns[d] {
			t.Fatalf("%s: %d calls, want exactly %d (one per scripted step)", wf, len(runs), expectRuns[d])
		}
	}
	// The support API agrees: delivered or dead-lettered, as scripted.
	for k, id := range updateOf {
		if k.seq%5 != 0 {
			continue // a sample keeps the test fast
		}
		v := e.await("final states", id, func(v supportView) bool {
			for _, d := range v.Deliveries {
				if !d.Status.Terminal() {
					return false
				}
			}
			return len(v.Deliveries) == len(dests)
		})
		for _, d := range v.Deliveries {
			want := delivery.DeadLettered
			if final[d.DeliveryID] {
				want = delivery.Delivered
			}
			if d.Status != want {
				t.Fatalf("%s: status %s, want %s", d.DeliveryID, d.Status, want)
			}
		}
	}
}

// TestLivePathKeepsOrderUnderMixedFailures sends without pausing: the destination answers a
// mixed sequence of failures while 20 profiles × 10 updates stream in.
func TestLivePathKeepsOrderUnderMixedFailures(t *testing.T) {
	e := startDelivery(t, func(c *cfgT) { c.DeliveryTimeout = orderingTimeout })
	_, wf := e.destination("live", onAudienceA)
	var steps []simulator.Step
	for i := range 120 {
		switch i % 4 {
		case 0:
			steps = append(steps, simulator.Step{Status: 503})
		case 1:
			steps = append(steps, simulator.Step{Status: 200})
		case 2:
			steps = append(steps, simulator.Step{Status: 502})
		case 3:
			steps = append(steps, simulator.Step{Status: 200})
		}
	}
	e.sim.Script(wf, steps...)
	const profiles, updates = 20, 10
	var wg sync.WaitGroup
	for p := range profiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range updates {
				e.post(sampleProfile(fmt.Sprintf("live%d@example.com", p), u))
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := 0
		for _, r := range e.sim.Runs(wf) {
			if r.Status == 200 {
				ok++
			}
		}
		if ok >= profiles*updates {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d delivered", ok, profiles*updates)
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for _, r := range e.sim.Runs(wf) {
		email, seq := seqOf(t, r.Body)
		if seen[r.IdempotencyKey] && e.timedOut(r.IdempotencyKey) {
			// Indeterminate, not a fault: qgate's client gave up on a call the simulator
			// answered (a loaded machine), so the same delivery went again with the same
			// Idempotency-Key, in its place in the profile's order.
			continue
		}
		if seq < next[email] {
			t.Fatalf("%s: update %d attempted after update %d was delivered: %s", email, seq, next[email]-1, e.deliveryTrace(wf, r.IdempotencyKey))
		}
		if r.Status != 200 {
			continue
		}
		if seen[r.IdempotencyKey] {
			t.Fatalf("%s arrived twice: %s", r.IdempotencyKey, e.deliveryTrace(wf, r.IdempotencyKey))
		}
		seen[r.IdempotencyKey] = true
		if seq != next[email] {
			t.Fatalf("%s: delivered update %d, expected %d next", email, seq, next[email])
		}
		next[email] = seq + 1
	}
}

// TestSlowOrFailingDestinationDoesNotDelayOthers: destination B's deliveries never wait for
// destination A, whether A hangs (the limit of slow) or is down (503s, retries, an open circuit).
//
// It used to compare B's wall-clock p99 latency under each condition with a 20 %/10 ms margin,
// which a busy shared machine breaks on its own (one run in three: 65 ms against 56 ms; B's p99
// was seen at 630 ms with A healthy while other engineers' tests ran). So it now measures, for
// each condition, what B could have waited for:
//
//   - A hangs: every A call is held by the simulator, unanswered, until the phase ends, and none
//     can time out before DeliveryTimeout (20 s). All of B's deliveries of the phase must arrive
//     before that, while the simulator has answered no A call at all. Any dependency of B on
//     the completion of one of A's calls (a shared worker, a full queue blocking the consume
//     loop, a lock held across a send) would stall B until A's calls end, and fails this
//     check whatever the machine's noise short of 15 s.
//   - A down: B's median latency over interleaved rounds within 1.5× + 15 ms of its median with
//     A healthy, and its p90 within 300 ms. Medians and p90s of ~120 samples are robust to the
//     outliers of a shared machine, while a coupling to A's retry waits (200 ms–2 s), its circuit's
//     1 s probe interval or a share of its calls moves them by hundreds of milliseconds; the
//     status writes of A's retries and parking, which B's share, must stay within the margin.
//     TestDownDestinationsTimersDoNotDelayOthers checks the timers part structurally.
//
// The three conditions are measured in interleaved rounds so that the background load, which
// drifts over seconds, weighs on each alike.
func TestSlowOrFailingDestinationDoesNotDelayOthers(t *testing.T) {
	const deliveryTimeout = 20 * time.Second
	e := startDelivery(t, func(c *cfgT) {
		c.DeliveryTimeout = deliveryTimeout
		// Production-like pacing for the failing destination's retries and probes.
		c.RetryBaseDelay, c.RetryMaxDelay, c.BreakerTimeout = 200*time.Millisecond, 2*time.Second, time.Second
	})
	destA, wfA := e.destination("isoa", onAudienceA)
	_, wfB := e.destination("isob", onAudienceA)

	// sample ingests one update (routed to A and B) and returns B's latency (acknowledgement to
	// arrival at B), the arrival time and the update.
	sample := func(name string, i int) (time.Duration, time.Time, string) {
		before := len(e.sim.Runs(wfB))
		acked := time.Now()
		id := e.post(sampleProfile(fmt.Sprintf("%s%d@example.com", name, i), i))
		runs := e.runsWithin(wfB, before+1, deliveryTimeout)
		return runs[before].Time.Sub(acked), runs[before].Time, id
	}
	const rounds, perPhase = 3, 40
	var healthyL, hungL, downL []time.Duration
	for round := range rounds {
		// "Healthy" means A answers and has no backlog from the previous round left to drain.
		e.sim.Reset(wfA)
		deadline := time.Now().Add(60 * time.Second)
		for {
			n, err := e.app.Store().CountParked(context.Background(), destA)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("A still has %d parked deliveries", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var healthyIDs []string
		for i := range perPhase {
			l, _, id := sample(fmt.Sprintf("healthy%d-", round), i)
			healthyL, healthyIDs = append(healthyL, l), append(healthyIDs, id)
		}
		// A is idle before it hangs: no call of A still in flight can be answered during the
		// hung phase (the earlier rounds' backlog was drained above).
		for _, id := range healthyIDs {
			e.awaitStatus(id, destA, delivery.Delivered)
		}

		e.sim.SetHang(wfA, true)
		start, statsBefore := time.Now(), e.sim.Stats().Workflows[wfA]
		var last time.Time
		for i := range perPhase {
			l, at, _ := sample(fmt.Sprintf("hung%d-", round), i)
			hungL, last = append(hungL, l), at
		}
		statsAfter := e.sim.Stats().Workflows[wfA]
		if statsAfter.Runs != statsBefore.Runs || statsAfter.Hung == statsBefore.Hung {
			t.Fatalf("round %d: A was not hung throughout: %d calls answered, %d held", round,
				statsAfter.Runs-statsBefore.Runs, statsAfter.Hung-statsBefore.Hung)
		}
		if last.Sub(start) >= deliveryTimeout {
			t.Fatalf("round %d: B's deliveries took %v, past the moment A's held calls could time out", round, last.Sub(start))
		}
		t.Logf("round %d: %d B deliveries in %v while A held %d calls and answered none", round, perPhase,
			last.Sub(start).Round(time.Millisecond), statsAfter.Hung-statsBefore.Hung)
		e.sim.SetHang(wfA, false)

		e.sim.Script(wfA, repeat(simulator.Step{Status: 503}, 2000)...)
		downBefore := e.sim.Stats().Workflows[wfA].Runs
		for i := range perPhase {
			l, _, _ := sample(fmt.Sprintf("down%d-", round), i)
			downL = append(downL, l)
		}
		if e.sim.Stats().Workflows[wfA].Runs == downBefore {
			t.Fatalf("round %d: A answered no call while down", round)
		}
	}
	healthy, hung, down := summarize(healthyL), summarize(hungL), summarize(downL)
	t.Logf("B latency (median / p90 / p99): A healthy %v, A hung %v, A down %v", healthy, hung, down)
	if down.median > healthy.median*3/2+15*time.Millisecond || down.p90 > healthy.p90+300*time.Millisecond {
		t.Fatalf("B's latency grew while A was down: median %v → %v, p90 %v → %v", healthy.median, down.median, healthy.p90, down.p90)
	}
}

// TestDownDestinationsTimersDoNotDelayOthers is the isolation test's down condition made
// structural: A answers 503 with Retry-After: 30 and its circuit, once open, waits 30 s, so none
// of A's timers (retry waits, the probe) can fire within 30 s of the phase's start. All of B's
// deliveries must arrive before that, while A's circuit is open and its deliveries parked: had B
// waited for any of A's timers, it would have stalled until they fired.
func TestDownDestinationsTimersDoNotDelayOthers(t *testing.T) {
	const timers = 30 * time.Second
	e := startDelivery(t, func(c *cfgT) {
		c.DeliveryTimeout = 5 * time.Second
		c.RetryBaseDelay, c.RetryMaxDelay, c.BreakerTimeout = 200*time.Millisecond, 2*time.Second, timers
	})
	destA, wfA := e.destination("downa", onAudienceA)
	_, wfB := e.destination("downb", onAudienceA)
	e.sim.Script(wfA, repeat(simulator.Step{Status: 503, RetryAfter: "30"}, 2000)...)

	const n = 60
	start := time.Now()
	var last time.Time
	for i := range n {
		before := len(e.sim.Runs(wfB))
		e.post(sampleProfile(fmt.Sprintf("downb%d@example.com", i), i))
		last = e.runsWithin(wfB, before+1, timers)[before].Time
	}
	if last.Sub(start) >= timers {
		t.Fatalf("B's %d deliveries took %v, past the moment A's first timer could fire", n, last.Sub(start))
	}
	// A was down and waiting on its timers throughout: its circuit is open, it was called only
	// until the circuit opened, and its deliveries are parked.
	aRuns := e.sim.Runs(wfA)
	for _, r := range aRuns {
		if r.Status != 503 {
			t.Fatalf("A answered %d", r.Status)
		}
	}
	parked, err := e.app.Store().CountParked(context.Background(), destA)
	if err != nil {
		t.Fatal(err)
	}
	_, metrics, _ := e.do("GET", "/metrics", "", nil)
	open := fmt.Sprintf(`qgate_destination_circuit_state{destination=%q} 2`, destA)
	if !strings.Contains(string(metrics), open) || len(aRuns) == 0 || len(aRuns) >= n || parked == 0 {
		t.Fatalf("A was not held by its timers: circuit open %v, %d calls of %d, %d parked",
			strings.Contains(string(metrics), open), len(aRuns), n, parked)
	}
	t.Logf("%d B deliveries in %v while A's circuit was open (%d calls of A, %d parked)", n,
		last.Sub(start).Round(time.Millisecond), len(aRuns), parked)
}

// latencies is a summary of B's latency under one condition.
type latencies struct{ median, p90, p99 time.Duration }

func (l latencies) String() string {
	return fmt.Sprintf("%v / %v / %v", l.median.Round(100*time.Microsecond), l.p90.Round(100*time.Microsecond), l.p99.Round(100*time.Microsecond))
}

func summarize(lat []time.Duration) latencies {
	s := slices.Clone(lat)
	slices.Sort(s)
	return latencies{s[len(s)/2], s[len(s)*90/100], s[len(s)*99/100]}
}

var onAudienceA = map[string]any{"audiences": []any{audienceA}}

func repeat(s simulator.Step, n int) []simulator.Step {
	out := make([]simulator.Step, n)
	for i := range out {
		out[i] = s
	}
	return out
}
