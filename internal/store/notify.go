package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/notify"
)

// The notification store: channels (secret sealed), and notifications once by ID whose
// deliveries are the delivery engine's (deliveries, parked).

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
	_, err := s.exec(ctx, `INSERT INTO notification_channels (`+channelColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
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
	res, err := s.exec(ctx, `UPDATE notification_channels SET name = $1, url = $2, sealed_secret = $3, secret_last4 = $4, events = $5,
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
	res, err := s.exec(ctx, `UPDATE notification_channels SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2 AND deleted_at IS NULL`, ms(at), id)
	if err != nil {
		return fmt.Errorf("delete channel: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notify.ErrNotFound
	}
	return nil
}

// PublishNotifications records each message once and, when new, hands its deliveries to the
// delivery engine in the same transaction: an update row named by the message ID (so GET
// /v1/updates/{id} shows its fan-out), a pending delivery per channel (the recipient's email
// hashed, as a profile's) and the job parked due now for the channel's lane. A message seen
// before changes nothing: two nodes or two syncs cannot both publish it.
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
			if len(og.Deliveries) == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO updates (update_id, profile_key, received_at, routed_at, audiences)
VALUES ($1, $2, $3, $3, '[]') ON CONFLICT (update_id) DO NOTHING`, m.ID, m.ID, ms(now)); err != nil {
				return fmt.Errorf("record notification update: %w", err)
			}
			var email sql.NullString
			if m.Email != "" {
				email = sql.NullString{String: delivery.HashIdentity(m.Email), Valid: true}
			}
			for _, t := range og.Deliveries {
				job, err := delivery.EncodeJob(delivery.Job{DeliveryID: t.DeliveryID, UpdateID: m.ID, DestinationID: t.ChannelID,
					ProfileKey: m.ID, ReceivedAt: now, Payload: t.Payload})
				if err != nil {
					return fmt.Errorf("encode notification job: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (delivery_id, update_id, destination_id, status, created_at, updated_at, email_hash)
VALUES ($1, $2, $3, 'pending', $4, $4, $5) ON CONFLICT (delivery_id) DO NOTHING`, t.DeliveryID, m.ID, t.ChannelID, ms(now), email); err != nil {
					return fmt.Errorf("record notification delivery: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO parked (delivery_id, destination_id, profile_key, seq, due_at, attempts, first_attempt_at, job)
VALUES ($1, $2, $3, 0, $4, 0, NULL, $5) ON CONFLICT (delivery_id) DO NOTHING`, t.DeliveryID, t.ChannelID, m.ID, ms(now), job); err != nil {
					return fmt.Errorf("park notification delivery: %w", err)
				}
			}
		}
		return nil
	})
	return fresh, err
}

// CancelNotifications ends the queued (pending or retrying) deliveries of the messages about
// subject as excluded with reason; the lane closes their parked copies unsent. One in flight
// may still arrive.
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
	res, err := s.exec(ctx, `UPDATE deliveries SET status = 'excluded', reason = $1, next_attempt_at = NULL, updated_at = $2
WHERE status IN ('pending', 'retrying') AND update_id IN (
    SELECT id FROM notifications WHERE connection_id = $3 AND subject = $4 AND type IN (`+strings.Join(ph, ", ")+`))`, args...)
	if err != nil {
		return 0, fmt.Errorf("cancel notifications: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

var _ notify.Store = (*DB)(nil)
