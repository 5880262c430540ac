package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qgate/qgate/internal/destination"
)

// The destination store: mappings and audiences as JSON text, the token only sealed. Every change
// increments the store-wide configuration generation (table config_generation, one row) in its
// own transaction and stamps the row with it: the row lock taken by the increment orders
// concurrent changes, so a reader that sees generation g sees every change numbered up to g.

const destinationColumns = `id, name, description, url, username, sealed_token, token_last4,
	identity_mappings, attribute_mappings, audiences, rate_limit_per_minute, enabled, paused,
	version, created_at, updated_at, deleted_at, generation, consent_policy`

type destinationJSON struct {
	identity, attribute, audiences, consent string
}

func encodeDestinationLists(d destination.Destination) (destinationJSON, error) {
	var out destinationJSON
	for _, f := range []struct {
		dst *string
		v   any
	}{
		{&out.identity, dstNonNil(d.IdentityMappings)},
		{&out.attribute, dstNonNil(d.AttributeMappings)},
		{&out.audiences, dstNonNil(d.Audiences)},
		{&out.consent, destination.ConsentPolicy{Require: dstNonNil(d.ConsentPolicy.Require)}},
	} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return out, fmt.Errorf("encode destination %s: %w", d.ID, err)
		}
		*f.dst = string(b)
	}
	return out, nil
}

func dstNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CreateDestination inserts d; destination.ErrNameTaken when a live destination has its name.
func (s *DB) CreateDestination(ctx context.Context, d destination.Destination) error {
	j, err := encodeDestinationLists(d)
	if err != nil {
		return err
	}
	err = s.inGeneration(ctx, func(tx *sql.Tx, gen int64) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO destinations (`+destinationColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			d.ID, d.Name, d.Description, d.URL, d.Username, d.SealedToken, d.TokenLast4,
			j.identity, j.attribute, j.audiences, d.RateLimitPerMinute, d.Enabled, d.Paused,
			d.Version, ms(d.CreatedAt), ms(d.UpdatedAt), dstNullMS(d.DeletedAt), gen, j.consent)
		return err == nil, err
	})
	if isUniqueViolation(err) {
		return destination.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("create destination: %w", err)
	}
	return nil
}

// ConfigGeneration returns the generation of the latest destination change committed.
func (s *DB) ConfigGeneration(ctx context.Context) (int64, error) {
	var gen int64
	if err := s.db.QueryRowContext(ctx, `SELECT generation FROM config_generation WHERE id = 1`).Scan(&gen); err != nil {
		return 0, fmt.Errorf("read config generation: %w", err)
	}
	return gen, nil
}

// inGeneration runs write in a transaction that first increments the configuration generation
// and passes the new value; it commits only when write reports a change, and rolls back
// otherwise (nothing changed, or an error), leaving the generation where it was.
func (s *DB) inGeneration(ctx context.Context, write func(tx *sql.Tx, gen int64) (changed bool, err error)) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var gen int64
	if err := tx.QueryRowContext(ctx, `UPDATE config_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation`).Scan(&gen); err != nil {
		return fmt.Errorf("increment config generation: %w", err)
	}
	changed, err := write(tx.Tx, gen)
	if err != nil || !changed {
		return err
	}
	return tx.Commit()
}

// GetDestination returns a destination by ID; a deleted one only when includeDeleted.
func (s *DB) GetDestination(ctx context.Context, id string, includeDeleted bool) (destination.Destination, error) {
	q := `SELECT ` + destinationColumns + ` FROM destinations WHERE id = $1`
	if !includeDeleted {
		q += ` AND deleted_at IS NULL`
	}
	d, err := scanDestination(s.db.QueryRowContext(ctx, q, id))
	if err != nil {
		return destination.Destination{}, notFound(err, destination.ErrNotFound)
	}
	return d, nil
}

// ListDestinations returns up to limit live destinations with IDs after afterID, in ID order.
func (s *DB) ListDestinations(ctx context.Context, afterID string, limit int) ([]destination.Destination, error) {
	return s.queryDestinations(ctx, `SELECT `+destinationColumns+` FROM destinations
		WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, afterID, limit)
}

// DestinationsChangedAfter returns every destination, deleted ones included, whose last change
// has a generation above gen (0: all), in ID order.
func (s *DB) DestinationsChangedAfter(ctx context.Context, gen int64) ([]destination.Destination, error) {
	return s.queryDestinations(ctx, `SELECT `+destinationColumns+` FROM destinations
		WHERE generation > $1 ORDER BY id`, gen)
}

// UpdateDestination replaces a live destination whose version is still expectVersion.
func (s *DB) UpdateDestination(ctx context.Context, d destination.Destination, expectVersion int64) error {
	j, err := encodeDestinationLists(d)
	if err != nil {
		return err
	}
	var n int64
	err = s.inGeneration(ctx, func(tx *sql.Tx, gen int64) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE destinations SET name = $1, description = $2, url = $3,
		username = $4, sealed_token = $5, token_last4 = $6, identity_mappings = $7,
		attribute_mappings = $8, audiences = $9, rate_limit_per_minute = $10, enabled = $11,
		paused = $12, version = $13, updated_at = $14, generation = $15, consent_policy = $18
		WHERE id = $16 AND version = $17 AND deleted_at IS NULL`,
			d.Name, d.Description, d.URL, d.Username, d.SealedToken, d.TokenLast4, j.identity,
			j.attribute, j.audiences, d.RateLimitPerMinute, d.Enabled, d.Paused, d.Version,
			ms(d.UpdatedAt), gen, d.ID, expectVersion, j.consent)
		if err != nil {
			return false, err
		}
		n, err = res.RowsAffected()
		return n > 0, err
	})
	if isUniqueViolation(err) {
		return destination.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("update destination: %w", err)
	}
	if n == 0 {
		if _, err := s.GetDestination(ctx, d.ID, false); err != nil {
			return err // ErrNotFound, or a database error
		}
		return destination.ErrVersionConflict
	}
	return nil
}

// DeleteDestination soft-deletes a live destination, bumping its version.
func (s *DB) DeleteDestination(ctx context.Context, id string, at time.Time) error {
	var n int64
	err := s.inGeneration(ctx, func(tx *sql.Tx, gen int64) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE destinations SET deleted_at = $1,
		updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1 ELSE $1 END, version = version + 1,
		generation = $2
		WHERE id = $3 AND deleted_at IS NULL`, ms(at), gen, id)
		if err != nil {
			return false, err
		}
		n, err = res.RowsAffected()
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("delete destination: %w", err)
	}
	if n == 0 {
		return destination.ErrNotFound
	}
	return nil
}

func (s *DB) queryDestinations(ctx context.Context, q string, args ...any) ([]destination.Destination, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query destinations: %w", err)
	}
	defer rows.Close()
	out := []destination.Destination{}
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query destinations: %w", err)
	}
	return out, nil
}

type dstScanner interface{ Scan(dest ...any) error }

func scanDestination(r dstScanner) (destination.Destination, error) {
	var d destination.Destination
	var identity, attribute, audiences, consent string
	var created, updated int64
	var deleted sql.NullInt64
	err := r.Scan(&d.ID, &d.Name, &d.Description, &d.URL, &d.Username, &d.SealedToken, &d.TokenLast4,
		&identity, &attribute, &audiences, &d.RateLimitPerMinute, &d.Enabled, &d.Paused,
		&d.Version, &created, &updated, &deleted, &d.Generation, &consent)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(identity), &d.IdentityMappings); err != nil {
		return d, fmt.Errorf("destination %s: identity_mappings: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(attribute), &d.AttributeMappings); err != nil {
		return d, fmt.Errorf("destination %s: attribute_mappings: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(audiences), &d.Audiences); err != nil {
		return d, fmt.Errorf("destination %s: audiences: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(consent), &d.ConsentPolicy); err != nil {
		return d, fmt.Errorf("destination %s: consent_policy: %w", d.ID, err)
	}
	d.ConsentPolicy.Require = dstNonNil(d.ConsentPolicy.Require)
	d.IdentityMappings = dstNonNil(d.IdentityMappings)
	d.AttributeMappings = dstNonNil(d.AttributeMappings)
	d.Audiences = dstNonNil(d.Audiences)
	d.CreatedAt, d.UpdatedAt, d.DeletedAt = fromMS(created), fromMS(updated), fromNullMS(deleted)
	return d, nil
}

func dstNullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}
