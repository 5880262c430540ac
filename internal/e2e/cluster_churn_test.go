//go:build linux

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

// TestClusterGroupChurn (issue #11 §2.4): qgate nodes A and B on one PostgreSQL store route and
// dispatch for three destinations under 30 profiles/s over 60 profiles; node C joins mid-stream,
// then B leaves by SIGTERM, then A by SIGKILL, leaving C alone. Each change rebalances both
// consumer groups (router and dispatcher) and moves destination claims; ingest goes to the nodes
// that stay (as a load balancer would drain them). It asserts:
//   - every accepted update ends delivered to each destination, only keys of accepted updates
//     reach the simulator, and per (profile, destination) the first successful runs come in the
//     order the updates were accepted. This is the proof that kafka-go's Reader handing out
//     records fetched before a rebalance to the old owner (segmentio/kafka-go#1398) and
//     accepting its commits for partitions it no longer owns (#1308) lose or reorder nothing:
//     whatever such a member sends or commits, the new owner reads from the committed offset
//     and a profile's later update never reaches a destination before an earlier one;
//   - the longest time any update held up by an event waited (202 → first successful run) is
//     at most the destination claim's lease (15 s) + the consumer session timeout (10 s) +
//     a margin of 10 s: a lane retries a claim every lease/3 (5 s), a fetch waits up to 1.5 s,
//     a member heartbeats every 1 s and backs off 0.5 s before rejoining (kafka.Consumer);
//   - claims moved: at the end every live claim is held by C's dispatcher (an ID first seen
//     after C started).
func TestClusterGroupChurn(t *testing.T) {
	c := requireCluster(t)
	dbURL := pgSchema(t)
	e := newEnv(t, simulator.Config{})
	a, dests, wfOf := clusterNodeOn(t, e, c, "A", dbURL, "churn", "aud-churn", 3)
	b := e.startNode("B", dbURL)

	const lease, session, margin = 15 * time.Second, 10 * time.Second, 10 * time.Second
	const bound = lease + session + margin
	claims := watchClaims(t, dbURL)

	var mu sync.Mutex
	turn := 0
	rotate := func(ns ...*node) func() *node {
		return func() *node {
			mu.Lock()
			defer mu.Unlock()
			turn++
			return ns[turn%len(ns)]
		}
	}
	load := startOrderedLoad(rotate(a, b), 2, "churn", "aud-churn", dests)
	defer load.end()
	load.awaitAccepted(t, 150, 30*time.Second)
	began := time.Now()
	time.Sleep(10 * time.Second) // the steady stream on A and B before the churn: the timeline of the test

	// C joins.
	joining := time.Now()
	cn := e.startNode("C", dbURL)
	joined := time.Now()
	load.sendTo(rotate(a, b, cn))
	before := claims.holdersUntil(joining)
	time.Sleep(20 * time.Second) // the stream over three nodes

	// B leaves by SIGTERM (ingest drained from it first).
	load.sendTo(rotate(a, cn))
	left := time.Now()
	if err := b.p.signal(syscall.SIGTERM); err != nil {
		fatal(t, err)
	}
	if code, ok := b.p.waitExit(30 * time.Second); !ok || code != 0 {
		fatalf(t, "B after SIGTERM: exited %v, code %d (want 0 within 30 s)", ok, code)
	}
	stopped := time.Now()
	time.Sleep(20 * time.Second) // the stream over A and C

	// A dies by SIGKILL; C remains.
	load.sendTo(func() *node { return cn })
	killed := time.Now()
	if err := a.p.signal(syscall.SIGKILL); err != nil {
		fatal(t, err)
	}
	if _, ok := a.p.waitExit(10 * time.Second); !ok {
		fatal(t, "A survived SIGKILL for 10 s")
	}
	time.Sleep(bound) // the stream on C alone, for as long as the bound allows an update to wait
	load.end()
	ended := time.Now()
	t.Logf("C ready %s after its start; B exited %s after SIGTERM; A killed at %s",
		joined.Sub(joining).Round(time.Millisecond), stopped.Sub(left).Round(time.Millisecond), killed.Format("15:04:05.000"))

	// Ingest: 202 or 503 + Retry-After; without an answer only a request to A in flight at the kill.
	var inFlight int
	for _, r := range load.l.allResults() {
		switch {
		case r.err != nil && r.node == "A" && r.start.Before(killed) && r.start.Add(r.dur).After(killed):
			inFlight++
		case r.err != nil:
			errorf(t, "request without a proper answer: %s", r)
		case r.status == http.StatusServiceUnavailable && r.retryAfter == "":
			errorf(t, "503 without Retry-After: %s", r)
		case r.status != http.StatusAccepted && r.status != http.StatusServiceUnavailable:
			errorf(t, "answer other than 202 or 503: %s", r)
		}
	}

	rc := checkClusterLedger(t, e, c, cn, wfOf, dests, load.l)
	oc := checkOrder(t, e, wfOf, load.l)

	events := []struct {
		name string
		at   time.Time
	}{{"steady (A, B)", began}, {"C joined", joining}, {"B left (SIGTERM)", left}, {"A killed (SIGKILL)", killed}, {"end", ended}}
	var lines []string
	for i := 1; i+1 < len(events); i++ {
		// The updates this event held up: accepted since the previous event, first delivered
		// after this one and before the next (the next one holds up those delivered later; the
		// last, everything delivered after it).
		next := events[i+1].at
		if i+2 == len(events) {
			next = time.Time{}
		}
		longest, n := oc.longestWait(events[i-1].at, events[i+1].at, events[i].at, next)
		lines = append(lines, fmt.Sprintf("%s: longest wait %s (%d updates)", events[i].name, longest.Round(time.Millisecond), n))
		if n == 0 {
			errorf(t, "%s: no update accepted around it was delivered after it: the wait measured nothing", events[i].name)
		}
		if longest > bound {
			errorf(t, "%s: an update waited %s from its 202 to its first successful run, more than lease %s + session %s + margin %s",
				events[i].name, longest.Round(time.Millisecond), lease, session, margin)
		}
	}
	// Every update, whichever event it met, within the bound.
	if all, _ := oc.longestWait(time.Time{}, ended, time.Time{}, time.Time{}); all > bound {
		errorf(t, "an update waited %s from its 202 to its first successful run (bound %s)", all.Round(time.Millisecond), bound)
	}
	base, _ := oc.longestWait(time.Time{}, joining, time.Time{}, joining)
	t.Logf("RECOVERY group churn: before the churn the longest wait was %s; %s (bound %s)", base.Round(time.Millisecond), strings.Join(lines, "; "), bound)

	// Claims moved: every live claim is held by an ID not seen before C started (C's).
	final := claims.live()
	if len(final) == 0 {
		errorf(t, "no live destination claim at the end (C sends, so it holds some)")
	}
	for dest, holder := range final {
		if slices.Contains(before, holder) {
			errorf(t, "destination %s still claimed by %s, a node from before C joined (A or B, both gone)", dest, holder)
		}
	}
	t.Logf("claims: holders before C joined %v; changes %s; at the end %v (C's)", before, strings.Join(claims.changes(), ", "), final)
	t.Logf("simulator: %d runs (by status %v), %d of updates without an answer or answered \"may have been written\" (%d requests in flight at A's kill); order held over %d (profile, destination) pairs; %d repeated runs of one key; deliveries by status %v",
		rc.runs, rc.byStatus, rc.unknownOK, inFlight, oc.pairs, oc.duplicates, rc.terminalBy)
}

// claimWatch polls the store's destination claims every 200 ms and keeps what it saw.
type claimWatch struct {
	mu   sync.Mutex
	seen []claimSeen // changes of holder, in order
	last map[string]claimSeen
	db   *sql.DB
}

type claimSeen struct {
	at      time.Time
	dest    string
	holder  string
	expires time.Time
}

func watchClaims(t *testing.T, dbURL string) *claimWatch {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		fatal(t, err)
	}
	w := &claimWatch{last: map[string]claimSeen{}, db: db}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; db.Close() })
	return w
}

func (w *claimWatch) poll(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rows, err := w.db.QueryContext(qctx, `SELECT destination_id, node_id, expires_at FROM destination_claims`)
	if err != nil {
		return // the next poll asks again
	}
	defer rows.Close()
	now := time.Now()
	cur := map[string]claimSeen{}
	for rows.Next() {
		var s claimSeen
		var ms int64
		if rows.Scan(&s.dest, &s.holder, &ms) != nil {
			return
		}
		s.at, s.expires = now, time.UnixMilli(ms)
		cur[s.dest] = s
	}
	if rows.Err() != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for dest, s := range cur {
		if prev, ok := w.last[dest]; !ok || prev.holder != s.holder {
			w.seen = append(w.seen, s)
		}
	}
	for dest := range w.last {
		if _, ok := cur[dest]; !ok {
			w.seen = append(w.seen, claimSeen{at: now, dest: dest, holder: "(released)"})
		}
	}
	w.last = cur
}

// holdersUntil is every claim holder seen before t.
func (w *claimWatch) holdersUntil(t time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		if s.at.Before(t) && s.holder != "(released)" && !slices.Contains(out, s.holder) {
			out = append(out, s.holder)
		}
	}
	return out
}

// live is, by destination, the holder of each claim not expired at the last poll.
func (w *claimWatch) live() map[string]string {
	w.poll(context.Background())
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for dest, s := range w.last {
		if s.expires.After(s.at) {
			out[dest] = s.holder
		}
	}
	return out
}

func (w *claimWatch) changes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		out = append(out, fmt.Sprintf("%s …%s→…%s", s.at.Format("15:04:05.0"), s.dest[max(0, len(s.dest)-4):], s.holder[max(0, len(s.holder)-4):]))
	}
	return out
}
