package store

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/switchboard/switchboard/migrations"
)

// Migrate brings the database at databaseURL to the newest schema in
// package migrations, with goose. It holds a Postgres advisory lock while
// it does, so switchboards starting together take turns: the first
// migrates, the others find nothing left to do. It waits up to ten minutes
// for the lock, or until ctx ends.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(log),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		log.Info("schema migration applied", "version", r.Source.Version,
			"file", path.Base(r.Source.Path), "duration", r.Duration.Round(time.Millisecond))
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// createStaging makes the temporary tables a connection's batches are
// copied into before they are merged, and the one that notes which staged
// calls the merge applied. They empty at every commit.
func createStaging(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `
CREATE TEMP TABLE IF NOT EXISTS switchboard_stage_calls (
    id text COLLATE "C" NOT NULL, version bigint NOT NULL,
    server_call_id text NOT NULL, agent_id text NOT NULL,
    direction text NOT NULL, kind text NOT NULL, state text NOT NULL,
    start_time timestamptz NOT NULL, end_time timestamptz,
    end_code integer, end_subcode integer, end_message text,
    view jsonb NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS switchboard_stage_applied (
    id text COLLATE "C" NOT NULL, start_time timestamptz NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS switchboard_stage_participants (
    call_id text COLLATE "C" NOT NULL, raw_id text NOT NULL, position integer NOT NULL,
    display_name text, state text NOT NULL, is_muted boolean NOT NULL,
    end_code integer, end_subcode integer, end_message text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS switchboard_stage_events (
    call_id text COLLATE "C" NOT NULL, version bigint NOT NULL, idx integer NOT NULL,
    type text NOT NULL, at timestamptz NOT NULL,
    actor_kind text, actor_raw_id text, data jsonb
) ON COMMIT DELETE ROWS`)
	if err != nil {
		return fmt.Errorf("create staging tables: %w", err)
	}
	return nil
}
