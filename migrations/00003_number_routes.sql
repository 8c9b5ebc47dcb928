-- Number routes: PUT /api/numbers/{e164} says where calls from the phone
-- network to that number go, to an identity (target, its rawId) or into a
-- queue (queue, its name); exactly one of the two is set.

-- +goose Up

CREATE TABLE number_routes (
    number text COLLATE "C" PRIMARY KEY,
    target text,
    queue  text,
    CHECK ((target IS NULL) <> (queue IS NULL))
);

-- +goose Down

DROP TABLE number_routes;
