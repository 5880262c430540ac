//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// orderedLoad is the ingest load of the cluster fault tests that check order: three clients,
// each a batch of perTick profiles every 200 ms (2: 30 profiles/s, below a destination's 3,000
// calls/min, so that a wait measures a fault and not the rate limit), over 20 profiles of its
// own (60 in all). A client sends one request at a time and only
// its own profiles, so a profile's accepted updates were accepted in the order of their seq;
// each update carries its own mark (loadTag "<email>#<seq>"), so a run of an update qgate did
// not accept is told apart from its profile's accepted ones. Each batch is sent once: what is
// not accepted is not sent again.
type orderedLoad struct {
	l      *ledger
	stop   chan struct{}
	wg     sync.WaitGroup
	target atomic.Pointer[func() *node]
}

const orderedClients, orderedProfiles = 3, 20

func startOrderedLoad(pick func() *node, perTick int, prefix, audience string, dests []string) *orderedLoad {
	ol := &orderedLoad{l: newLedger(), stop: make(chan struct{})}
	ol.target.Store(&pick)
	for w := range orderedClients {
		ol.wg.Go(func() {
			c := &http.Client{Timeout: 20 * time.Second}
			seq := make([]int, orderedProfiles)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			next := 0
			for k := 0; k < 1500; k++ { // bounded: ~300 s at most
				select {
				case <-ol.stop:
					return
				case <-tick.C:
				}
				b := make([]item, perTick)
				for i := range b {
					p := next % orderedProfiles
					next++
					seq[p]++
					email := fmt.Sprintf("%s-%d-%d@example.com", prefix, w, p)
					b[i] = orderedItem(email, seq[p], audience, dests)
				}
				ol.l.send(context.Background(), (*ol.target.Load())(), c, b)
			}
		})
	}
	return ol
}

// orderedItem is update seq of profile email, marked "<email>#<seq>" in its payload.
func orderedItem(email string, seq int, audience string, dests []string) item {
	tag := fmt.Sprintf("%s#%d", email, seq)
	raw, _ := json.Marshal(map[string]any{
		"person":            map[string]any{"name": map[string]any{"firstName": "Eve"}},
		"loadTag":           tag,
		"identityMap":       map[string]any{"Email": []any{map[string]any{"id": email}}},
		"segmentMembership": map[string]any{"ups": map[string]any{audience: map[string]any{"lastQualificationTime": "2024-05-06T07:08:09Z", "status": "realized"}}},
	})
	return item{email: email, dests: dests, raw: raw, seq: seq, tag: tag}
}

// sendTo makes the clients send to pick's node from their next request on.
func (ol *orderedLoad) sendTo(pick func() *node) { ol.target.Store(&pick) }

// awaitAccepted waits until n updates were accepted.
func (ol *orderedLoad) awaitAccepted(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for ol.l.accepted() < n {
		if time.Now().After(deadline) {
			fatalf(t, "fewer than %d profiles accepted within %s: %v", n, within, ol.l.allResults())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ol *orderedLoad) end() {
	select {
	case <-ol.stop:
	default:
		close(ol.stop)
	}
	ol.wg.Wait()
}

// checkIngest asserts that every request of the load got 202, or 503 with Retry-After, within
// bound, and returns the 503s and when the last one was answered (zero: none).
func checkIngest(t *testing.T, l *ledger, bound time.Duration) (unavailable int, lastBad time.Time) {
	t.Helper()
	for _, r := range l.allResults() {
		switch {
		case r.err != nil:
			errorf(t, "request without a proper answer: %s", r)
		case r.status == http.StatusServiceUnavailable:
			unavailable++
			if r.retryAfter == "" {
				errorf(t, "503 without Retry-After: %s", r)
			}
			if end := r.start.Add(r.dur); end.After(lastBad) {
				lastBad = end
			}
		case r.status != http.StatusAccepted:
			errorf(t, "answer other than 202 or 503: %s", r)
		}
		if r.dur > bound {
			errorf(t, "request took %s (bound %s): %s", r.dur.Round(time.Millisecond), bound, r)
		}
	}
	return unavailable, lastBad
}

// orderCheck is what checkOrder found.
type orderCheck struct {
	pairs      int // (profile, destination) pairs with runs
	duplicates int // successful runs beyond the first for one Idempotency-Key
	// waits are, per accepted (update, destination), the time from its 202 to its first
	// successful run, with the 202's time.
	waits []updateWait
}

type updateWait struct {
	accepted time.Time
	wait     time.Duration
}

// checkOrder checks, for every (profile, destination), that the first successful runs of the
// profile's accepted updates reached the destination in the order of their seq (a later
// update never overtakes an earlier one, whatever was sent again), and counts the repeated
// successful runs of one key. It does not repeat checkRuns' ledger check.
func checkOrder(t *testing.T, e *env, wfOfDest map[string]string, l *ledger) orderCheck {
	t.Helper()
	l.mu.Lock()
	type upd struct {
		it item
		at time.Time
	}
	byKey := map[string]upd{} // Idempotency-Key → its update
	for id, it := range l.updates {
		for _, d := range it.dests {
			byKey[delivery.ID(id, d)] = upd{it, l.at[id]}
		}
	}
	l.mu.Unlock()
	var oc orderCheck
	var bad []string
	for dest, wf := range wfOfDest {
		seen := map[string]bool{}
		lastSeq := map[string]int{} // email → seq of its last first-delivered update
		for _, r := range e.sim.Runs(wf) {
			u, ok := byKey[r.IdempotencyKey]
			if !ok || r.Status < 200 || r.Status >= 300 || !slices.Contains(u.it.dests, dest) {
				continue
			}
			if seen[r.IdempotencyKey] {
				oc.duplicates++
				continue
			}
			seen[r.IdempotencyKey] = true
			oc.waits = append(oc.waits, updateWait{u.at, r.Time.Sub(u.at)})
			if prev, ok := lastSeq[u.it.email]; ok && u.it.seq < prev {
				bad = append(bad, fmt.Sprintf("%s at %s: update %d after update %d (%s)", u.it.email, wf, u.it.seq, prev, r.Time.Format("15:04:05.000")))
			}
			if _, ok := lastSeq[u.it.email]; !ok {
				oc.pairs++
			}
			lastSeq[u.it.email] = max(lastSeq[u.it.email], u.it.seq)
		}
	}
	if len(bad) > 0 {
		errorf(t, "%d updates reached their destination after a later update of the same profile, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	if oc.pairs == 0 {
		errorf(t, "no (profile, destination) pair had a successful run: the order check checked nothing")
	}
	return oc
}

// longestWait is the longest wait of the updates accepted in [from, to) and first delivered
// in [deliveredFrom, deliveredTo) (a zero deliveredTo: any time after), and how many there were.
func (oc orderCheck) longestWait(from, to, deliveredFrom, deliveredTo time.Time) (longest time.Duration, n int) {
	for _, w := range oc.waits {
		done := w.accepted.Add(w.wait)
		if w.accepted.Before(from) || !w.accepted.Before(to) || done.Before(deliveredFrom) || (!deliveredTo.IsZero() && !done.Before(deliveredTo)) {
			continue
		}
		n++
		longest = max(longest, w.wait)
	}
	return longest, n
}
