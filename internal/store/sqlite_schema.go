package store

import (
	"context"
	"database/sql"
	"fmt"
)

// sqliteSchema is the SQLite store's schema, one step per version of the
// file (PRAGMA user_version): step i takes a file from version i to i+1.
// Steps are only ever appended.
//
// Times are Unix nanoseconds (INTEGER), so history order is exact and
// comparisons are integer ones; ids are TEXT in SQLite's default BINARY
// collation, which compares bytewise, as history order wants. The filters
// of the history API are real columns with indexes that serve them in
// history order; view is the whole call as the API shows it (JSON).
var sqliteSchema = []string{
	// 1: history, revocations, heartbeat.
	`
CREATE TABLE calls (
    id          TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL,
    agent_id    TEXT    NOT NULL,
    direction   TEXT    NOT NULL,
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER,
    end_code    INTEGER,
    end_subcode INTEGER,
    view        TEXT    NOT NULL
);
-- History, newest first, walks these backwards: every call; one agent's;
-- the calls that ended with one code. The time window and the keyset
-- cursor are ranges on (start_ns, id) in each.
CREATE INDEX calls_history ON calls (start_ns, id);
CREATE INDEX calls_agent_history ON calls (agent_id, start_ns, id);
CREATE INDEX calls_end_code_history ON calls (end_code, start_ns, id) WHERE end_code IS NOT NULL;
-- The calls still live, which RecoverCrashed ends after a crash.
CREATE INDEX calls_live ON calls (id) WHERE end_ns IS NULL;

-- participants is who is (or was) in each call's latest view, for the
-- participant filter; start_ns is the call's, so that the filter walks
-- history order in one index.
CREATE TABLE participants (
    call_id  TEXT    NOT NULL,
    raw_id   TEXT    NOT NULL,
    start_ns INTEGER NOT NULL,
    PRIMARY KEY (call_id, raw_id)
) WITHOUT ROWID;
CREATE INDEX participants_history ON participants (raw_id, start_ns, call_id);

-- call_events is each call's timeline, keyed by the change that made the
-- event (its version) and its place in the change.
CREATE TABLE call_events (
    call_id    TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    at_ns      INTEGER NOT NULL,
    actor_kind TEXT,
    actor_id   TEXT,
    actor_name TEXT,
    data       TEXT,
    PRIMARY KEY (call_id, version, idx)
) WITHOUT ROWID;

CREATE TABLE revoked_tokens (
    id         TEXT    PRIMARY KEY,
    expires_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_ns);

-- heartbeat is when the switchboard last showed it was alive and the
-- highest version written; after a crash it dates the calls left live.
CREATE TABLE heartbeat (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    at_ns       INTEGER,
    max_version INTEGER NOT NULL DEFAULT 0
);
INSERT INTO heartbeat (singleton) VALUES (1);
`,
	// 2: number routes (PUT /api/numbers/{e164}): a target's rawId or a
	// queue's name, exactly one.
	`
CREATE TABLE number_routes (
    number TEXT PRIMARY KEY,
    target TEXT,
    queue  TEXT,
    CHECK ((target IS NULL) <> (queue IS NULL))
) WITHOUT ROWID;
`,
	// 3: agent status changes and the wrap-up codes of calls (as
	// migrations/00005_agent_status.sql).
	`
CREATE TABLE agent_status_changes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id  TEXT    NOT NULL,
    at_ns     INTEGER NOT NULL,
    status    TEXT    NOT NULL,
    chosen    TEXT    NOT NULL,
    by_kind   TEXT    NOT NULL,
    by_raw_id TEXT
);
CREATE INDEX agent_status_changes_agent ON agent_status_changes (agent_id, at_ns, id);
CREATE INDEX agent_status_changes_at ON agent_status_changes (at_ns, id);

CREATE TABLE wrap_up_codes (
    call_id  TEXT    PRIMARY KEY,
    agent_id TEXT    NOT NULL,
    code     TEXT    NOT NULL,
    at_ns    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX wrap_up_codes_code ON wrap_up_codes (code, call_id);
`,
	// 4: recordings (migration 00006 in Postgres): data is the recording
	// as the API shows it (JSON); times are Unix nanoseconds. IF NOT
	// EXISTS: branches that add steps side by side may be merged in
	// either order.
	`
CREATE TABLE IF NOT EXISTS recordings (
    id      TEXT    PRIMARY KEY,
    call_id TEXT    NOT NULL,
    node    TEXT    NOT NULL,
    started INTEGER NOT NULL,
    stopped INTEGER,
    deleted INTEGER,
    data    TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recordings_call ON recordings (call_id, started, id);
CREATE INDEX IF NOT EXISTS recordings_unfinished ON recordings (node, started, id) WHERE stopped IS NULL;
CREATE INDEX IF NOT EXISTS recordings_retention ON recordings (node, stopped) WHERE deleted IS NULL;
`,
	// 5: the queues calls went through (migration 00007 in Postgres).
	`
CREATE TABLE IF NOT EXISTS call_queues (
    call_id TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL,
    PRIMARY KEY (call_id, queue)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS call_queues_queue ON call_queues (queue, call_id);
`,
}

// migrateSQLite brings the file's schema up to date, one transaction per
// step. A file newer than this binary knows is refused.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(sqliteSchema) {
		return fmt.Errorf("the file's schema version %d is newer than this switchboard's (%d)", version, len(sqliteSchema))
	}
	for v := version; v < len(sqliteSchema); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, sqliteSchema[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		// PRAGMA takes no parameters; v+1 is an integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	return nil
}
