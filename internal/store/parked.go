package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

func (s *DB) applyParking(ctx context.Context, w *rowWriter, b delivery.Batch) error {
	for _, p := range b.Park {
		var first sql.NullInt64
		if p.FirstAttemptAt != nil {
			first = sql.NullInt64{Int64: ms(*p.FirstAttemptAt), Valid: true}
		}
		if err := w.exec(ctx, `INSERT INTO parked (delivery_id, destination_id, profile_key, seq, due_at, attempts, first_attempt_at, job)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (delivery_id) DO UPDATE SET due_at = excluded.due_at, attempts = excluded.attempts,
    first_attempt_at = COALESCE(parked.first_attempt_at, excluded.first_attempt_at)`,
			p.DeliveryID, p.DestinationID, p.ProfileKey, p.Seq, msCeil(p.DueAt), p.Attempts, first, p.Job); err != nil {
			return fmt.Errorf("park: %w", err)
		}
	}
	for _, id := range b.Unpark {
		if err := w.exec(ctx, `DELETE FROM parked WHERE delivery_id = $1`, id); err != nil {
			return fmt.Errorf("unpark: %w", err)
		}
	}
	for _, a := range b.Alerts {
		if err := w.exec(ctx, `INSERT INTO alerts (id, destination_id, kind, message, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			a.ID, a.DestinationID, cleanText(a.Kind), cleanText(a.Message), ms(a.At)); err != nil {
			return fmt.Errorf("alert: %w", err)
		}
	}
	return nil
}

// msCeil is ms rounded up: a parked delivery never becomes due before its backoff or
// Retry-After has fully passed.
func msCeil(t time.Time) int64 {
	v := t.UnixMilli()
	if time.UnixMilli(v).Before(t) {
		v++
	}
	return v
}

// ParkedHeads returns up to limit parked deliveries of a destination that are due at now and
// are the oldest (lowest seq) of their profile: the only ones that may be sent.
func (s *DB) ParkedHeads(ctx context.Context, destID string, now time.Time, limit int) ([]delivery.Parked, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.delivery_id, p.destination_id, p.profile_key, p.seq, p.due_at, p.attempts, p.first_attempt_at, p.job
FROM parked p
WHERE p.destination_id = $1 AND p.due_at <= $2
  AND p.seq = (SELECT MIN(q.seq) FROM parked q WHERE q.destination_id = p.destination_id AND q.profile_key = p.profile_key)
ORDER BY p.due_at, p.seq
LIMIT $3`, destID, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("parked heads: %w", err)
	}
	defer rows.Close()
	var out []delivery.Parked
	for rows.Next() {
		var p delivery.Parked
		var due int64
		var first sql.NullInt64
		if err := rows.Scan(&p.DeliveryID, &p.DestinationID, &p.ProfileKey, &p.Seq, &due, &p.Attempts, &first, &p.Job); err != nil {
			return nil, err
		}
		p.DueAt, p.FirstAttemptAt = fromMS(due), fromNullMS(first)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ParkedProfiles counts parked deliveries per profile for a destination.
func (s *DB) ParkedProfiles(ctx context.Context, destID string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT profile_key, COUNT(*) FROM parked WHERE destination_id = $1 GROUP BY profile_key`, destID)
	if err != nil {
		return nil, fmt.Errorf("parked profiles: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// ParkedDestinations lists destinations that have parked deliveries.
func (s *DB) ParkedDestinations(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT destination_id FROM parked`)
	if err != nil {
		return nil, fmt.Errorf("parked destinations: %w", err)
	}
	return out, nil
}

// CountParked counts a destination's parked deliveries.
func (s *DB) CountParked(ctx context.Context, destID string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM parked WHERE destination_id = $1`, destID).Scan(&n)
	return n, err
}

// Claim takes or renews node's claim on a destination until now+ttl. It succeeds when the claim
// is free, expired, or already node's: one node at a time sends to a destination. When it holds
// the claim it reports the last time another node asked for it (zero: nobody since node took
// it); when it does not and want is set, it records that node asks for it now, so that a holder
// with no jobs of its own can hand it over.
func (s *DB) Claim(ctx context.Context, destID, node string, now time.Time, ttl time.Duration, want bool) (held bool, wantedAt time.Time, err error) {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("claim: %w", err)
	}
	defer release()
	var wanted int64
	err = s.db.QueryRowContext(ctx, `INSERT INTO destination_claims (destination_id, node_id, expires_at, wanted_at) VALUES ($1, $2, $3, 0)
ON CONFLICT (destination_id) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at,
wanted_at = CASE WHEN destination_claims.node_id = excluded.node_id THEN destination_claims.wanted_at ELSE 0 END
WHERE destination_claims.node_id = excluded.node_id OR destination_claims.expires_at < $4
RETURNING wanted_at`, destID, node, ms(now.Add(ttl)), ms(now)).Scan(&wanted)
	switch {
	case err == nil:
		if wanted == 0 {
			return true, time.Time{}, nil
		}
		return true, time.UnixMilli(wanted).UTC(), nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, time.Time{}, fmt.Errorf("claim: %w", err)
	}
	if want {
		if _, err := s.db.ExecContext(ctx, `UPDATE destination_claims SET wanted_at = $1 WHERE destination_id = $2 AND node_id <> $3`, ms(now), destID, node); err != nil {
			return false, time.Time{}, fmt.Errorf("claim: ask for it: %w", err)
		}
	}
	return false, time.Time{}, nil
}

// Release gives up node's claim on a destination.
func (s *DB) Release(ctx context.Context, destID, node string) error {
	_, err := s.exec(ctx, `DELETE FROM destination_claims WHERE destination_id = $1 AND node_id = $2`, destID, node)
	return err
}

// Alerts returns up to limit of a destination's alerts since a time, newest first; only those
// of the given kinds, when kinds are given.
func (s *DB) Alerts(ctx context.Context, destID string, since time.Time, limit int, kinds ...string) ([]delivery.Alert, error) {
	q := `SELECT id, destination_id, kind, message, at FROM alerts WHERE destination_id = $1 AND at >= $2`
	args := []any{destID, ms(since)}
	if len(kinds) > 0 {
		ph := make([]string, len(kinds))
		for i, k := range kinds {
			args = append(args, k)
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		q += ` AND kind IN (` + strings.Join(ph, ", ") + `)`
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	var out []delivery.Alert
	for rows.Next() {
		var a delivery.Alert
		var at int64
		if err := rows.Scan(&a.ID, &a.DestinationID, &a.Kind, &a.Message, &at); err != nil {
			return nil, err
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeliveryStatus returns a delivery's current status ("" when unknown).
func (s *DB) DeliveryStatus(ctx context.Context, deliveryID string) (delivery.Status, error) {
	var st string
	err := s.db.QueryRowContext(ctx, `SELECT status FROM deliveries WHERE delivery_id = $1`, cleanText(deliveryID)).Scan(&st)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return delivery.Status(st), err
}

// Finished returns which of the given deliveries have already ended (delivered, dead-lettered
// or excluded), in one query.
//
// The query looks the IDs up by primary key and filters the status here. With the status in
// the WHERE clause SQLite's planner prefers the deliveries_status index for a long ID list and
// scans every finished delivery instead (0.3 s instead of 6 ms for 100 IDs among 100,000
// deliveries): TestStore "query plans" guards the plan. On SQLite the IDs travel as one JSON
// array, so that the query has one shape and is prepared once (DB.prepared); on PostgreSQL as an
// IN list.
func (s *DB) Finished(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	q, args := s.finishedQuery(ids)
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("finished deliveries: %w", err)
	}
	var rows *sql.Rows
	if st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("finished deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		if delivery.Status(st).Terminal() {
			out[id] = true
		}
	}
	return out, rows.Err()
}

func (s *DB) finishedQuery(ids []string) (string, []any) {
	if s.dialect == SQLite {
		b, _ := json.Marshal(ids)
		return `SELECT delivery_id, status FROM deliveries WHERE delivery_id IN (SELECT value FROM json_each($1))`, []any{string(b)}
	}
	var b strings.Builder
	b.WriteString(`SELECT delivery_id, status FROM deliveries WHERE delivery_id IN (`)
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("$" + strconv.Itoa(i+1))
		args[i] = id
	}
	b.WriteByte(')')
	return b.String(), args
}
