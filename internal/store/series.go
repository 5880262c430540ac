package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// SeriesSample bounds how many attempts, and how many deliveries, one DestinationSeries reads
// (the most recent first), so that a busy destination's charts stay a cheap answer.
const SeriesSample = 50000

// DestinationSeries returns a destination's figures over [since, until) in buckets of step:
// attempts by outcome class and their latency percentiles, exclusions, dead letters, the
// backlog at each bucket's end, the circuit's state over the window and its alerts.
//
// The backlog is reconstructed from the delivery rows: a delivery counts as waiting from its
// creation until its last change, or until now if it is still pending or retrying. A replayed
// dead letter therefore counts from its creation to its replay's end, not as waiting while it
// was dead-lettered.
func (s *DB) DestinationSeries(ctx context.Context, destID string, since, until time.Time, step time.Duration) (delivery.Series, error) {
	n := int(until.Sub(since) / step)
	if n < 1 || n > 10000 {
		return delivery.Series{}, fmt.Errorf("destination series: %d buckets", n)
	}
	out := delivery.Series{Since: since, Until: until, StepSeconds: int(step / time.Second), Buckets: make([]delivery.Bucket, n), Circuit: []delivery.CircuitSpan{}, Alerts: []delivery.Alert{}}
	lat := make([][]float64, n)
	for i := range out.Buckets {
		out.Buckets[i] = delivery.Bucket{At: since.Add(time.Duration(i) * step), Attempts: map[string]int64{}}
	}
	bucket := func(at int64) int {
		if at < ms(since) || at >= ms(until) {
			return -1
		}
		return int((at - ms(since)) / step.Milliseconds())
	}

	// Attempts: an attempt at >= since means its delivery changed at or after it, so the
	// (destination_id, updated_at) index narrows the deliveries first. The attempts rows, and
	// the first attempts kept on their delivery's row (delivered: onDeliveryRow).
	rows, err := s.db.QueryContext(ctx, `SELECT at, outcome, latency_ms FROM (
    SELECT a.at AS at, a.outcome AS outcome, a.latency_ms AS latency_ms FROM deliveries d
    JOIN attempts a ON a.delivery_id = d.delivery_id
    WHERE d.destination_id = $1 AND d.updated_at >= $2 AND a.at >= $2 AND a.at < $3
    UNION ALL
    SELECT first_attempt_at, 'delivered', first_latency_ms FROM deliveries
    WHERE destination_id = $1 AND updated_at >= $2 AND first_attempt_at >= $2 AND first_attempt_at < $3
) t ORDER BY at DESC LIMIT $4`, destID, ms(since), ms(until), SeriesSample+1)
	if err != nil {
		return out, fmt.Errorf("destination series: attempts: %w", err)
	}
	read := 0
	for rows.Next() {
		var at int64
		var outcome string
		var l float64
		if err := rows.Scan(&at, &outcome, &l); err != nil {
			rows.Close()
			return out, err
		}
		if read++; read > SeriesSample {
			out.Sampled = true
			break
		}
		if i := bucket(at); i >= 0 {
			out.Buckets[i].Attempts[outcome]++
			lat[i] = append(lat[i], l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	for i := range lat {
		out.Buckets[i].LatencyMs = percentiles(lat[i])
	}

	// Deliveries: exclusions and dead letters by when they happened; the backlog by how long
	// each waited.
	// Two ranges, each on an index: rows changed in the window (deliveries_destination_time),
	// and rows still waiting since before it (deliveries_undelivered); an OR of the two would scan
	// the destination's whole history.
	rows, err = s.db.QueryContext(ctx, `SELECT status, created_at, updated_at FROM (
SELECT status, created_at, updated_at FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND created_at < $3
UNION ALL
SELECT status, created_at, updated_at FROM deliveries WHERE status IN ('pending', 'retrying') AND `+undelivered+` AND destination_id = $1 AND updated_at < $2
) w ORDER BY updated_at DESC LIMIT $4`, destID, ms(since), ms(until), SeriesSample+1)
	if err != nil {
		return out, fmt.Errorf("destination series: deliveries: %w", err)
	}
	read = 0
	end := func(i int) int64 { return ms(since) + int64(i+1)*step.Milliseconds() }
	for rows.Next() {
		var status string
		var created, updated int64
		if err := rows.Scan(&status, &created, &updated); err != nil {
			rows.Close()
			return out, err
		}
		if read++; read > SeriesSample {
			out.Sampled = true
			break
		}
		st := delivery.Status(status)
		if i := bucket(updated); i >= 0 {
			switch st {
			case delivery.Excluded:
				out.Buckets[i].Excluded++
			case delivery.DeadLettered:
				out.Buckets[i].DeadLettered++
			}
		}
		if st == delivery.Excluded {
			continue
		}
		waitedUntil := updated
		if !st.Terminal() {
			waitedUntil = ms(until) + 1
		}
		for i := range out.Buckets {
			if e := end(i); created < e && waitedUntil >= e {
				out.Buckets[i].Backlog++
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}

	if out.Circuit, err = s.circuitSpans(ctx, destID, since, until); err != nil {
		return out, err
	}
	alerts, err := s.Alerts(ctx, destID, since, 100)
	if err != nil {
		return out, err
	}
	for _, a := range alerts {
		if a.At.Before(until) {
			out.Alerts = append(out.Alerts, a)
		}
	}
	return out, nil
}

// circuitSpans reads the circuit alerts of [since, until), and the last one before since for the
// state the window starts in, into spans of one state each.
func (s *DB) circuitSpans(ctx context.Context, destID string, since, until time.Time) ([]delivery.CircuitSpan, error) {
	state := "closed"
	var kind string
	err := s.db.QueryRowContext(ctx, `SELECT kind FROM alerts WHERE destination_id = $1 AND at < $2 AND kind IN ('circuit_opened', 'circuit_closed')
ORDER BY at DESC, id DESC LIMIT 1`, destID, ms(since)).Scan(&kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("destination series: circuit: %w", err)
	case kind == "circuit_opened":
		state = "open"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kind, at FROM alerts WHERE destination_id = $1 AND at >= $2 AND at < $3 AND kind IN ('circuit_opened', 'circuit_closed')
ORDER BY at, id`, destID, ms(since), ms(until))
	if err != nil {
		return nil, fmt.Errorf("destination series: circuit: %w", err)
	}
	defer rows.Close()
	spans := []delivery.CircuitSpan{{From: since, State: state}}
	for rows.Next() {
		var at int64
		if err := rows.Scan(&kind, &at); err != nil {
			return nil, err
		}
		next := "closed"
		if kind == "circuit_opened" {
			next = "open"
		}
		last := &spans[len(spans)-1]
		if next == last.State {
			continue
		}
		last.To = fromMS(at)
		spans = append(spans, delivery.CircuitSpan{From: fromMS(at), State: next})
	}
	spans[len(spans)-1].To = until
	return spans, rows.Err()
}

// DeliveryPayload returns the shaped payload the store keeps for a delivery: a dead letter's
// (kept for replay) or a parked delivery's (its job). Delivered, excluded and in-flight
// deliveries keep none (Source "none").
func (s *DB) DeliveryPayload(ctx context.Context, deliveryID string) (delivery.StoredPayload, error) {
	p := delivery.StoredPayload{DeliveryID: deliveryID, Source: "none"}
	var payload []byte
	err := s.db.QueryRowContext(ctx, `SELECT payload FROM deliveries WHERE delivery_id = $1`, cleanText(deliveryID)).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errNoDelivery
	}
	if err != nil {
		return p, fmt.Errorf("delivery payload: %w", err)
	}
	if payload != nil {
		p.Source, p.Payload = "dead_letter", payload
		return p, nil
	}
	var job []byte
	err = s.db.QueryRowContext(ctx, `SELECT job FROM parked WHERE delivery_id = $1`, cleanText(deliveryID)).Scan(&job)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("delivery payload: parked: %w", err)
	}
	if j, err := delivery.DecodeJob(job); err == nil {
		p.Source, p.Payload = "parked", j.Payload
	}
	return p, nil
}

var errNoDelivery = fault.New(fault.NotFound, "deliveryId", "delivery_not_found", "no such delivery")
