package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/update"
)

// BenchmarkStatusWrite measures status rows per second through one StatusWriter with 64
// concurrent writers that each write one event per Write, as dispatcher lanes do. Each event
// finishes a new delivery and records its attempt (one deliveries and one attempts row); one op
// is one event, and rows/s counts events.
func BenchmarkStatusWrite(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *DB
	}{{"sqlite", openSQLiteForTest}, {"postgres", openPostgresForTest}} {
		b.Run(c.name, func(b *testing.B) { benchStatusWrite(b, c.open(b), 64) })
	}
}

var benchRun atomic.Int64

func benchStatusWrite(b *testing.B, db *DB, writers int) {
	ctx := context.Background()
	w := NewStatusWriter(db)
	defer w.Close()
	run := benchRun.Add(1)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				at := time.Now()
				id := fmt.Sprintf("b%d-%d", run, i)
				e := delivery.Event{DeliveryID: id, UpdateID: "u" + id, DestinationID: fmt.Sprint("dst", i%16), Status: delivery.Delivered, At: at,
					Attempt:   &delivery.Attempt{N: 1, At: at, StatusCode: 200, LatencyMS: 35, Outcome: "ok", Reason: "accepted"},
					EmailHash: "e" + id}
				if err := w.Write(ctx, delivery.Batch{Events: []delivery.Event{e}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
}

// BenchmarkDeliveryLifecycle measures the status store's work for one delivery as the
// pipeline writes it: the router records each update with its pending delivery (batches of
// 100, as a batch-100 ingest routes them; the pending rows in Batch.Routed, held by the
// writer), then 64 concurrent lanes each finish one delivery per Write, delivered at the first
// attempt, each merged into its held pending row. IDs are the pipeline's (UUIDv7 update IDs,
// delivery.ID), spread over 400 destinations, each with an email hash. One op is one delivery;
// run the test binary under /usr/bin/time for CPU per delivery (wall time on a shared machine
// mostly measures the load).
func BenchmarkDeliveryLifecycle(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *DB
	}{{"sqlite", openSQLiteForTest}, {"postgres", openPostgresForTest}} {
		b.Run(c.name, func(b *testing.B) { benchLifecycle(b, c.open(b)) })
	}
}

func benchLifecycle(b *testing.B, db *DB) {
	ctx := context.Background()
	w := NewStatusWriter(db)
	defer w.Close()
	const batch, lanes = 100, 64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		var rb delivery.Batch
		finish := make([]delivery.Event, n)
		now := time.Now()
		for i := range n {
			uid := update.NewID()
			dest := fmt.Sprintf("dst_%03d", (done+i)%400)
			id := delivery.ID(uid, dest)
			email := delivery.HashIdentity(fmt.Sprintf("p%d@example.com", done+i))
			rb.Updates = append(rb.Updates, delivery.Update{UpdateID: uid, ProfileKey: "pk_" + email[:16], ReceivedAt: now, RoutedAt: now, Audiences: []string{"aud"}, Queued: []string{dest}})
			rb.Routed = append(rb.Routed, delivery.Event{DeliveryID: id, UpdateID: uid, DestinationID: dest, Status: delivery.Pending, At: now, EmailHash: email})
			finish[i] = delivery.Event{DeliveryID: id, UpdateID: uid, DestinationID: dest, Status: delivery.Delivered, At: now,
				Attempt: &delivery.Attempt{N: 1, At: now, StatusCode: 200, LatencyMS: 3, Outcome: "delivered", Reason: "ok"}, EmailHash: email}
		}
		if err := w.Write(ctx, rb); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range lanes {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
					if err := w.Write(ctx, delivery.Batch{Events: finish[i : i+1]}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
