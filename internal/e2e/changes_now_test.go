//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
)

// TestChangesApplyAtOnceOnEveryNode: two serve processes on one PostgreSQL schema, polling the
// store for destination changes only once an hour, so only the configuration generation can
// make a change reach the other node; both route profile updates (each holds partitions of the
// profile-update topic) before the first change. Each change is acknowledged by one node and profiles are
// ingested on a node right after the acknowledgement; every one of them must be routed and
// delivered under the change:
//   - created through node 1, ingested on node 2: every update delivered;
//   - attribute mappings changed: every payload shaped with the new mapping;
//   - audiences changed: members of the new audience delivered, of the old one not routed;
//   - token rotated (the workflow refuses the old token from then on): no call with the old
//     token for an update accepted after the rotation;
//   - paused: nothing accepted after the pause is sent until the resume, then all of it;
//   - deleted: nothing accepted after the deletion is routed to it or sent.
//
// After the first phase, changes go through the node that does not send to the destination
// (its claim is held by the other). The rotation, pause and deletion are then followed by
// profiles that only that node's router routes, so the sending node learns of the change from
// the jobs alone.
func TestChangesApplyAtOnceOnEveryNode(t *testing.T) {
	dbURL := pgSchema(t)
	e := newEnv(t, simulator.Config{})
	n1 := e.startNode("node1", dbURL, "QGATE_REGISTRY_REFRESH=1h")
	n2 := e.startNode("node2", dbURL, "QGATE_REGISTRY_REFRESH=1h")
	all := newLedger() // every phase's accepted updates, for the final check of the runs
	ph := &phases{t: t, e: e, all: all, c: &http.Client{Timeout: 10 * time.Second}}
	ph.bothRouting(n1, n2)

	// Created through node 1; ingested on node 2 right after the 201.
	destID, wf := n1.destination("now", simulator.Workflow{}, nil)
	ph.dest, ph.wf = destID, wf
	l := ph.ingest(n2, emails("created", 30), []string{"aud-now"}, true)
	ph.delivered("created through node 1, ingested on node 2", n2, l)

	sender, other := ph.holder(n1, n2)
	// Profiles only the other node's router routes: the sender then learns of a change made
	// through the other node from the jobs alone (its own router never sees them).
	pool := ph.routedOnlyBy(other, sender, 20)
	t.Logf("%s sends to the destination; changes go through %s", sender.name, other.name)

	// Attribute mappings: the payload of every update accepted afterwards has the new shape.
	ph.change(other, "PATCH", "", map[string]any{"attributeMappings": []any{map[string]any{"source": "person.name.firstName", "target": "givenName"}}})
	l = ph.ingest(other, emails("mapped", 20), []string{"aud-now"}, true)
	for _, r := range ph.runsOf(ph.delivered("mapping changed", other, l)) {
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			fatalf(t, "run body: %v", err)
		}
		if string(body["givenName"]) != `"Eve"` || body["person"] != nil {
			errorf(t, "payload of an update accepted after the mapping change shaped with the old mapping: %s", r.Body)
		}
	}

	// Audiences: members of the new audience are delivered; members of the old one only are
	// no longer routed to it.
	ph.change(other, "PATCH", "", map[string]any{"audiences": []any{"aud-new"}})
	lnew := ph.ingest(other, emails("newaud", 20), []string{"aud-new"}, true)
	lold := ph.ingest(other, emails("oldaud", 20), []string{"aud-now"}, false)
	ph.delivered("audiences changed, new audience", other, lnew)
	for id, rs := range awaitRouted(t, other, lold, 30*time.Second) {
		for _, r := range rs {
			if r.DestinationID == destID {
				errorf(t, "update %s of the old audience only, accepted after the change, was routed to the destination (%s)", id, r.Status)
			}
		}
	}

	// Token rotation: the workflow refuses the old token from now on; no update accepted
	// after the rotation answer is sent with it.
	const newToken = "token-now-rotated-0002"
	e.sim.AddWorkflow(simulator.Workflow{ID: wf, Username: "user-now", Token: newToken})
	ph.change(other, "PATCH", "", map[string]any{"apiToken": newToken})
	l = ph.ingest(other, pool, []string{"aud-new"}, true)
	keys := ph.keys(l)
	ph.delivered("token rotated", other, l)
	for _, r := range e.sim.Runs(wf) {
		if keys[r.IdempotencyKey] && r.Status == http.StatusUnauthorized {
			errorf(t, "delivery %s of an update accepted after the rotation was sent with the old token at %s", r.IdempotencyKey, r.Time.Format("15:04:05.000"))
		}
	}

	// Pause: nothing accepted afterwards is sent while paused; on resume all of it is.
	ph.change(other, "POST", "/pause", nil)
	lp := ph.ingest(other, pool, []string{"aud-new"}, true)
	for id, rs := range awaitRouted(t, other, lp, 30*time.Second) {
		if len(rs) != 1 || rs[0].DestinationID != destID || rs[0].Status != delivery.Pending {
			errorf(t, "update %s accepted after the pause: %+v, want one pending delivery", id, rs)
		}
	}
	// The scenario itself: the pause holds for this long, while a node that missed it
	// would be sending.
	time.Sleep(1500 * time.Millisecond)
	heldKeys := ph.keys(lp)
	for _, r := range e.sim.Runs(wf) {
		if heldKeys[r.IdempotencyKey] {
			errorf(t, "delivery %s of an update accepted after the pause was sent while paused, at %s", r.IdempotencyKey, r.Time.Format("15:04:05.000"))
		}
	}
	resumed := time.Now()
	ph.change(other, "POST", "/resume", nil)
	// The same profiles again: these jobs queue behind the held ones, and still carry the
	// resume to the sender.
	lr := ph.ingest(other, pool, []string{"aud-new"}, true)
	ph.delivered("resumed", other, lr)
	ph.delivered("held by the pause, after the resume", other, lp)
	for _, r := range e.sim.Runs(wf) {
		if heldKeys[r.IdempotencyKey] && r.Time.Before(resumed) {
			errorf(t, "delivery %s held by the pause was sent at %s, before the resume (%s)", r.IdempotencyKey, r.Time.Format("15:04:05.000"), resumed.Format("15:04:05.000"))
		}
	}

	// Deletion: nothing accepted afterwards is routed to it or sent.
	ph.change(other, "DELETE", "", nil)
	ld := ph.ingest(other, pool, []string{"aud-new"}, false)
	deletedKeys := map[string]bool{}
	for id, rs := range awaitRouted(t, other, ld, 30*time.Second) {
		deletedKeys[delivery.ID(id, destID)] = true
		for _, r := range rs {
			if r.DestinationID == destID && (r.Status != delivery.Excluded || r.Reason != delivery.ReasonDestinationDeleted) {
				errorf(t, "update %s accepted after the deletion: delivery %s (%s), want none or excluded destination_deleted", id, r.Status, r.Reason)
			}
		}
	}
	// Give a node that missed the deletion the time to send (the scenario, not a wait for
	// an event: there must be none).
	time.Sleep(1500 * time.Millisecond)
	for _, r := range e.sim.Runs(wf) {
		if deletedKeys[r.IdempotencyKey] {
			errorf(t, "delivery %s of an update accepted after the deletion reached the workflow", r.IdempotencyKey)
		}
	}

	// Every run at the workflow belongs to an update that was to reach it, and every delivery
	// reported delivered has a successful run.
	recs := awaitTerminal(t, n1, all, 30*time.Second)
	rc := checkRuns(t, e, map[string]string{destID: wf}, all, recs)
	t.Logf("%d updates, %d deliveries delivered, %d runs (%v)", all.accepted(), rc.delivered, rc.runs, rc.byStatus)
}

// phases holds what the phases of TestChangesApplyAtOnceOnEveryNode share.
type phases struct {
	t        *testing.T
	e        *env
	c        *http.Client
	all      *ledger
	dest, wf string
}

// emails returns k new addresses.
func emails(prefix string, k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d@example.com", prefix, i)
	}
	return out
}

// ingest sends profiles with these emails, members of auds, to n in one request (retrying
// 503s) and records them in the phase's ledger and in all; routed says whether they must
// reach the destination.
func (p *phases) ingest(n *node, addrs []string, auds []string, routed bool) *ledger {
	p.t.Helper()
	var dests []string
	if routed {
		dests = []string{p.dest}
	}
	items := make([]item, len(addrs))
	for i, a := range addrs {
		items[i] = newItem(a, auds, dests)
	}
	l := newLedger()
	if err := l.sendAll(context.Background(), func(int) *node { return n }, p.c, items, time.Now().Add(20*time.Second)); err != nil {
		fatalf(p.t, "ingest %s… on %s: %v", addrs[0], n.name, err)
	}
	l.mu.Lock()
	p.all.mu.Lock()
	for id, it := range l.updates {
		p.all.updates[id] = it
	}
	p.all.mu.Unlock()
	l.mu.Unlock()
	return l
}

// change sends an operator request for the destination to n and fails unless it succeeded.
func (p *phases) change(n *node, method, suffix string, body any) {
	p.t.Helper()
	status, resp := n.must(method, "/v1/destinations/"+p.dest+suffix, p.e.operatorKey, body)
	if status != http.StatusOK && status != http.StatusNoContent {
		fatalf(p.t, "%s %s on %s: %d %s", method, suffix, n.name, status, resp)
	}
}

// delivered waits until every update of l is finished and reports each one whose delivery to
// the destination is not delivered; it returns the deliveries by update.
func (p *phases) delivered(what string, n *node, l *ledger) map[string][]delivery.Record {
	p.t.Helper()
	recs := awaitTerminal(p.t, n, l, 40*time.Second)
	bad := 0
	for id, rs := range recs {
		for _, r := range rs {
			if r.DestinationID == p.dest && r.Status != delivery.Delivered {
				bad++
				if bad <= 5 {
					errorf(p.t, "%s: update %s ended %s (%s), want delivered", what, id, r.Status, r.Reason)
				}
			}
		}
	}
	if bad > 5 {
		errorf(p.t, "%s: %d updates not delivered in all", what, bad)
	}
	return recs
}

// keys returns the Idempotency-Keys of l's deliveries to the destination.
func (p *phases) keys(l *ledger) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for id := range l.updates {
		out[delivery.ID(id, p.dest)] = true
	}
	return out
}

// runsOf returns the successful runs at the workflow of the delivered deliveries in recs.
func (p *phases) runsOf(recs map[string][]delivery.Record) []simulator.Run {
	keys := map[string]bool{}
	for id := range recs {
		keys[delivery.ID(id, p.dest)] = true
	}
	var out []simulator.Run
	for _, r := range p.e.sim.Runs(p.wf) {
		if keys[r.IdempotencyKey] && r.Status >= 200 && r.Status < 300 {
			out = append(out, r)
		}
	}
	if len(out) < len(recs) {
		errorf(p.t, "%d successful runs for %d delivered updates", len(out), len(recs))
	}
	return out
}

// holder returns the node that sends to the destination (holds its claim, so its stats say
// "node") and the other one.
func (p *phases) holder(a, b *node) (sender, other *node) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, pair := range [][2]*node{{a, b}, {b, a}} {
			status, body := pair[0].must("GET", "/v1/destinations/"+p.dest+"/stats", p.e.operatorKey, nil)
			var v struct {
				Circuit struct {
					Source string `json:"source"`
				} `json:"circuit"`
			}
			if status == http.StatusOK && json.Unmarshal(body, &v) == nil && v.Circuit.Source == "node" {
				return pair[0], pair[1]
			}
		}
		if time.Now().After(deadline) {
			fatal(p.t, "neither node holds the destination 15 s after delivering to it")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bothRouting ingests profiles of no destination until both nodes' routers have routed some
// (each holds partitions of the profile-update topic), so that later profiles are routed by
// both nodes, not only the one that made a change.
func (p *phases) bothRouting(a, b *node) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for k := 0; ; k++ {
		l := newLedger()
		items := make([]item, 20)
		for i := range items {
			items[i] = newItem(fmt.Sprintf("warm%d-%d@example.com", k, i), []string{"aud-warm"}, nil)
		}
		if err := l.sendAll(context.Background(), func(int) *node { return a }, p.c, items, time.Now().Add(20*time.Second)); err != nil {
			fatal(p.t, err)
		}
		awaitRouted(p.t, a, l, 30*time.Second)
		ra, rb := routed(p.t, a), routed(p.t, b)
		if ra > 0 && rb > 0 {
			return
		}
		if time.Now().After(deadline) {
			fatalf(p.t, "after 60 s, %s routed %v updates and %s %v: not both routing", a.name, ra, b.name, rb)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// routedOnlyBy returns k addresses whose profiles the router of by routes (their partition of
// the profile-update topic is by's), found by ingesting candidates one at a time on by (members
// of no destination's audience) and watching both nodes' routed counters.
func (p *phases) routedOnlyBy(by, not *node, k int) []string {
	p.t.Helper()
	var out []string
	for i := 0; len(out) < k; i++ {
		if i == 20*k {
			fatalf(p.t, "%d of %d candidates routed by %s only", len(out), i, by.name)
		}
		addr := fmt.Sprintf("pool-%d@example.com", i)
		b0, n0 := routed(p.t, by), routed(p.t, not)
		l := newLedger()
		if err := l.sendAll(context.Background(), func(int) *node { return by }, p.c, []item{newItem(addr, []string{"aud-warm"}, nil)}, time.Now().Add(20*time.Second)); err != nil {
			fatal(p.t, err)
		}
		awaitRouted(p.t, by, l, 30*time.Second)
		// The update is recorded before its batch is counted: wait for the count.
		deadline := time.Now().Add(10 * time.Second)
		for {
			b1, n1 := routed(p.t, by), routed(p.t, not)
			if b1+n1 > b0+n0 {
				if b1 > b0 && n1 == n0 {
					out = append(out, addr)
				}
				break
			}
			if time.Now().After(deadline) {
				fatalf(p.t, "update of %s routed but counted by neither router", addr)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return out
}

// routed reads qgate_router_updates_total from n's /metrics.
func routed(t *testing.T, n *node) float64 {
	t.Helper()
	status, body := n.must("GET", "/metrics", "", nil)
	if status != http.StatusOK {
		fatalf(t, "GET /metrics on %s: %d", n.name, status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "qgate_router_updates_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				fatalf(t, "qgate_router_updates_total on %s: %v", n.name, err)
			}
			return f
		}
	}
	fatalf(t, "no qgate_router_updates_total on %s", n.name)
	return 0
}

// awaitRouted polls GET /v1/updates/{id} on n until every update of l is routed and returns
// the deliveries by update; it fails the test naming what is missing.
func awaitRouted(t *testing.T, n *node, l *ledger, within time.Duration) map[string][]delivery.Record {
	t.Helper()
	l.mu.Lock()
	ids := make([]string, 0, len(l.updates))
	for id := range l.updates {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	c := &http.Client{Timeout: 10 * time.Second}
	got := map[string][]delivery.Record{}
	deadline := time.Now().Add(within)
	for len(got) < len(ids) {
		var lastErr error
		for _, id := range ids {
			if _, ok := got[id]; ok {
				continue
			}
			rs, err := updateDeliveries(n, c, id)
			if err != nil {
				lastErr = err
			} else if rs != nil {
				got[id] = rs
			}
		}
		if len(got) == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			fatalf(t, "%d of %d updates routed within %s (last error: %v)", len(got), len(ids), within, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}
