package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/notify"
)

// The notification store: channels (secret sealed), notifications once by ID, deliveries
// per channel with leases, and attempts.

const channelColumns = `id, name, kind, url, sealed_secret, secret_last4, events, connection_ids, version, created_at, updated_at`

func scanChannel(row interface{ Scan(...any) error }) (notify.Channel, error) {
	var c notify.Channel
	var events, conns string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Kind, &c.URL, &c.Sealed, &c.SecretEnd, &events, &conns, &c.Version, &created, &updated); err != nil {
		return c, err
	}
	_ = json.Unmarshal([]byte(events), &c.Events)
	_ = json.Unmarshal([]byte(conns), &c.ConnectionIDs)
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return c, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// CreateChannel inserts c.
func (s *DB) CreateChannel(ctx context.Context, c notify.Channel) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notification_channels (`+channelColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.ID, c.Name, c.Kind, c.URL, c.Sealed, c.SecretEnd, jsonList(c.Events), jsonList(c.ConnectionIDs), c.Version, ms(c.CreatedAt), ms(c.UpdatedAt))
	if isUniqueViolation(err) {
		return notify.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("create channel: %w", err)
	}
	return nil
}

// GetChannel returns a live channel.
func (s *DB) GetChannel(ctx context.Context, id string) (notify.Channel, error) {
	c, err := scanChannel(s.db.QueryRowContext(ctx, `SELECT `+channelColumns+` FROM notification_channels WHERE id = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return c, notFound(err, notify.ErrNotFound)
	}
	return c, nil
}

// ListChannels returns every live channel in ID order.
func (s *DB) ListChannels(ctx context.Context) ([]notify.Channel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+channelColumns+` FROM notification_channels WHERE deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	var out []notify.Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateChannel replaces c.ID at expectVersion.
func (s *DB) UpdateChannel(ctx context.Context, c notify.Channel, expectVersion int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE notification_channels SET name = $1, url = $2, sealed_secret = $3, secret_last4 = $4, events = $5,
    connection_ids = $6, version = $7, updated_at = $8 WHERE id = $9 AND deleted_at IS NULL AND version = $10`,
		c.Name, c.URL, c.Sealed, c.SecretEnd, jsonList(c.Events), jsonList(c.ConnectionIDs), c.Version, ms(c.UpdatedAt), c.ID, expectVersion)
	if isUniqueViolation(err) {
		return notify.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("update channel: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetChannel(ctx, c.ID); err != nil {
			return err
		}
		return notify.ErrVersionConflict
	}
	return nil
}

// DeleteChannel soft-deletes a channel.
func (s *DB) DeleteChannel(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE notification_channels SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2 AND deleted_at IS NULL`, ms(at), id)
	if err != nil {
		return fmt.Errorf("delete channel: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notify.ErrNotFound
	}
	return nil
}

// PublishNotifications records each message once and, when new, its deliveries.
func (s *DB) PublishNotifications(ctx context.Context, out []notify.Outgoing, now time.Time) (int, error) {
	fresh := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		fresh = 0
		for _, og := range out {
			m := og.Message
			links, _ := json.Marshal(m.Links)
			res, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, type, connection_id, subject, occurred_at, body, text, links, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`, m.ID, m.Type, m.ConnectionID, m.Subject, ms(m.OccurredAt), string(m.Body), m.Text, string(links), ms(now))
			if err != nil {
				return fmt.Errorf("record notification: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			fresh++
			for _, ch := range og.ChannelIDs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO notification_deliveries (id, notification_id, channel_id, status, next_at, created_at, updated_at)
VALUES ($1, $2, $3, 'pending', $4, $4, $4) ON CONFLICT DO NOTHING`, m.ID+"."+ch, m.ID, ch, ms(now)); err != nil {
					return fmt.Errorf("record notification delivery: %w", err)
				}
			}
		}
		return nil
	})
	return fresh, err
}

const deliveryColumns = `d.id, d.notification_id, d.channel_id, n.type, n.connection_id, d.status, d.attempts, d.next_at, d.first_attempt_at,
	d.last_status_code, d.last_error, d.delivered_at, n.occurred_at, d.created_at, d.updated_at, n.body, n.text, n.links`

func scanDelivery(row interface{ Scan(...any) error }) (notify.Delivery, error) {
	var d notify.Delivery
	var next, first, delivered sql.NullInt64
	var occurred, created, updated int64
	var body, links string
	if err := row.Scan(&d.ID, &d.NotificationID, &d.ChannelID, &d.Type, &d.ConnectionID, &d.Status, &d.Attempts, &next, &first,
		&d.LastStatusCode, &d.LastError, &delivered, &occurred, &created, &updated, &body, &d.Text, &links); err != nil {
		return d, err
	}
	d.NextAt, d.FirstAttemptAt, d.DeliveredAt = fromNullMS(next), fromNullMS(first), fromNullMS(delivered)
	d.OccurredAt, d.CreatedAt, d.UpdatedAt = fromMS(occurred), fromMS(created), fromMS(updated)
	d.Body = []byte(body)
	_ = json.Unmarshal([]byte(links), &d.Links)
	return d, nil
}

// ClaimDueNotifications leases due deliveries to node.
func (s *DB) ClaimDueNotifications(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]notify.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM notification_deliveries
WHERE status IN ('pending', 'retrying') AND next_at <= $1 AND lease_until < $1 ORDER BY next_at, id LIMIT $2`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due notifications: %w", err)
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
	var out []notify.Delivery
	for _, id := range ids {
		res, err := s.db.ExecContext(ctx, `UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2
WHERE id = $3 AND status IN ('pending', 'retrying') AND lease_until < $4`, node, ms(now.Add(lease)), id, ms(now))
		if err != nil {
			return nil, fmt.Errorf("lease notification: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // another node leased it first
		}
		d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM notification_deliveries d
JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1`, id))
		if err != nil {
			return nil, fmt.Errorf("leased notification: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// RecordNotificationAttempt stores an attempt and the delivery's next state.
func (s *DB) RecordNotificationAttempt(ctx context.Context, a notify.Attempt) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notification_attempts (delivery_id, n, at, status_code, error, latency_ms)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, a.DeliveryID, a.N, ms(a.At), a.StatusCode, a.Error, a.Latency.Milliseconds()); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		var delivered sql.NullInt64
		if a.Status == notify.StatusDelivered {
			delivered = sql.NullInt64{Int64: ms(a.At), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `UPDATE notification_deliveries SET status = $1, attempts = $2, next_at = $3,
    first_attempt_at = COALESCE(first_attempt_at, $4), last_status_code = $5, last_error = $6, delivered_at = $7,
    lease_owner = '', lease_until = 0, updated_at = $4 WHERE id = $8 AND status <> 'cancelled'`,
			a.Status, a.N, nullMS(a.NextAt), ms(a.At), a.StatusCode, a.Error, delivered, a.DeliveryID)
		if err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		return nil
	})
}

// DeferNotification releases a leased delivery without an attempt, due again at until.
func (s *DB) DeferNotification(ctx context.Context, id string, until time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE notification_deliveries SET next_at = $1, lease_owner = '', lease_until = 0
WHERE id = $2 AND status IN ('pending', 'retrying')`, msCeil(until), id)
	if err != nil {
		return fmt.Errorf("defer notification: %w", err)
	}
	return nil
}

// NotificationDeliveries lists deliveries, newest first.
func (s *DB) NotificationDeliveries(ctx context.Context, f notify.Filter) ([]notify.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE 1 = 1`
	var args []any
	for _, c := range []struct{ col, v string }{{"d.status", f.Status}, {"d.channel_id", f.ChannelID}, {"d.notification_id", f.NotificationID}} {
		if c.v != "" {
			args = append(args, c.v)
			q += ` AND ` + c.col + ` = $` + strconv.Itoa(len(args))
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY d.created_at DESC, d.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("notification deliveries: %w", err)
	}
	defer rows.Close()
	var out []notify.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CancelNotifications cancels queued deliveries of messages about subject. One in flight
// may still arrive; its outcome does not undo the cancellation.
func (s *DB) CancelNotifications(ctx context.Context, connID, subject string, types []string, reason string, now time.Time) (int, error) {
	if len(types) == 0 {
		return 0, nil
	}
	args := []any{reason, ms(now), connID, subject}
	ph := make([]string, len(types))
	for i, t := range types {
		args = append(args, t)
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	res, err := s.db.ExecContext(ctx, `UPDATE notification_deliveries SET status = 'cancelled', last_error = $1, next_at = NULL, updated_at = $2
WHERE status IN ('pending', 'retrying') AND notification_id IN (
    SELECT id FROM notifications WHERE connection_id = $3 AND subject = $4 AND type IN (`+strings.Join(ph, ", ")+`))`, args...)
	if err != nil {
		return 0, fmt.Errorf("cancel notifications: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ReplayNotifications makes dead-lettered deliveries pending again.
func (s *DB) ReplayNotifications(ctx context.Context, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := []any{ms(now)}
	ph := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		ph[i] = "$" + strconv.Itoa(i+2)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE notification_deliveries SET status = 'pending', next_at = $1, first_attempt_at = NULL,
    lease_owner = '', lease_until = 0, updated_at = $1 WHERE status = 'dead_lettered' AND id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("replay notifications: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

var _ notify.Store = (*DB)(nil)
