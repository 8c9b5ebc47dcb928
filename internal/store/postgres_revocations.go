package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// RevokeToken writes the revocation to Postgres at once (not through the
// history queue), keeping the later expiry when the id was revoked before,
// and deletes the revocations that expired a day before expiresAt or
// earlier. Errors: a closed store, or Postgres out of reach,
// CodeUnavailable; an ended ctx wraps its error.
func (p *Postgres) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	if err := p.open(); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO revoked_tokens (id, expires_at) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, EXCLUDED.expires_at);
`, id, expiresAt)
	if err != nil {
		return revocationError(ctx, "revoke token", err)
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM revoked_tokens WHERE expires_at < $1`, expiresAt.Add(-24*time.Hour)); err != nil {
		// The revocation is written; old rows wait for the next one.
		p.log.Warn("deleting expired token revocations failed", "err", err)
	}
	return nil
}

// FindRevokedTokens reads the revocations that expire after now. Errors as
// RevokeToken's.
func (p *Postgres) FindRevokedTokens(ctx context.Context, now time.Time) ([]calls.RevokedToken, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT id, expires_at FROM revoked_tokens WHERE expires_at > $1`, now)
	if err != nil {
		return nil, revocationError(ctx, "find revoked tokens", err)
	}
	defer rows.Close()
	out := []calls.RevokedToken{}
	for rows.Next() {
		var r calls.RevokedToken
		if err := rows.Scan(&r.ID, &r.ExpiresAt); err != nil {
			return nil, revocationError(ctx, "find revoked tokens", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, revocationError(ctx, "find revoked tokens", err)
	}
	return out, nil
}

// open answers errClosed once the store is closed.
func (p *Postgres) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed()
	}
	return nil
}

func revocationError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, errors.Join(ctx.Err(), err))
	}
	return &calls.Error{Code: calls.CodeUnavailable, Op: op, Message: "the database does not answer", Err: err}
}
