package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// TestSeries runs the support page's store reads (series.go) on each backend.
func TestSeries(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("destination series", func(t *testing.T) { testDestinationSeries(t, b.open(t)) })
			t.Run("delivery payload", func(t *testing.T) { testDeliveryPayload(t, b.open(t)) })
		})
	}
}

// seedWaiting adds to seedSupport's rows one delivery of dst_s created at t0+30s and still
// waiting (parked with its job), and circuit alerts: opened before the window, closed at
// t0+2m30s, opened at t0+4m.
func seedWaiting(t *testing.T, db *DB) string {
	t.Helper()
	id := delivery.ID("upd_wait", "dst_s")
	at := t0.Add(30 * time.Second)
	job, err := delivery.EncodeJob(delivery.Job{DeliveryID: id, UpdateID: "upd_wait", DestinationID: "dst_s", ProfileKey: "p-3", ReceivedAt: at, Payload: []byte(`{"waiting":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, db, delivery.Batch{
		Updates: []delivery.Update{{UpdateID: "upd_wait", ProfileKey: "p-3", ReceivedAt: at, RoutedAt: at}},
		Events: []delivery.Event{
			{DeliveryID: id, UpdateID: "upd_wait", DestinationID: "dst_s", Status: delivery.Pending, At: at},
			{DeliveryID: id, UpdateID: "upd_wait", DestinationID: "dst_s", Status: delivery.Retrying, Reason: "server_error", At: at.Add(time.Second),
				Attempt: &delivery.Attempt{N: 1, At: at.Add(time.Second), StatusCode: 503, LatencyMS: 7, Outcome: "retryable", Reason: "server_error"}},
		},
		Park: []delivery.Parked{{DeliveryID: id, DestinationID: "dst_s", ProfileKey: "p-3", Seq: 1, DueAt: at.Add(time.Hour), Attempts: 1, Job: job}},
		Alerts: []delivery.Alert{
			{ID: "al_1", DestinationID: "dst_s", Kind: "circuit_opened", Message: "open", At: t0.Add(-time.Minute)},
			{ID: "al_2", DestinationID: "dst_s", Kind: "circuit_closed", Message: "closed", At: t0.Add(150 * time.Second)},
			{ID: "al_3", DestinationID: "dst_s", Kind: "circuit_opened", Message: "open again", At: t0.Add(4 * time.Minute)},
			{ID: "al_o", DestinationID: "dst_o", Kind: "circuit_opened", Message: "other", At: t0.Add(time.Minute)},
		},
	})
	return id
}

func testDestinationSeries(t *testing.T, db *DB) {
	ctx := context.Background()
	seedSupport(t, db)
	seedWaiting(t, db)
	s, err := db.DestinationSeries(ctx, "dst_s", t0, t0.Add(5*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Buckets) != 5 || s.StepSeconds != 60 || s.Sampled {
		t.Fatalf("shape: %d buckets, step %d, sampled %v", len(s.Buckets), s.StepSeconds, s.Sampled)
	}
	// seedSupport: minute i ends delivered (0), dead_lettered (1), excluded (2), delivered (3);
	// the waiting delivery's 503 falls in minute 0.
	want := []struct {
		attempts      map[string]int64
		excluded, dlq int64
		p50           float64
	}{
		{map[string]int64{"delivered": 1, "retryable": 1}, 0, 0, 5},
		{map[string]int64{"permanent": 1}, 0, 1, 3},
		{map[string]int64{}, 1, 0, 0},
		{map[string]int64{"delivered": 1}, 0, 0, 20},
		{map[string]int64{}, 0, 0, 0},
	}
	for i, w := range want {
		b := s.Buckets[i]
		if !b.At.Equal(t0.Add(time.Duration(i)*time.Minute)) || b.Excluded != w.excluded || b.DeadLettered != w.dlq || len(b.Attempts) != len(w.attempts) {
			t.Fatalf("bucket %d: %+v, want %+v", i, b, w)
		}
		for k, n := range w.attempts {
			if b.Attempts[k] != n {
				t.Fatalf("bucket %d attempts: %v, want %v", i, b.Attempts, w.attempts)
			}
		}
		if (w.p50 == 0) != (b.LatencyMs.P50 == nil) || (b.LatencyMs.P50 != nil && *b.LatencyMs.P50 != w.p50) {
			t.Fatalf("bucket %d latency: %+v, want p50 %v", i, b.LatencyMs, w.p50)
		}
		// Only the waiting delivery is unfinished at any bucket's end (the others finish
		// within milliseconds of their creation).
		if b.Backlog != 1 {
			t.Fatalf("bucket %d backlog %d, want 1", i, b.Backlog)
		}
	}
	wantSpans := []delivery.CircuitSpan{
		{From: t0, To: t0.Add(150 * time.Second), State: "open"},
		{From: t0.Add(150 * time.Second), To: t0.Add(4 * time.Minute), State: "closed"},
		{From: t0.Add(4 * time.Minute), To: t0.Add(5 * time.Minute), State: "open"},
	}
	if len(s.Circuit) != len(wantSpans) {
		t.Fatalf("circuit %+v, want %+v", s.Circuit, wantSpans)
	}
	for i, w := range wantSpans {
		if g := s.Circuit[i]; !g.From.Equal(w.From) || !g.To.Equal(w.To) || g.State != w.State {
			t.Fatalf("circuit span %d: %+v, want %+v", i, g, w)
		}
	}
	if len(s.Alerts) != 2 || s.Alerts[0].ID != "al_3" || s.Alerts[1].ID != "al_2" {
		t.Fatalf("alerts %+v, want al_3, al_2 (the window's, most recent first)", s.Alerts)
	}

	// A window after the waiting delivery's last change still counts it as waiting.
	s, err = db.DestinationSeries(ctx, "dst_s", t0.Add(5*time.Minute), t0.Add(7*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Buckets) != 2 || s.Buckets[0].Backlog != 1 || s.Buckets[1].Backlog != 1 || len(s.Buckets[0].Attempts) != 0 {
		t.Fatalf("later window: %+v", s.Buckets)
	}

	// A window with nothing in it: empty buckets, the circuit as the last alert left it.
	s, err = db.DestinationSeries(ctx, "dst_s", t0.Add(-time.Hour), t0.Add(-50*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Buckets) != 10 || len(s.Circuit) != 1 || s.Circuit[0].State != "closed" || len(s.Alerts) != 0 {
		t.Fatalf("empty window: %d buckets, circuit %+v, alerts %+v", len(s.Buckets), s.Circuit, s.Alerts)
	}
	for _, b := range s.Buckets {
		if len(b.Attempts) != 0 || b.Backlog != 0 || b.LatencyMs.Samples != 0 {
			t.Fatalf("empty window bucket %+v", b)
		}
	}
	if _, err := db.DestinationSeries(ctx, "dst_s", t0, t0, time.Minute); err == nil {
		t.Fatal("a window without buckets is an error")
	}
}

func testDeliveryPayload(t *testing.T, db *DB) {
	ctx := context.Background()
	ids := seedSupport(t, db)
	waiting := seedWaiting(t, db)
	for _, c := range []struct {
		id, source, payload string
	}{
		{ids[1], "dead_letter", `{"n":1}`},
		{waiting, "parked", `{"waiting":true}`},
		{ids[0], "none", ""},
		{ids[2], "none", ""},
	} {
		p, err := db.DeliveryPayload(ctx, c.id)
		if err != nil || p.Source != c.source || string(p.Payload) != c.payload || p.DeliveryID != c.id {
			t.Fatalf("%s: %+v %s %v, want %s %s", c.id, p, p.Payload, err, c.source, c.payload)
		}
	}
	_, err := db.DeliveryPayload(ctx, "dlv_00000000000000000000000000000000")
	if fe := (*fault.Error)(nil); !errors.As(err, &fe) || fe.Kind != fault.NotFound {
		t.Fatalf("unknown delivery: %v, want not found", err)
	}
}
