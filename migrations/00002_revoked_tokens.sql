-- Revoked tokens: DELETE /api/tokens/{id} writes the token's id here, with
-- the time after which the token would have expired anyway; the switchboard
-- loads the unexpired ones at start, so a revoked token stays revoked
-- across a restart. Expired rows are deleted as new revocations come in.

-- +goose Up

CREATE TABLE revoked_tokens (
    id         text COLLATE "C" PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- +goose Down

DROP TABLE revoked_tokens;
