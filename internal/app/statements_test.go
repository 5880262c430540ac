package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/store/storefault"
)

// Store statements per delivery on SQLite, counted at the database/sql driver (a storefault
// injector without rules): a regression guard for issue #12 that is not a timing test. The
// status store is on every delivery's path — the router records the update (its pending
// delivery is held back and written merged into the outcome), the dispatcher looks up
// already-finished jobs and records the outcome (with its attempt when that delivered at the
// first try; other attempts are rows of their own) — and its statements were most of qgate's
// CPU on SQLite. The bounds are today's
// counts; lower them as the store leaves the hot path, never raise them without a reason.
//
// Only statements on the delivery tables (updates, deliveries, attempts) count as the hot path;
// the rest (registry refresh, claims, park and outbox polling) run on timers, whatever the
// traffic, and are logged but not bounded here.
const (
	// The update row and the outcome row (a first attempt that delivers is on its row: no
	// attempts row; the pending row is held and merged into the outcome: store.StatusWriter).
	// It counts 2.00; a pending row is written only when its delivery waits longer than the
	// hold, as the last of these 400 do when a loaded machine routes them more than 10 s before
	// the 50/s limiter sends them, so the bound leaves a quarter of them that room. Written
	// again every time, they count 3.
	maxWritesPerDelivery = 2.25
	maxReadsPerDelivery  = 0.05 // Finished, once per polled batch of jobs
	// Transactions (all of them, timers' included): the status writer batches, so a quiet
	// machine sees about one per delivery at most; 4 would be one per statement.
	maxCommitsPerDelivery = 1.5
)

func TestStoreStatementsPerDelivery(t *testing.T) {
	inj := storefault.New()
	var dataDir string
	e := startDeliveryWith(t, func(c *cfgT) {
		dataDir = c.DataDir
		c.DeliveryTimeout = 20 * time.Second // no retry on a loaded machine: one attempt each
	}, app.Options{Store: store.Options{WrapConnector: inj.Wrap}})
	destID, wf := e.destination("stmts", nil)

	// Warm up: the destination's lane exists, its claim is held and the registry has it.
	e.await("warm-up delivered", e.post(richProfile("warm@example.com")), func(v supportView) bool {
		d, ok := deliveryTo(v, destID)
		return ok && d.Status == delivery.Delivered
	})
	e.runs(wf, 1)

	// A second, unwrapped handle on the same SQLite file watches for the outcomes, so that
	// watching runs no counted statement.
	watch, err := store.Open(context.Background(), "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	since := time.Now().Add(-time.Hour)

	const deliveries, batch = 400, 50
	before, commits0 := inj.Statements(), inj.Calls(storefault.Commit)
	for b := range deliveries / batch {
		var profiles []any
		for i := range batch {
			profiles = append(profiles, richProfile(fmt.Sprintf("p%d-%d@example.com", b, i)))
		}
		status, body, _ := e.do("POST", "/v1/profiles", e.ingest, map[string]any{"profiles": profiles})
		if status != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", status, body)
		}
	}
	e.runs(wf, deliveries+1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := watch.DestinationStats(context.Background(), destID, since)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByStatus[delivery.Delivered] == deliveries+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d in the store after 20 s: %+v", st.ByStatus[delivery.Delivered], deliveries+1, st.ByStatus)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, commits1 := inj.Statements(), inj.Calls(storefault.Commit)

	var writes, reads, timers int
	var lines []string
	for s, n := range after {
		n -= before[s]
		if n == 0 {
			continue
		}
		q := strings.Join(strings.Fields(s.Query), " ")
		kind := "timer"
		switch {
		case !onDeliveryTables(q):
			timers += n
		case isWrite(q):
			kind = "write"
			writes += n
		default:
			kind = "read"
			reads += n
		}
		lines = append(lines, fmt.Sprintf("%6d %-5s %-5s %.110s", n, kind, s.Op, q))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(lines)))
	per := func(n int) float64 { return float64(n) / deliveries }
	t.Logf("statements for %d deliveries (%d per request): writes %.2f, reads %.2f, commits %.2f per delivery; %d on timers\n%s",
		deliveries, batch, per(writes), per(reads), per(commits1-commits0), timers, strings.Join(lines, "\n"))
	if per(writes) > maxWritesPerDelivery {
		t.Errorf("%.2f write statements per delivery, want <= %.2f", per(writes), maxWritesPerDelivery)
	}
	if per(reads) > maxReadsPerDelivery {
		t.Errorf("%.2f read statements per delivery, want <= %.2f", per(reads), maxReadsPerDelivery)
	}
	if per(commits1-commits0) > maxCommitsPerDelivery {
		t.Errorf("%.2f commits per delivery, want <= %.2f", per(commits1-commits0), maxCommitsPerDelivery)
	}
	if writes < deliveries {
		t.Errorf("only %d write statements for %d deliveries: the counter does not see the status writes", writes, deliveries)
	}
}

func isWrite(q string) bool {
	q = strings.ToUpper(q)
	for _, w := range []string{"INSERT ", "UPDATE ", "DELETE ", "REPLACE "} {
		if strings.HasPrefix(q, w) || strings.HasPrefix(q, "WITH") && strings.Contains(q, w) {
			return true
		}
	}
	return false
}

// onDeliveryTables reports whether q reads or writes updates, deliveries or attempts.
func onDeliveryTables(q string) bool {
	q = strings.ToLower(q)
	for _, t := range []string{" updates", " deliveries", " attempts"} {
		for _, end := range []string{" ", "(", ""} {
			if strings.Contains(q, t+end) && (end != "" || strings.HasSuffix(q, t)) {
				return true
			}
		}
	}
	return false
}
