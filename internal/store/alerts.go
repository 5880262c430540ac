package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/qgate/qgate/internal/alert"
)

// The alert store: subscriptions (secret sealed), episodes (the once-per-episode guard) and
// the alerts fired with their delivery state and lease. The signals the rules read come from
// the delivery tables (deliveries, attempts) and the dispatcher's circuit log (alerts).

const subscriptionColumns = `id, name, url, sealed_secret, secret_last4, events, destination_ids, enabled, version, created_at, updated_at`

func scanSubscription(row interface{ Scan(...any) error }) (alert.Subscription, error) {
	var s alert.Subscription
	var events, dests string
	var created, updated int64
	if err := row.Scan(&s.ID, &s.Name, &s.URL, &s.Sealed, &s.SecretEnd, &events, &dests, &s.Enabled, &s.Version, &created, &updated); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(events), &s.Events); err != nil {
		return s, fmt.Errorf("alert subscription %s: events: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(dests), &s.DestinationIDs); err != nil {
		return s, fmt.Errorf("alert subscription %s: destination_ids: %w", s.ID, err)
	}
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	return s, nil
}

func rulesJSON(r []alert.Rule) string {
	if r == nil {
		r = []alert.Rule{}
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// CreateAlertSubscription inserts sub.
func (s *DB) CreateAlertSubscription(ctx context.Context, sub alert.Subscription) error {
	_, err := s.exec(ctx, `INSERT INTO alert_subscriptions (`+subscriptionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		sub.ID, cleanText(sub.Name), sub.URL, sub.Sealed, sub.SecretEnd, rulesJSON(sub.Events), jsonList(sub.DestinationIDs), sub.Enabled, sub.Version, ms(sub.CreatedAt), ms(sub.UpdatedAt))
	if isUniqueViolation(err) {
		return alert.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("create alert subscription: %w", err)
	}
	return nil
}

// GetAlertSubscription returns a live subscription.
func (s *DB) GetAlertSubscription(ctx context.Context, id string) (alert.Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, `SELECT `+subscriptionColumns+` FROM alert_subscriptions WHERE id = $1 AND deleted_at IS NULL`, cleanText(id)))
	if err != nil {
		return sub, notFound(err, alert.ErrNotFound)
	}
	return sub, nil
}

// ListAlertSubscriptions returns every live subscription in ID order.
func (s *DB) ListAlertSubscriptions(ctx context.Context) ([]alert.Subscription, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+subscriptionColumns+` FROM alert_subscriptions WHERE deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list alert subscriptions: %w", err)
	}
	defer rows.Close()
	var out []alert.Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// UpdateAlertSubscription replaces sub.ID at expectVersion.
func (s *DB) UpdateAlertSubscription(ctx context.Context, sub alert.Subscription, expectVersion int64) error {
	res, err := s.exec(ctx, `UPDATE alert_subscriptions SET name = $1, url = $2, sealed_secret = $3, secret_last4 = $4, events = $5,
    destination_ids = $6, enabled = $7, version = $8, updated_at = $9 WHERE id = $10 AND deleted_at IS NULL AND version = $11`,
		cleanText(sub.Name), sub.URL, sub.Sealed, sub.SecretEnd, rulesJSON(sub.Events), jsonList(sub.DestinationIDs), sub.Enabled, sub.Version, ms(sub.UpdatedAt), sub.ID, expectVersion)
	if isUniqueViolation(err) {
		return alert.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("update alert subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetAlertSubscription(ctx, sub.ID); err != nil {
			return err
		}
		return alert.ErrVersionConflict
	}
	return nil
}

// DeleteAlertSubscription soft-deletes a subscription and closes its episodes.
func (s *DB) DeleteAlertSubscription(ctx context.Context, id string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alert_subscriptions SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2 AND deleted_at IS NULL`, ms(at), cleanText(id))
		if err != nil {
			return fmt.Errorf("delete alert subscription: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return alert.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_episodes WHERE subscription_id = $1`, id); err != nil {
			return fmt.Errorf("delete alert subscription: episodes: %w", err)
		}
		return nil
	})
}

// AlertSignals reads a destination's circuit (the dispatcher's latest circuit alert), its
// latest 401/403 and delivered attempts within lookBack, and its oldest waiting delivery.
func (s *DB) AlertSignals(ctx context.Context, destID string, now time.Time, lookBack time.Duration) (alert.Signals, error) {
	var sig alert.Signals
	var kind string
	err := s.db.QueryRowContext(ctx, `SELECT kind FROM alerts WHERE destination_id = $1 AND kind IN ('circuit_opened', 'circuit_closed')
ORDER BY at DESC, id DESC LIMIT 1`, destID).Scan(&kind)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return sig, fmt.Errorf("circuit: %w", err)
	}
	sig.CircuitOpen = kind == "circuit_opened"
	since := ms(now.Add(-lookBack))
	var at, code int64
	err = s.db.QueryRowContext(ctx, `SELECT a.at, a.status_code FROM attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id
WHERE d.destination_id = $1 AND d.updated_at >= $2 AND a.at >= $2 AND a.status_code IN (401, 403) ORDER BY a.at DESC LIMIT 1`, destID, since).Scan(&at, &code)
	switch {
	case err == nil:
		sig.LastAuthFailure, sig.LastAuthStatus = fromMS(at), int(code)
	case !errors.Is(err, sql.ErrNoRows):
		return sig, fmt.Errorf("auth failures: %w", err)
	}
	// Delivered attempts: attempts rows, and first attempts kept on their delivery's row.
	var ok, okFirst sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT
    (SELECT MAX(a.at) FROM attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id
     WHERE d.destination_id = $1 AND d.updated_at >= $2 AND a.at >= $2 AND a.outcome = 'delivered'),
    (SELECT MAX(first_attempt_at) FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND first_attempt_at >= $2)`,
		destID, since).Scan(&ok, &okFirst); err != nil {
		return sig, fmt.Errorf("last success: %w", err)
	}
	if okFirst.Valid && (!ok.Valid || okFirst.Int64 > ok.Int64) {
		ok = okFirst
	}
	if ok.Valid {
		sig.LastSuccess = fromMS(ok.Int64)
	}
	var oldest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(created_at) FROM deliveries WHERE status IN ('pending', 'retrying') AND `+undelivered+` AND destination_id = $1`, destID).Scan(&oldest); err != nil {
		return sig, fmt.Errorf("oldest waiting: %w", err)
	}
	if oldest.Valid {
		sig.OldestWaiting = fromMS(oldest.Int64)
	}
	return sig, nil
}

// DeadLettersSince counts the destination's deliveries dead-lettered since.
func (s *DB) DeadLettersSince(ctx context.Context, destID string, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE destination_id = $1 AND status = 'dead_lettered' AND `+undelivered+` AND updated_at >= $2`, destID, ms(since)).Scan(&n)
	return n, err
}

// AttemptsSince counts the destination's attempts since, and those that did not deliver: the
// attempts rows, and the first attempts kept on their delivery's row (all delivered).
func (s *DB) AttemptsSince(ctx context.Context, destID string, since time.Time) (int, int, error) {
	var rows, failed, first int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN a.outcome = 'delivered' THEN 0 ELSE 1 END), 0),
    (SELECT COUNT(*) FROM deliveries WHERE destination_id = $1 AND updated_at >= $2 AND first_attempt_at >= $2)
FROM attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id
WHERE d.destination_id = $1 AND d.updated_at >= $2 AND a.at >= $2`, destID, ms(since)).Scan(&rows, &failed, &first)
	return rows + first, failed, err
}

func insertAlert(ctx context.Context, tx *sql.Tx, a *alert.Alert) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO alert_events (id, subscription_id, event, destination_id, destination_name, message, data, fired_at, status, next_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $8)`,
		a.ID, a.SubscriptionID, a.Event, a.DestinationID, cleanText(a.DestinationName), cleanText(a.Message), string(a.Data), ms(a.FiredAt))
	if err != nil {
		return fmt.Errorf("record alert: %w", err)
	}
	return nil
}

// FireAlert opens the episode and records a, only if the episode was not open.
func (s *DB) FireAlert(ctx context.Context, ep alert.Episode, at time.Time, a *alert.Alert) (bool, error) {
	opened := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_episodes (subscription_id, cond, destination_id, is_open, opened_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (subscription_id, cond, destination_id) DO UPDATE SET is_open = excluded.is_open, opened_at = excluded.opened_at, cleared_at = NULL
WHERE alert_episodes.is_open = $6`, ep.SubscriptionID, ep.Condition, ep.DestinationID, true, ms(at), false)
		if err != nil {
			return fmt.Errorf("open alert episode: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		opened = true
		if a == nil {
			return nil
		}
		return insertAlert(ctx, tx, a)
	})
	return opened, err
}

// ClearEpisode closes an open episode and records then, if given.
func (s *DB) ClearEpisode(ctx context.Context, ep alert.Episode, at time.Time, then *alert.Alert) (bool, error) {
	cleared := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alert_episodes SET is_open = $1, cleared_at = $2
WHERE subscription_id = $3 AND cond = $4 AND destination_id = $5 AND is_open = $6`, false, ms(at), ep.SubscriptionID, ep.Condition, ep.DestinationID, true)
		if err != nil {
			return fmt.Errorf("clear alert episode: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		cleared = true
		if then == nil {
			return nil
		}
		return insertAlert(ctx, tx, then)
	})
	return cleared, err
}

// OpenEpisodes lists the open episodes.
func (s *DB) OpenEpisodes(ctx context.Context) ([]alert.Episode, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subscription_id, cond, destination_id FROM alert_episodes WHERE is_open = $1`, true)
	if err != nil {
		return nil, fmt.Errorf("open alert episodes: %w", err)
	}
	defer rows.Close()
	var out []alert.Episode
	for rows.Next() {
		var ep alert.Episode
		if err := rows.Scan(&ep.SubscriptionID, &ep.Condition, &ep.DestinationID); err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, rows.Err()
}

const alertColumns = `id, subscription_id, event, destination_id, destination_name, message, data, fired_at, status, attempts,
    next_at, first_attempt_at, last_status_code, last_error, delivered_at`

func scanAlert(row interface{ Scan(...any) error }) (alert.Alert, error) {
	var a alert.Alert
	var data string
	var fired, next int64
	var first, delivered sql.NullInt64
	if err := row.Scan(&a.ID, &a.SubscriptionID, &a.Event, &a.DestinationID, &a.DestinationName, &a.Message, &data, &fired, &a.Status, &a.Attempts,
		&next, &first, &a.LastStatusCode, &a.LastError, &delivered); err != nil {
		return a, err
	}
	a.Data, a.FiredAt = json.RawMessage(data), fromMS(fired)
	if a.Status == alert.StatusPending || a.Status == alert.StatusRetrying {
		t := fromMS(next)
		a.NextAttemptAt = &t
	}
	a.FirstAttemptAt, a.DeliveredAt = fromNullMS(first), fromNullMS(delivered)
	return a, nil
}

// ClaimDueAlerts leases due alerts to node.
func (s *DB) ClaimDueAlerts(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]alert.Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM alert_events
WHERE status IN ('pending', 'retrying') AND next_at <= $1 AND lease_until < $1 ORDER BY next_at, id LIMIT $2`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due alerts: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []alert.Alert
	for _, id := range ids {
		res, err := s.exec(ctx, `UPDATE alert_events SET lease_owner = $1, lease_until = $2
WHERE id = $3 AND status IN ('pending', 'retrying') AND lease_until < $4`, node, ms(now.Add(lease)), id, ms(now))
		if err != nil {
			return nil, fmt.Errorf("lease alert: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // another node leased it first
		}
		a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alert_events WHERE id = $1`, id))
		if err != nil {
			return nil, fmt.Errorf("leased alert: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// RecordAlertAttempt stores an attempt's outcome and releases the lease.
func (s *DB) RecordAlertAttempt(ctx context.Context, a alert.Attempt) error {
	var delivered sql.NullInt64
	if a.Status == alert.StatusDelivered {
		delivered = sql.NullInt64{Int64: ms(a.At), Valid: true}
	}
	next := ms(a.At)
	if a.NextAt != nil {
		next = msCeil(*a.NextAt)
	}
	_, err := s.exec(ctx, `UPDATE alert_events SET status = $1, attempts = $2, next_at = $3,
    first_attempt_at = COALESCE(first_attempt_at, $4), last_status_code = $5, last_error = $6, delivered_at = $7,
    lease_owner = '', lease_until = 0 WHERE id = $8`,
		a.Status, a.N, next, ms(a.At), a.StatusCode, cleanText(a.Error), delivered, a.AlertID)
	if err != nil {
		return fmt.Errorf("record alert attempt: %w", err)
	}
	return nil
}

// ListAlerts returns alerts matching f, newest first.
func (s *DB) ListAlerts(ctx context.Context, f alert.Filter) ([]alert.Alert, error) {
	q := `SELECT ` + alertColumns + ` FROM alert_events WHERE 1 = 1`
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, cleanText(v))
			q += ` AND ` + col + ` = $` + strconv.Itoa(len(args))
		}
	}
	add("destination_id", f.DestinationID)
	add("subscription_id", f.SubscriptionID)
	add("event", f.Event)
	add("status", f.Status)
	args = append(args, max(f.Limit, 1))
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY fired_at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

var _ alert.Store = (*DB)(nil)
