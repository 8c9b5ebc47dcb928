-- Nodes: several switchboards (nodes of a cluster) may share one database.
-- Each call records the node that runs it, and each node keeps its own
-- heartbeat row, so that a surviving node can end a dead node's live calls
-- at that node's last sign of life. A single switchboard is node '' (the
-- default): the calls and the heartbeat written before this migration are
-- its.

-- +goose Up

ALTER TABLE calls ADD COLUMN node text COLLATE "C" NOT NULL DEFAULT '';
-- The calls still live, by node: what RecoverCrashed and RecoverNode end.
DROP INDEX calls_live;
CREATE INDEX calls_live ON calls (node, start_time, id) WHERE end_time IS NULL;

-- switchboard_heartbeat gets one row per node; the row it had is node ''.
-- max_version stays the highest version that node wrote.
ALTER TABLE switchboard_heartbeat ADD COLUMN node text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE switchboard_heartbeat DROP COLUMN singleton;
ALTER TABLE switchboard_heartbeat ADD PRIMARY KEY (node);

-- +goose Down

DELETE FROM switchboard_heartbeat WHERE node <> '';
ALTER TABLE switchboard_heartbeat DROP CONSTRAINT switchboard_heartbeat_pkey;
ALTER TABLE switchboard_heartbeat DROP COLUMN node;
ALTER TABLE switchboard_heartbeat ADD COLUMN singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton);
INSERT INTO switchboard_heartbeat DEFAULT VALUES ON CONFLICT DO NOTHING;

DROP INDEX calls_live;
ALTER TABLE calls DROP COLUMN node;
CREATE INDEX calls_live ON calls (id) WHERE end_time IS NULL;
