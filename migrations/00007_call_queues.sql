-- Call queues: the queues each call went through (the caller's call that
-- entered one, by overflow or a transfer too; the agent's call that
-- answered its offer), for GET /api/history/calls?queue=.

-- +goose Up

CREATE TABLE call_queues (
    call_id text COLLATE "C" NOT NULL,
    queue   text COLLATE "C" NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (call_id, queue)
);
CREATE INDEX call_queues_queue ON call_queues (queue, call_id);

-- +goose Down

DROP TABLE call_queues;
