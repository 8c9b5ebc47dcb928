-- Call history: one row per call view (one identity's view of a
-- conversation), its remote participants, and the append-only event log
-- the history timeline is read from.
--
-- Ids are compared bytewise (COLLATE "C"), so that history order (start
-- time, then id, both descending) is the same as the embedded store's.
-- There are no foreign keys: the store writes a call's row, its
-- participants and its events in one transaction, and a foreign key would
-- cost an index probe for every event written.

-- +goose Up

-- calls is the latest view of each call. version grows with every change
-- the switchboard records, so an older view never overwrites a newer one
-- when writes are retried or replayed. The filters of the history API are
-- real columns; view is the whole call as the API shows it.
CREATE TABLE calls (
    id             text COLLATE "C" PRIMARY KEY,
    version        bigint      NOT NULL,
    server_call_id text        NOT NULL,
    agent_id       text        NOT NULL,
    direction      text        NOT NULL,
    kind           text        NOT NULL,
    state          text        NOT NULL,
    start_time     timestamptz NOT NULL,
    end_time       timestamptz,
    end_code       integer,
    end_subcode    integer,
    end_message    text,
    view           jsonb       NOT NULL
) WITH (fillfactor = 80); -- room for HOT updates: a call is rewritten at every change

-- History, newest first, walks these backwards: every call; one agent's;
-- the calls that ended with one code. The time window (from, to) and the
-- keyset cursor are ranges on (start_time, id) in each. Direction has two
-- values and rides along as a filter on whichever index serves the rest:
-- a page of one direction reads about twice the page from the index.
CREATE INDEX calls_history ON calls (start_time, id);
CREATE INDEX calls_agent_history ON calls (agent_id, start_time, id);
CREATE INDEX calls_end_code_history ON calls (end_code, start_time, id) WHERE end_code IS NOT NULL;
-- The calls still live, which RecoverCrashed ends after a crash.
CREATE INDEX calls_live ON calls (id) WHERE end_time IS NULL;

-- participants is each call's remote participants as its latest view has
-- them (everyone who was ever in the call), each with its own end reason;
-- a party who left and rejoined has one row, its latest. start_time is the
-- call's, so that the participant filter walks history order in one index.
CREATE TABLE participants (
    call_id      text COLLATE "C" NOT NULL,
    raw_id       text        NOT NULL,
    position     integer     NOT NULL, -- in the view's remoteParticipants, from 1
    display_name text,
    state        text        NOT NULL,
    is_muted     boolean     NOT NULL,
    end_code     integer,
    end_subcode  integer,
    end_message  text,
    start_time   timestamptz NOT NULL,
    PRIMARY KEY (call_id, raw_id)
);
CREATE INDEX participants_history ON participants (raw_id, start_time, call_id);

-- call_events is the append-only event log of each call: its timeline, an
-- audit trail of who did what (actor_kind: agent, remote, supervisor or
-- system; actor_raw_id: who). A row's key is given when the switchboard
-- records the change (the call, the change's version, the event's place in
-- it), so a retried or replayed write never doubles a row, and the key's
-- order is the timeline's.
CREATE TABLE call_events (
    call_id      text COLLATE "C" NOT NULL,
    version      bigint      NOT NULL,
    idx          integer     NOT NULL,
    type         text        NOT NULL,
    at           timestamptz NOT NULL,
    actor_kind   text,
    actor_raw_id text,
    data         jsonb,
    PRIMARY KEY (call_id, version, idx)
);

-- switchboard_heartbeat is when the switchboard last showed it was alive
-- (its writer updates it every few seconds and with every write) and the
-- highest version written. After a crash, it bounds when the calls left
-- live ended.
CREATE TABLE switchboard_heartbeat (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    at          timestamptz,
    max_version bigint NOT NULL DEFAULT 0
);
INSERT INTO switchboard_heartbeat DEFAULT VALUES;

-- +goose Down
DROP TABLE switchboard_heartbeat;
DROP TABLE call_events;
DROP TABLE participants;
DROP TABLE calls;
