package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/survey"
)

// The survey-watch store: connections (token sealed), sync runs and claims, and the synced
// API v3 data, which a successful sync replaces in the transaction that records it.

const surveyConnColumns = `id, name, base_url, sealed_token, token_last4, sealed_events_key, brand_id, incremental_every, full_every,
	expiry_lead, low_completion_below, bounce_rate_above, version, created_at, updated_at, deleted_at, sync_requested_at,
	last_incremental_at, last_full_at, surveys_since`

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}

func scanSurveyConn(row interface{ Scan(...any) error }) (survey.Connection, error) {
	var c survey.Connection
	var inc, full, lead, created, updated int64
	var deleted, req, lastInc, lastFull, since sql.NullInt64
	if err := row.Scan(&c.ID, &c.Name, &c.BaseURL, &c.Sealed, &c.TokenEnd, &c.EventsKeySealed, &c.BrandID, &inc, &full, &lead, &c.LowCompletionBelow, &c.BounceRateAbove, &c.Version,
		&created, &updated, &deleted, &req, &lastInc, &lastFull, &since); err != nil {
		return c, err
	}
	c.IncrementalEvery, c.FullEvery, c.ExpiryLead = survey.Duration(time.Duration(inc)*time.Millisecond),
		survey.Duration(time.Duration(full)*time.Millisecond), survey.Duration(time.Duration(lead)*time.Millisecond)
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	c.EventsKeySet = len(c.EventsKeySealed) > 0
	c.DeletedAt, c.SyncRequestedAt, c.LastIncrementalAt, c.LastFullAt, c.SurveysSince =
		fromNullMS(deleted), fromNullMS(req), fromNullMS(lastInc), fromNullMS(lastFull), fromNullMS(since)
	return c, nil
}

// CreateSurveyConnection inserts c; survey.ErrNameTaken on a live name clash.
func (s *DB) CreateSurveyConnection(ctx context.Context, c survey.Connection) error {
	_, err := s.exec(ctx, `INSERT INTO survey_connections (`+surveyConnColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, NULL, NULL, NULL, NULL)`,
		c.ID, c.Name, c.BaseURL, c.Sealed, c.TokenEnd, c.EventsKeySealed, c.BrandID, c.IncrementalEvery.D().Milliseconds(), c.FullEvery.D().Milliseconds(),
		c.ExpiryLead.D().Milliseconds(), c.LowCompletionBelow, c.BounceRateAbove, c.Version, ms(c.CreatedAt), ms(c.UpdatedAt))
	if isUniqueViolation(err) {
		return survey.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("create survey connection: %w", err)
	}
	return nil
}

// GetSurveyConnection returns a live connection with its last and last good sync, read in
// one snapshot: a sync records its run and the connection's schedule and brand in one
// transaction, so a reader never sees the run finished and the connection from before it.
func (s *DB) GetSurveyConnection(ctx context.Context, id string) (survey.Connection, error) {
	var c survey.Connection
	err := s.readSnapshot(ctx, func(q querier) error {
		var err error
		if c, err = scanSurveyConn(q.QueryRowContext(ctx, `SELECT `+surveyConnColumns+` FROM survey_connections WHERE id = $1 AND deleted_at IS NULL`, id)); err != nil {
			return notFound(err, survey.ErrNotFound)
		}
		return withLastSyncs(ctx, q, &c)
	})
	return c, err
}

// ListSurveyConnections returns every live connection in ID order, read in one snapshot.
func (s *DB) ListSurveyConnections(ctx context.Context) ([]survey.Connection, error) {
	var out []survey.Connection
	err := s.readSnapshot(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT `+surveyConnColumns+` FROM survey_connections WHERE deleted_at IS NULL ORDER BY id`)
		if err != nil {
			return fmt.Errorf("list survey connections: %w", err)
		}
		for rows.Next() {
			c, err := scanSurveyConn(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			if err := withLastSyncs(ctx, q, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// SyncRunRetention is how long sync runs are kept (the last good one always is).
const SyncRunRetention = 7 * 24 * time.Hour

const syncRunColumns = `id, connection_id, mode, node_id, started_at, ended_at, outcome, counts, requests, error`

func withLastSyncs(ctx context.Context, q querier, c *survey.Connection) error {
	last, err := lastSync(ctx, q, c.ID, "")
	if err != nil {
		return err
	}
	c.LastSync = last
	if last != nil && last.Outcome == survey.OutcomeSucceeded {
		c.LastGoodSync = last
		return nil
	}
	c.LastGoodSync, err = lastSync(ctx, q, c.ID, survey.OutcomeSucceeded)
	return err
}

func lastSync(ctx context.Context, q querier, connID, outcome string) (*survey.SyncRun, error) {
	query := `SELECT ` + syncRunColumns + ` FROM survey_sync_runs WHERE connection_id = $1`
	args := []any{connID}
	if outcome != "" {
		query += ` AND outcome = $2`
		args = append(args, outcome)
	}
	var r survey.SyncRun
	var started int64
	var ended sql.NullInt64
	var counts string
	err := q.QueryRowContext(ctx, query+` ORDER BY started_at DESC, id DESC LIMIT 1`, args...).Scan(&r.ID, &r.ConnectionID, &r.Mode, &r.Node,
		&started, &ended, &r.Outcome, &counts, &r.Requests, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last survey sync: %w", err)
	}
	r.StartedAt, r.EndedAt = fromMS(started), fromNullMS(ended)
	_ = json.Unmarshal([]byte(counts), &r.Counts)
	return &r, nil
}

// UpdateSurveyConnection replaces the configuration of c.ID at expectVersion.
func (s *DB) UpdateSurveyConnection(ctx context.Context, c survey.Connection, expectVersion int64) error {
	res, err := s.exec(ctx, `UPDATE survey_connections SET name = $1, base_url = $2, sealed_token = $3, token_last4 = $4,
    incremental_every = $5, full_every = $6, expiry_lead = $7, version = $8, updated_at = $9, sealed_events_key = $10,
    low_completion_below = $11, bounce_rate_above = $12
WHERE id = $13 AND deleted_at IS NULL AND version = $14`,
		c.Name, c.BaseURL, c.Sealed, c.TokenEnd, c.IncrementalEvery.D().Milliseconds(), c.FullEvery.D().Milliseconds(),
		c.ExpiryLead.D().Milliseconds(), c.Version, ms(c.UpdatedAt), c.EventsKeySealed, c.LowCompletionBelow, c.BounceRateAbove, c.ID, expectVersion)
	if isUniqueViolation(err) {
		return survey.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("update survey connection: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetSurveyConnection(ctx, c.ID); err != nil {
			return err
		}
		return survey.ErrVersionConflict
	}
	return nil
}

// surveyDataTables hold a connection's synced data, children first.
var surveyDataTables = []string{"survey_history", "survey_links", "survey_distributions", "surveys", "survey_users", "survey_contacts", "survey_directories"}

// DeleteSurveyConnection soft-deletes the connection and removes its synced data.
func (s *DB) DeleteSurveyConnection(ctx context.Context, id string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE survey_connections SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2 AND deleted_at IS NULL`, ms(at), id)
		if err != nil {
			return fmt.Errorf("delete survey connection: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return survey.ErrNotFound
		}
		for _, t := range surveyDataTables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE connection_id = $1`, id); err != nil {
				return fmt.Errorf("delete survey connection data: %w", err)
			}
		}
		return nil
	})
}

func (s *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	if err := f(tx.Tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// RequestSurveySync marks a live connection for a full sync.
func (s *DB) RequestSurveySync(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE survey_connections SET sync_requested_at = COALESCE(sync_requested_at, $1) WHERE id = $2 AND deleted_at IS NULL`, ms(at), id)
	if err != nil {
		return fmt.Errorf("request survey sync: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return survey.ErrNotFound
	}
	return nil
}

// SetSurveyBrand records the brand of a connection.
func (s *DB) SetSurveyBrand(ctx context.Context, id, brandID string) error {
	_, err := s.exec(ctx, `UPDATE survey_connections SET brand_id = $1 WHERE id = $2`, brandID, id)
	return err
}

// ClaimSurveyConnection takes or renews node's claim on a connection until now+ttl.
func (s *DB) ClaimSurveyConnection(ctx context.Context, id, node string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO survey_connection_claims (connection_id, node_id, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (connection_id) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at
WHERE survey_connection_claims.node_id = excluded.node_id OR survey_connection_claims.expires_at < $4`, id, node, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("claim survey connection: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseSurveyConnection gives up node's claim.
func (s *DB) ReleaseSurveyConnection(ctx context.Context, id, node string) error {
	_, err := s.exec(ctx, `DELETE FROM survey_connection_claims WHERE connection_id = $1 AND node_id = $2`, id, node)
	return err
}

// StartSurveySync records a running sync.
func (s *DB) StartSurveySync(ctx context.Context, r survey.SyncRun) error {
	_, err := s.exec(ctx, `INSERT INTO survey_sync_runs (`+syncRunColumns+`) VALUES ($1, $2, $3, $4, $5, NULL, $6, '{}', 0, '')`,
		r.ID, r.ConnectionID, r.Mode, r.Node, ms(r.StartedAt), r.Outcome)
	if err != nil {
		return fmt.Errorf("start survey sync: %w", err)
	}
	return nil
}

// FinishSurveySync records the end of a sync and, on success, applies snap and moves the
// schedule, all in one transaction.
func (s *DB) FinishSurveySync(ctx context.Context, r survey.SyncRun, snap *survey.Snapshot, next survey.ScheduleState) error {
	counts, _ := json.Marshal(r.Counts)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE survey_sync_runs SET ended_at = $1, outcome = $2, counts = $3, requests = $4, error = $5 WHERE id = $6`,
			nullMS(r.EndedAt), r.Outcome, string(counts), r.Requests, r.Error, r.ID); err != nil {
			return fmt.Errorf("finish survey sync: %w", err)
		}
		// Keep a week of runs per connection, and always the last good one.
		if _, err := tx.ExecContext(ctx, `DELETE FROM survey_sync_runs WHERE connection_id = $1 AND started_at < $2 AND id <> $3
    AND id <> COALESCE((SELECT g.id FROM survey_sync_runs g WHERE g.connection_id = $1 AND g.outcome = 'succeeded'
        ORDER BY g.started_at DESC, g.id DESC LIMIT 1), '')`, r.ConnectionID, ms(r.StartedAt.Add(-SyncRunRetention)), r.ID); err != nil {
			return fmt.Errorf("prune survey syncs: %w", err)
		}
		if snap == nil {
			return nil
		}
		if err := applySnapshot(ctx, tx, r.ConnectionID, snap); err != nil {
			return fmt.Errorf("apply survey sync: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE survey_connections SET
    last_incremental_at = COALESCE($1, last_incremental_at), last_full_at = COALESCE($2, last_full_at),
    surveys_since = COALESCE($3, surveys_since),
    sync_requested_at = CASE WHEN sync_requested_at <= $4 THEN NULL ELSE sync_requested_at END,
    brand_id = CASE WHEN $5 = '' THEN brand_id ELSE $5 END
WHERE id = $6`, nullMS(next.LastIncrementalAt), nullMS(next.LastFullAt), nullMS(next.SurveysSince), nullMS(next.ClearRequestBefore), next.BrandID, r.ConnectionID)
		if err != nil {
			return fmt.Errorf("survey schedule: %w", err)
		}
		return nil
	})
}

func applySnapshot(ctx context.Context, tx *sql.Tx, connID string, snap *survey.Snapshot) error {
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	if snap.Full {
		for _, t := range surveyDataTables {
			if err := exec(`DELETE FROM `+t+` WHERE connection_id = $1`, connID); err != nil {
				return err
			}
		}
		for _, u := range snap.Users {
			if err := exec(`INSERT INTO survey_users (connection_id, id, username, email, first_name, last_name, user_type, account_status, division_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`, connID, u.ID, u.Username, u.Email, u.FirstName, u.LastName, u.UserType, u.AccountStatus, u.DivisionID); err != nil {
				return err
			}
		}
		for _, d := range snap.Directories {
			if err := exec(`INSERT INTO survey_directories (connection_id, id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, connID, d.ID, d.Name); err != nil {
				return err
			}
		}
		for _, c := range snap.Contacts {
			if err := exec(`INSERT INTO survey_contacts (connection_id, directory_id, id, email, first_name, last_name, ext_ref)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, connID, c.DirectoryID, c.ID, c.Email, c.FirstName, c.LastName, c.ExtRef); err != nil {
				return err
			}
		}
	}
	for _, sd := range snap.Surveys {
		sv := sd.Survey
		if err := exec(`INSERT INTO surveys (connection_id, id, name, owner_id, last_modified, creation_date, is_active, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (connection_id, id) DO UPDATE SET name = excluded.name, owner_id = excluded.owner_id, last_modified = excluded.last_modified,
    creation_date = excluded.creation_date, is_active = excluded.is_active, expires_at = excluded.expires_at`,
			connID, sv.ID, sv.Name, sv.OwnerID, ms(sv.LastModified), ms(sv.CreationDate), sv.IsActive, nullMS(sv.ExpiresAt)); err != nil {
			return err
		}
		for _, dd := range sd.Distributions {
			d := dd.Distribution
			stats, _ := json.Marshal(d.Stats)
			if err := exec(`INSERT INTO survey_distributions (connection_id, id, survey_id, owner_id, organization_id, mailing_list_id, request_type,
    request_status, created_date, send_date, link_expires_at, stats)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (connection_id, id) DO UPDATE SET survey_id = excluded.survey_id, owner_id = excluded.owner_id,
    organization_id = excluded.organization_id, mailing_list_id = excluded.mailing_list_id, request_type = excluded.request_type,
    request_status = excluded.request_status, created_date = excluded.created_date, send_date = excluded.send_date,
    link_expires_at = excluded.link_expires_at, stats = excluded.stats`,
				connID, d.ID, sv.ID, d.OwnerID, d.OrganizationID, d.MailingListID, d.RequestType, d.RequestStatus, ms(d.CreatedDate),
				nullMS(d.SendDate), nullMS(d.LinkExpiresAt), string(stats)); err != nil {
				return err
			}
			if !dd.Detailed {
				continue
			}
			if !snap.Full {
				for _, t := range []string{"survey_history", "survey_links"} {
					if err := exec(`DELETE FROM `+t+` WHERE connection_id = $1 AND distribution_id = $2`, connID, d.ID); err != nil {
						return err
					}
				}
			}
			for _, h := range dd.History {
				if err := exec(`INSERT INTO survey_history (connection_id, distribution_id, contact_id, status, sent_at, opened_at, response_id,
    response_started_at, response_completed_at, survey_link)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, connID, d.ID, h.ContactID, h.Status, nullMS(h.SentAt), nullMS(h.OpenedAt),
					h.ResponseID, nullMS(h.ResponseStartedAt), nullMS(h.ResponseCompletedAt), h.SurveyLink); err != nil {
					return err
				}
			}
			for _, l := range dd.Links {
				if err := exec(`INSERT INTO survey_links (connection_id, distribution_id, contact_id, email, email_lc, first_name, last_name, link, link_expires_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, connID, d.ID, l.ContactID, l.Email, strings.ToLower(l.Email),
					l.FirstName, l.LastName, l.Link, nullMS(l.LinkExpiresAt), l.Status); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

const distributionColumns = `d.connection_id, d.id, d.survey_id, d.owner_id, d.organization_id, d.mailing_list_id, d.request_type,
	d.request_status, d.created_date, d.send_date, d.link_expires_at, d.stats, s.name, s.expires_at, c.base_url, c.brand_id`

const distributionFrom = ` FROM survey_distributions d
JOIN surveys s ON s.connection_id = d.connection_id AND s.id = d.survey_id
JOIN survey_connections c ON c.id = d.connection_id AND c.deleted_at IS NULL`

func scanDistribution(row interface{ Scan(...any) error }) (survey.DistributionView, error) {
	var d survey.DistributionView
	var created int64
	var send, exp, sexp sql.NullInt64
	var stats string
	if err := row.Scan(&d.ConnectionID, &d.ID, &d.SurveyID, &d.OwnerID, &d.OrganizationID, &d.MailingListID, &d.RequestType,
		&d.RequestStatus, &created, &send, &exp, &stats, &d.SurveyName, &sexp, &d.BaseURL, &d.BrandID); err != nil {
		return d, err
	}
	d.CreatedDate, d.SendDate, d.LinkExpiresAt, d.SurveyExpiresAt = fromMS(created), fromNullMS(send), fromNullMS(exp), fromNullMS(sexp)
	_ = json.Unmarshal([]byte(stats), &d.Stats)
	return d, nil
}

func (s *DB) queryDistributions(ctx context.Context, where string, args ...any) ([]survey.DistributionView, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+distributionColumns+distributionFrom+` WHERE `+where+` ORDER BY d.created_date, d.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("survey distributions: %w", err)
	}
	defer rows.Close()
	var out []survey.DistributionView
	for rows.Next() {
		d, err := scanDistribution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// LiveDistributions returns the connection's distributions whose links have not expired at now.
func (s *DB) LiveDistributions(ctx context.Context, connID string, now time.Time) ([]survey.Distribution, error) {
	ds, err := s.queryDistributions(ctx, `d.connection_id = $1 AND (d.link_expires_at IS NULL OR d.link_expires_at > $2)`, connID, ms(now))
	if err != nil {
		return nil, err
	}
	out := make([]survey.Distribution, len(ds))
	for i, d := range ds {
		out[i] = d.Distribution
	}
	return out, nil
}

const recipientQuery = `SELECT h.connection_id, d.survey_id, s.name, h.distribution_id, h.contact_id, COALESCE(l.email, ''),
	COALESCE(l.first_name, ''), COALESCE(l.last_name, ''), h.status, h.sent_at, h.response_completed_at, d.send_date,
	COALESCE(l.link_expires_at, d.link_expires_at), s.expires_at, COALESCE(NULLIF(l.link, ''), h.survey_link), c.base_url, c.brand_id
FROM survey_history h
JOIN survey_distributions d ON d.connection_id = h.connection_id AND d.id = h.distribution_id
JOIN surveys s ON s.connection_id = d.connection_id AND s.id = d.survey_id
JOIN survey_connections c ON c.id = h.connection_id AND c.deleted_at IS NULL
LEFT JOIN survey_links l ON l.connection_id = h.connection_id AND l.distribution_id = h.distribution_id AND l.contact_id = h.contact_id
WHERE `

func (s *DB) queryRecipients(ctx context.Context, where string, args ...any) ([]survey.Recipient, error) {
	rows, err := s.db.QueryContext(ctx, recipientQuery+where+` ORDER BY h.distribution_id, h.contact_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("survey recipients: %w", err)
	}
	defer rows.Close()
	var out []survey.Recipient
	for rows.Next() {
		var r survey.Recipient
		var sent, done, dsent, exp, sexp sql.NullInt64
		if err := rows.Scan(&r.ConnectionID, &r.SurveyID, &r.SurveyName, &r.DistributionID, &r.ContactID, &r.Email, &r.FirstName, &r.LastName,
			&r.Status, &sent, &done, &dsent, &exp, &sexp, &r.RespondLink, &r.BaseURL, &r.BrandID); err != nil {
			return nil, err
		}
		r.SentAt, r.ResponseCompletedAt, r.DistributionSentAt = fromNullMS(sent), fromNullMS(done), fromNullMS(dsent)
		r.LinkExpiresAt, r.SurveyExpiresAt = fromNullMS(exp), fromNullMS(sexp)
		r.ExpiresAt = survey.EarliestOf(r.LinkExpiresAt, r.SurveyExpiresAt)
		out = append(out, r)
	}
	return out, rows.Err()
}

const linkLive = `(COALESCE(l.link_expires_at, d.link_expires_at) IS NULL OR COALESCE(l.link_expires_at, d.link_expires_at) > $2)`

// SurveyRecipients returns the recipients of the connection's distributions whose links have
// not expired at now.
func (s *DB) SurveyRecipients(ctx context.Context, connID string, now time.Time) ([]survey.Recipient, error) {
	return s.queryRecipients(ctx, `h.connection_id = $1 AND `+linkLive, connID, ms(now))
}

// PersonSurveys returns a person's active surveys: not done, link and survey not expired.
func (s *DB) PersonSurveys(ctx context.Context, email string, now time.Time) ([]survey.Recipient, error) {
	return s.queryRecipients(ctx, `l.email_lc = $1 AND `+linkLive+` AND (s.expires_at IS NULL OR s.expires_at > $2)
    AND h.status NOT IN ('SurveyFinished', 'SurveyScreenedOut', 'SessionExpired')`, strings.ToLower(email), ms(now))
}

const surveyColumns = `s.connection_id, s.id, s.name, s.owner_id, s.last_modified, s.creation_date, s.is_active, s.expires_at, c.base_url, c.brand_id`

func scanSurvey(row interface{ Scan(...any) error }) (survey.Survey, error) {
	var sv survey.Survey
	var lm, cd int64
	var exp sql.NullInt64
	var base, brand string
	if err := row.Scan(&sv.ConnectionID, &sv.ID, &sv.Name, &sv.OwnerID, &lm, &cd, &sv.IsActive, &exp, &base, &brand); err != nil {
		return sv, err
	}
	sv.LastModified, sv.CreationDate, sv.ExpiresAt = fromMS(lm), fromMS(cd), fromNullMS(exp)
	sv.Links = survey.SurveyLinks(base, brand, sv.ID)
	return sv, nil
}

// ListSurveys returns surveys, of one connection when connID is set, only active ones when
// activeOnly, by name.
func (s *DB) ListSurveys(ctx context.Context, connID string, activeOnly bool) ([]survey.Survey, error) {
	q := `SELECT ` + surveyColumns + ` FROM surveys s JOIN survey_connections c ON c.id = s.connection_id AND c.deleted_at IS NULL WHERE 1 = 1`
	var args []any
	if connID != "" {
		args = append(args, connID)
		q += fmt.Sprintf(` AND s.connection_id = $%d`, len(args))
	}
	if activeOnly {
		args = append(args, true)
		q += fmt.Sprintf(` AND s.is_active = $%d`, len(args))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY s.name, s.id LIMIT 1000`, args...)
	if err != nil {
		return nil, fmt.Errorf("list surveys: %w", err)
	}
	defer rows.Close()
	var out []survey.Survey
	for rows.Next() {
		sv, err := scanSurvey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

// GetSurvey returns a survey (the first connection's, should two accounts share an ID) and
// its distributions.
func (s *DB) GetSurvey(ctx context.Context, surveyID string) (survey.Survey, []survey.DistributionView, error) {
	sv, err := scanSurvey(s.db.QueryRowContext(ctx, `SELECT `+surveyColumns+` FROM surveys s
JOIN survey_connections c ON c.id = s.connection_id AND c.deleted_at IS NULL WHERE s.id = $1 ORDER BY s.connection_id LIMIT 1`, surveyID))
	if err != nil {
		return sv, nil, notFound(err, survey.ErrSurveyNotFound)
	}
	ds, err := s.queryDistributions(ctx, `d.connection_id = $1 AND d.survey_id = $2`, sv.ConnectionID, sv.ID)
	return sv, ds, err
}

// GetDistribution returns a distribution and its recipients.
func (s *DB) GetDistribution(ctx context.Context, distID string) (survey.DistributionView, []survey.Recipient, error) {
	ds, err := s.queryDistributions(ctx, `d.id = $1`, distID)
	if err != nil {
		return survey.DistributionView{}, nil, err
	}
	if len(ds) == 0 {
		return survey.DistributionView{}, nil, survey.ErrDistributionNotFound
	}
	rs, err := s.queryRecipients(ctx, `h.connection_id = $1 AND h.distribution_id = $2`, ds[0].ConnectionID, ds[0].ID)
	return ds[0], rs, err
}

// MarkSurveyResponse records a recipient's new status from a pushed event (a completed
// response), before the next sync fetches the history. It reports whether the row exists.
func (s *DB) MarkSurveyResponse(ctx context.Context, connID, distID, contactID, status, responseID string, at time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE survey_history SET status = $1, response_id = CASE WHEN $2 = '' THEN response_id ELSE $2 END,
    response_completed_at = CASE WHEN $1 = 'SurveyFinished' THEN $3 ELSE response_completed_at END
WHERE connection_id = $4 AND distribution_id = $5 AND contact_id = $6`, status, responseID, ms(at), connID, distID, contactID)
	if err != nil {
		return false, fmt.Errorf("mark survey response: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// SetSurveyActive records a survey (de)activated by a pushed event.
func (s *DB) SetSurveyActive(ctx context.Context, connID, surveyID string, active bool) (bool, error) {
	res, err := s.exec(ctx, `UPDATE surveys SET is_active = $1 WHERE connection_id = $2 AND id = $3`, active, connID, surveyID)
	if err != nil {
		return false, fmt.Errorf("set survey active: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

var _ survey.Store = (*DB)(nil)
