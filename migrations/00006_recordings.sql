-- Recordings: one row per recording of a call (POST
-- /api/calls/{id}/recording/start). data is the whole recording as the
-- API shows it (calls.Recording as JSON: file, who started it, paused
-- spans, duration); the other columns are its filters: a call's
-- recordings, a node's unfinished ones (after a crash), and those that
-- stopped before the retention limit and are not deleted yet.

-- +goose Up

CREATE TABLE recordings (
    id      text COLLATE "C" PRIMARY KEY,
    call_id text COLLATE "C" NOT NULL,
    node    text NOT NULL,
    started timestamptz NOT NULL,
    stopped timestamptz,
    deleted timestamptz,
    data    jsonb NOT NULL
);
CREATE INDEX recordings_call ON recordings (call_id, started, id);
CREATE INDEX recordings_unfinished ON recordings (node, started, id) WHERE stopped IS NULL;
CREATE INDEX recordings_retention ON recordings (node, stopped) WHERE deleted IS NULL;

-- +goose Down

DROP TABLE recordings;
