package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/qgate/qgate/internal/access"
)

// CreateKey stores a new API key (its hash only).
func (s *DB) CreateKey(ctx context.Context, k access.Key) error {
	if err := checkIDs("id", k.ID); err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	_, err := s.exec(ctx, `INSERT INTO api_keys (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, cleanText(k.Name), cleanText(string(k.Role)), k.Hash, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	return nil
}

// GetKey returns a key by ID, revoked or not.
func (s *DB) GetKey(ctx context.Context, id string) (access.Key, error) {
	var k access.Key
	var role string
	var created int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, role, hash, created_at, revoked_at FROM api_keys WHERE id = $1`, cleanText(id)).
		Scan(&k.ID, &k.Name, &role, &k.Hash, &created, &revoked)
	if err != nil {
		return access.Key{}, notFound(err, access.ErrNotFound)
	}
	k.Role, k.CreatedAt, k.RevokedAt = access.Role(role), fromMS(created), fromNullMS(revoked)
	return k, nil
}

// ListKeys returns every key, newest first.
func (s *DB) ListKeys(ctx context.Context) ([]access.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []access.Key
	for rows.Next() {
		var k access.Key
		var role string
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &role, &created, &revoked); err != nil {
			return nil, err
		}
		k.Role, k.CreatedAt, k.RevokedAt = access.Role(role), fromMS(created), fromNullMS(revoked)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey marks a key revoked; revoking an unknown or revoked key is ErrNotFound.
func (s *DB) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ms(at), cleanText(id))
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return access.ErrNotFound
	}
	return nil
}
