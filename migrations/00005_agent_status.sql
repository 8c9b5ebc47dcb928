-- Agent status: every change of an agent's status (what dashboards show,
-- and the status she chose), who made it, and the wrap-up code each call
-- was given once it ended (GET /api/history/calls?wrapUpCode=).

-- +goose Up

CREATE TABLE agent_status_changes (
    id        bigserial PRIMARY KEY,
    agent_id  text COLLATE "C" NOT NULL,
    at        timestamptz NOT NULL,
    status    text NOT NULL,
    chosen    text NOT NULL,
    by_kind   text NOT NULL,
    by_raw_id text
);
-- One agent's changes, newest first (and her last, at start); everyone's.
CREATE INDEX agent_status_changes_agent ON agent_status_changes (agent_id, at, id);
CREATE INDEX agent_status_changes_at ON agent_status_changes (at, id);

CREATE TABLE wrap_up_codes (
    call_id  text COLLATE "C" PRIMARY KEY,
    agent_id text COLLATE "C" NOT NULL,
    code     text NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX wrap_up_codes_code ON wrap_up_codes (code, call_id);

-- +goose Down

DROP TABLE wrap_up_codes;
DROP TABLE agent_status_changes;
