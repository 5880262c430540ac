//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
)

// item is one profile to ingest and the destinations it must reach.
type item struct {
	email string
	dests []string
	raw   []byte
	seq   int    // the profile's n-th update (orderedLoad), 0 elsewhere
	tag   string // the update's own mark in its payload (loadTag, orderedLoad); "": the email marks it
}

// ref is what marks the item in the ledger's ambiguous and refused sets, and in a run (runRef).
func (it item) ref() string {
	if it.tag != "" {
		return it.tag
	}
	return it.email
}

// newItem is a valid profile with a plaintext email, a member of auds.
func newItem(email string, auds, dests []string) item {
	ups := map[string]any{}
	for _, a := range auds {
		ups[a] = map[string]any{"lastQualificationTime": "2024-05-06T07:08:09Z", "status": "realized"}
	}
	raw, _ := json.Marshal(map[string]any{
		"person":            map[string]any{"name": map[string]any{"firstName": "Eve"}},
		"identityMap":       map[string]any{"Email": []any{map[string]any{"id": email}}},
		"segmentMembership": map[string]any{"ups": ups},
	})
	return item{email: email, dests: dests, raw: raw}
}

func batchBody(items []item) []byte {
	var b strings.Builder
	b.WriteString(`{"profiles":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it.raw)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// ingestResult is what one POST /v1/profiles got.
type ingestResult struct {
	node       string
	start      time.Time
	dur        time.Duration
	status     int // 0: no HTTP answer (err)
	retryAfter string
	err        error
	sent       int
	accepted   int
	rejected   int
}

func (r ingestResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s +%s after %s: error %v", r.node, r.start.Format("15:04:05.000"), r.dur.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%s +%s after %s: %d (Retry-After %q) accepted %d/%d", r.node, r.start.Format("15:04:05.000"), r.dur.Round(time.Millisecond), r.status, r.retryAfter, r.accepted, r.sent)
}

// ledger records what qgate's receiver accepted: every result "accepted" with an updateId, in
// a 202 or in a partly accepted 503.
type ledger struct {
	mu        sync.Mutex
	updates   map[string]item      // updateId → profile
	at        map[string]time.Time // updateId → when its 202 (or partial 503) arrived
	ambiguous map[string]bool      // refs (item.ref) sent in a request that got no (readable) answer, or answered "may still have been written": maybe queued
	refused   map[string]bool      // refs answered "not accepted, not written" (503): must never be delivered
	results   []ingestResult
}

func newLedger() *ledger {
	return &ledger{updates: map[string]item{}, at: map[string]time.Time{}, ambiguous: map[string]bool{}, refused: map[string]bool{}}
}

func (l *ledger) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.updates)
}

func (l *ledger) allResults() []ingestResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// send posts items once and returns the result and the items not accepted (to send again).
func (l *ledger) send(ctx context.Context, n *node, c *http.Client, items []item) (ingestResult, []item) {
	res := ingestResult{node: n.name, start: time.Now(), sent: len(items)}
	status, body, hdr, err := n.do(ctx, c, "POST", "/v1/profiles", n.e.ingestKey, batchBody(items))
	res.dur = time.Since(res.start)
	res.status, res.err = status, err
	if hdr != nil {
		res.retryAfter = hdr.Get("Retry-After")
	}
	var rest []item
	var v struct {
		Results []struct {
			Index    int    `json:"index"`
			UpdateID string `json:"updateId"`
			Status   string `json:"status"`
			Errors   []struct {
				Message string `json:"message"`
			} `json:"errors"`
		} `json:"results"`
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		// No answer, or one whose body could not be read (the node died while writing it,
		// after its status line): what the request did is unknown, its profiles may be queued.
		for _, it := range items {
			l.ambiguous[it.ref()] = true
		}
		rest = items
	case json.Unmarshal(body, &v) == nil && len(v.Results) == len(items):
		for i, r := range v.Results {
			switch {
			case r.Status == "accepted" && r.UpdateID != "":
				l.updates[r.UpdateID] = items[i]
				l.at[r.UpdateID] = res.start.Add(res.dur)
				res.accepted++
			case r.Status == "rejected":
				res.rejected++
			case len(r.Errors) > 0 && strings.Contains(r.Errors[0].Message, "may still have been written"):
				// The broker may have written it (a produce timed out on the wire, or the
				// leader appended it but acks=all timed out): not accepted, but it may land.
				l.ambiguous[items[i].ref()] = true
				rest = append(rest, items[i])
			default:
				l.refused[items[i].ref()] = true
				rest = append(rest, items[i])
			}
		}
	default:
		rest = items
		if res.err == nil && status != http.StatusServiceUnavailable {
			res.err = fmt.Errorf("unexpected answer %d: %.300s", status, body)
		}
	}
	l.results = append(l.results, res)
	return res, rest
}

// sendAll sends items until every one is accepted (retrying 503s and connection errors, with
// a short pause), or until deadline. pick chooses the node of each attempt.
func (l *ledger) sendAll(ctx context.Context, pick func(attempt int) *node, c *http.Client, items []item, deadline time.Time) error {
	rest := items
	for attempt := 0; attempt < 1000; attempt++ {
		res, r := l.send(ctx, pick(attempt), c, rest)
		if res.rejected > 0 {
			return fmt.Errorf("%d valid profiles rejected: %s", res.rejected, res)
		}
		if rest = r; len(rest) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d profiles still not accepted at the deadline; last: %s", len(rest), res)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("gave up after 1000 attempts")
}

// awaitTerminal polls GET /v1/updates/{id} on n until every accepted update has a terminal
// delivery (delivered, dead_lettered, excluded) for each of its destinations, or within passes;
// then it fails the test naming what is missing. It returns the deliveries by update.
func awaitTerminal(t *testing.T, n *node, l *ledger, within time.Duration) map[string][]delivery.Record {
	t.Helper()
	l.mu.Lock()
	want := make(map[string]item, len(l.updates))
	for id, it := range l.updates {
		want[id] = it
	}
	l.mu.Unlock()
	got := make(map[string][]delivery.Record, len(want))
	pending := make([]string, 0, len(want))
	for id := range want {
		pending = append(pending, id)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(within)
	var lastErr error
	for pass := 0; len(pending) > 0; pass++ {
		var mu sync.Mutex
		var next []string
		work := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for id := range work {
					recs, err := updateDeliveries(n, client, id)
					done := err == nil && allTerminal(recs, want[id].dests)
					mu.Lock()
					if err != nil {
						lastErr = err
					}
					if recs != nil {
						got[id] = recs
					}
					if !done {
						next = append(next, id)
					}
					mu.Unlock()
				}
			})
		}
		for _, id := range pending {
			work <- id
		}
		close(work)
		wg.Wait()
		pending = next
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			byStatus := map[string]int{}
			for _, id := range pending {
				if len(got[id]) == 0 {
					byStatus["not routed"]++
				}
				for _, d := range got[id] {
					byStatus[string(d.Status)]++
				}
			}
			for i, id := range pending[:min(5, len(pending))] {
				j, _ := json.Marshal(got[id])
				fmt.Fprintf(&b, "\n  %d. update %s (%s) deliveries %s", i+1, id, want[id].email, j)
			}
			errorf(t, "%d of %d accepted updates not finished after %s (by delivery status: %v; last error: %v), e.g.:%s",
				len(pending), len(want), within, byStatus, lastErr, b.String())
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return got
}

func updateDeliveries(n *node, c *http.Client, updateID string) ([]delivery.Record, error) {
	status, body, _, err := n.do(context.Background(), c, "GET", "/v1/updates/"+updateID, n.e.supportKey, nil)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, nil // not routed yet
	case status != http.StatusOK:
		return nil, fmt.Errorf("GET /v1/updates/%s: %d %.200s", updateID, status, body)
	}
	var v struct {
		Deliveries []delivery.Record `json:"deliveries"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return v.Deliveries, nil
}

func allTerminal(recs []delivery.Record, dests []string) bool {
	for _, d := range dests {
		i := slices.IndexFunc(recs, func(r delivery.Record) bool { return r.DestinationID == d })
		if i < 0 || !recs[i].Status.Terminal() {
			return false
		}
	}
	return true
}

// runCheck is what checkRuns found at the simulator.
type runCheck struct {
	runs       int            // runs at the checked workflows
	perKey     map[string]int // runs per Idempotency-Key
	unknownOK  int            // runs of a profile whose request got no answer (maybe queued)
	refusedRun []string       // runs of a profile answered "not accepted" (503), under a key of no accepted update
	byStatus   map[int]int
	wfOfDest   map[string]string
	delivered  int
	terminalBy map[delivery.Status]int
}

// checkRuns checks every run at the workflows of dests against the ledger: its Idempotency-Key
// must be delivery.ID(update, destination) of an accepted update routed there (or the run is of
// a profile whose request got no answer, which qgate may have queued); and every delivered
// delivery's key must have at least one successful run. Runs of profiles qgate answered "not
// accepted" are returned in refusedRun for the caller to judge.
func checkRuns(t *testing.T, e *env, wfOfDest map[string]string, l *ledger, recs map[string][]delivery.Record) runCheck {
	t.Helper()
	l.mu.Lock()
	expected := map[string]string{} // key → destination
	for id, it := range l.updates {
		for _, d := range it.dests {
			expected[delivery.ID(id, d)] = d
		}
	}
	ambiguous := make(map[string]bool, len(l.ambiguous))
	for k := range l.ambiguous {
		ambiguous[k] = true
	}
	refused := make(map[string]bool, len(l.refused))
	for k := range l.refused {
		refused[k] = true
	}
	l.mu.Unlock()

	rc := runCheck{perKey: map[string]int{}, byStatus: map[int]int{}, wfOfDest: wfOfDest, terminalBy: map[delivery.Status]int{}}
	okRun := map[string]bool{}
	var bad []string
	for dest, wf := range wfOfDest {
		st := e.sim.Stats().Workflows[wf]
		runs := e.sim.Runs(wf)
		if int64(len(runs)) != st.Runs {
			fatalf(t, "workflow %s dropped runs from its history (%d kept of %d): raise simulator MaxRuns", wf, len(runs), st.Runs)
		}
		for _, r := range runs {
			rc.runs++
			rc.byStatus[r.Status]++
			rc.perKey[r.IdempotencyKey]++
			if d, ok := expected[r.IdempotencyKey]; ok && d == dest {
				if r.Status >= 200 && r.Status < 300 {
					okRun[r.IdempotencyKey] = true
				}
				continue
			}
			if ambiguous[runRef(r)] {
				rc.unknownOK++
				continue
			}
			if refused[runRef(r)] {
				rc.refusedRun = append(rc.refusedRun, fmt.Sprintf("%s key %q status %d email %q at %s", wf, r.IdempotencyKey, r.Status, runEmail(r), r.Time.Format("15:04:05.000")))
				continue
			}
			bad = append(bad, fmt.Sprintf("%s key %q status %d email %q", wf, r.IdempotencyKey, r.Status, runEmail(r)))
		}
	}
	if len(bad) > 0 {
		errorf(t, "%d runs carry an Idempotency-Key of no accepted (update, destination), e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	var missing []string
	for id, rs := range recs {
		for _, d := range rs {
			rc.terminalBy[d.Status]++
			if d.Status != delivery.Delivered {
				continue
			}
			rc.delivered++
			if !okRun[delivery.ID(id, d.DestinationID)] {
				missing = append(missing, fmt.Sprintf("update %s → %s", id, d.DestinationID))
			}
		}
	}
	if len(missing) > 0 {
		errorf(t, "%d deliveries reported delivered have no successful run at the simulator, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	return rc
}

// runRef is what marks a run's update: the payload's loadTag (orderedLoad), else its email.
func runRef(r simulator.Run) string {
	var v struct {
		LoadTag string `json:"loadTag"`
	}
	if json.Unmarshal(r.Body, &v) == nil && v.LoadTag != "" {
		return v.LoadTag
	}
	return runEmail(r)
}

// runEmail is the email a run's payload carries (identityMap.Email[0].id or email).
func runEmail(r simulator.Run) string {
	var v struct {
		Email       string `json:"email"`
		IdentityMap struct {
			Email []struct {
				ID string `json:"id"`
			} `json:"Email"`
		} `json:"identityMap"`
	}
	_ = json.Unmarshal(r.Body, &v)
	if len(v.IdentityMap.Email) > 0 {
		return v.IdentityMap.Email[0].ID
	}
	return v.Email
}
