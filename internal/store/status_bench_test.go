package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
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
