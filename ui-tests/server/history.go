package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/store"
)

// writeHistory writes an hour of past deliveries for destID straight into the node's store (a
// second handle on its SQLite file), so that the charts in the documentation's screenshots
// have a shape: a steady flow with a morning dip, a burst of 503s and retries, a few dead
// letters and an outage of the circuit. Only with -history: the browser tests assert on what
// the pipeline itself recorded.
func writeHistory(ctx context.Context, dataDir, destID string, now time.Time) error {
	db, err := store.Open(ctx, "", dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	start := now.Truncate(time.Minute).Add(-time.Hour)
	for m := range 60 {
		var b delivery.Batch
		at := start.Add(time.Duration(m) * time.Minute)
		n := 30 + rng.IntN(15)
		for i := range n {
			upd := fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", m, i)
			rec := at.Add(time.Duration(rng.IntN(59000)) * time.Millisecond)
			id := delivery.ID(upd, destID)
			b.Updates = append(b.Updates, delivery.Update{UpdateID: upd, ProfileKey: "hist-" + upd, ReceivedAt: rec, RoutedAt: rec, Audiences: []string{"aud-nps"}})
			email := delivery.HashIdentity(fmt.Sprintf("hist-%d-%d@example.com", m, i))
			b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: destID, Status: delivery.Pending, At: rec, EmailHash: email})
			lat := 35 + rng.ExpFloat64()*20
			if m >= 40 && m < 44 {
				lat += 250 // a slow spell
			}
			attempt := 1
			if m >= 12 && m < 16 && i%3 == 0 { // a burst of 503s, retried
				b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: destID, Status: delivery.Retrying, Reason: "server_error", At: rec.Add(50 * time.Millisecond),
					Attempt: &delivery.Attempt{N: 1, At: rec.Add(50 * time.Millisecond), StatusCode: 503, LatencyMS: 12, Outcome: "retryable", Reason: "server_error", Error: `{"meta":{"httpStatus":"503 - Service Unavailable"}}`}})
				attempt = 2
			}
			done := rec.Add(time.Duration(attempt) * 400 * time.Millisecond)
			if m >= 20 && m < 26 { // a 401, then the circuit held them until it closed at minute 26
				b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: destID, Status: delivery.Retrying, Reason: "unauthorized", At: rec.Add(50 * time.Millisecond),
					Attempt: &delivery.Attempt{N: 1, At: rec.Add(50 * time.Millisecond), StatusCode: 401, LatencyMS: 9, Outcome: "destination_fault", Reason: "unauthorized", Error: `{"meta":{"httpStatus":"401 - Unauthorized"}}`}})
				attempt = 2
				done = start.Add(26*time.Minute + time.Duration(rng.IntN(50000))*time.Millisecond)
			}
			if i == 0 && m%15 == 7 {
				b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: destID, Status: delivery.DeadLettered, Reason: "client_error", At: done, Payload: []byte(`{"history":true}`),
					Attempt: &delivery.Attempt{N: attempt, At: done, StatusCode: 400, LatencyMS: lat, Outcome: "permanent", Reason: "client_error", Error: `{"meta":{"httpStatus":"400 - Bad Request"}}`}})
				continue
			}
			b.Events = append(b.Events, delivery.Event{DeliveryID: id, UpdateID: upd, DestinationID: destID, Status: delivery.Delivered, Reason: "ok", At: done,
				Attempt: &delivery.Attempt{N: attempt, At: done, StatusCode: 202, LatencyMS: lat, Outcome: "delivered", Reason: "ok"}})
		}
		switch m {
		case 20:
			b.Alerts = append(b.Alerts, delivery.Alert{ID: "hist-open", DestinationID: destID, Kind: "circuit_opened", Message: "401 from the destination: circuit opened (history)", At: at})
		case 26:
			b.Alerts = append(b.Alerts, delivery.Alert{ID: "hist-closed", DestinationID: destID, Kind: "circuit_closed", Message: "circuit closed after a successful probe (history)", At: at})
		}
		if err := db.Apply(ctx, b); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	return nil
}
