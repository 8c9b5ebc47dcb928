package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// write writes batch, in one transaction when it can, and answers how many
// of its changes, from the first, are done: written, or dropped because
// Postgres refuses them for good (a data error), which is logged. Its
// error is a failure to retry later, from the first change not done.
func (p *Postgres) write(ctx context.Context, batch []change) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opt.WriteTimeout)
	defer cancel()
	err := p.writeTx(ctx, batch, false)
	if isUniqueViolation(err) {
		// Some events are in already: an earlier try committed before its
		// answer was lost, or this is a replay. Merge instead.
		err = p.writeTx(ctx, batch, true)
	}
	switch {
	case err == nil:
		return len(batch), nil
	case !permanent(err):
		return 0, err
	case len(batch) == 1:
		p.log.Error("history store: Postgres refuses a change; dropping it",
			"call_id", batch[0].call.id, "version", batch[0].version, "err", err)
		return 1, nil
	}
	// Find the change Postgres refuses by writing one at a time.
	for i := range batch {
		if _, err := p.write(ctx, batch[i:i+1]); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}

var (
	stageCallColumns = []string{"id", "version", "server_call_id", "agent_id", "direction", "kind", "state",
		"start_time", "end_time", "end_code", "end_subcode", "end_message", "view"}
	stagePartColumns = []string{"call_id", "raw_id", "position", "display_name", "state", "is_muted",
		"end_code", "end_subcode", "end_message"}
	eventColumns = []string{"call_id", "version", "idx", "type", "at", "actor_kind", "actor_raw_id", "data"}
)

// Statements that merge the staged calls and participants. A call's row
// changes only for a view that wins over it (see newerView): a newer one,
// but an ended call never comes back to life (a dead node's journal,
// replayed after a surviving node ended its calls, holds live views that
// may be newer). The staged calls are the node's given as $1. A call's participants follow its row, and a participant's
// row is written only when it changed. The calls the merge applied are
// noted in a narrow table of their own: marking the staged rows instead
// rewrote every staged view.
const (
	mergeCalls = `
WITH up AS (
    INSERT INTO calls AS c (id, version, node, server_call_id, agent_id, direction, kind, state,
                            start_time, end_time, end_code, end_subcode, end_message, view)
    SELECT id, version, $1, server_call_id, agent_id, direction, kind, state,
           start_time, end_time, end_code, end_subcode, end_message, view
    FROM switchboard_stage_calls
    ON CONFLICT (id) DO UPDATE SET
        version = excluded.version, node = excluded.node, server_call_id = excluded.server_call_id,
        agent_id = excluded.agent_id, direction = excluded.direction, kind = excluded.kind,
        state = excluded.state, start_time = excluded.start_time, end_time = excluded.end_time,
        end_code = excluded.end_code, end_subcode = excluded.end_subcode,
        end_message = excluded.end_message, view = excluded.view
    WHERE (c.end_time IS NOT NULL, c.version) < (excluded.end_time IS NOT NULL, excluded.version)
    RETURNING c.id, c.start_time
)
INSERT INTO switchboard_stage_applied (id, start_time) SELECT id, start_time FROM up`
	// deleteParticipants drops the rows of participants an applied view no
	// longer has. The staging tables are never analyzed, so a join with
	// them was planned as a scan of every participant ever stored (66% of
	// a batch's time with 1M calls stored); = ANY of an array walks the
	// primary key's index whatever the planner guesses.
	deleteParticipants = `
DELETE FROM participants p
WHERE p.call_id = ANY (ARRAY(SELECT id FROM switchboard_stage_applied))
  AND (p.call_id, p.raw_id) NOT IN (SELECT call_id, raw_id FROM switchboard_stage_participants)`
	upsertParticipants = `
INSERT INTO participants AS p (call_id, raw_id, position, display_name, state, is_muted,
                               end_code, end_subcode, end_message, start_time)
SELECT sp.call_id, sp.raw_id, sp.position, sp.display_name, sp.state, sp.is_muted,
       sp.end_code, sp.end_subcode, sp.end_message, a.start_time
FROM switchboard_stage_participants sp JOIN switchboard_stage_applied a ON a.id = sp.call_id
ON CONFLICT (call_id, raw_id) DO UPDATE SET
    position = excluded.position, display_name = excluded.display_name, state = excluded.state,
    is_muted = excluded.is_muted, end_code = excluded.end_code, end_subcode = excluded.end_subcode,
    end_message = excluded.end_message, start_time = excluded.start_time
WHERE (p.position, p.display_name, p.state, p.is_muted, p.end_code, p.end_subcode, p.end_message, p.start_time)
    IS DISTINCT FROM (excluded.position, excluded.display_name, excluded.state, excluded.is_muted,
                      excluded.end_code, excluded.end_subcode, excluded.end_message, excluded.start_time)`
	beatWithVersion = `
UPDATE switchboard_heartbeat SET at = $1, max_version = greatest(max_version, $2) WHERE node = $3`
	mergeEvents = `
INSERT INTO call_events (call_id, version, idx, type, at, actor_kind, actor_raw_id, data)
SELECT call_id, version, idx, type, at, actor_kind, actor_raw_id, data FROM switchboard_stage_events
ON CONFLICT DO NOTHING`
)

// writeTx writes batch, this node's changes, in one transaction.
func (p *Postgres) writeTx(ctx context.Context, batch []change, merge bool) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit it does nothing; before it, its error is moot
	if err := p.writeIn(ctx, tx, batch, merge, p.opt.Node); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// writeIn writes batch, changes to the calls of node, in tx. Each call's
// newest view in the batch is staged and merged; events are copied
// straight into call_events, or, when merge is set, staged and merged so
// that rows already there are skipped. This node's heartbeat notes the
// time and the batch's highest version.
func (p *Postgres) writeIn(ctx context.Context, tx pgx.Tx, batch []change, merge bool, node string) error {
	newest := make(map[string]int, len(batch))
	var maxVersion int64
	nEvents := 0
	for i := range batch {
		c := &batch[i]
		if j, ok := newest[c.call.id]; !ok || newerView(batch[j].call.end != nil, batch[j].version, c.call.end != nil, c.version) {
			newest[c.call.id] = i
		}
		maxVersion = max(maxVersion, c.version)
		nEvents += len(c.events)
	}
	views := make([]*change, 0, len(newest))
	nParts := 0
	for _, i := range newest {
		views = append(views, &batch[i])
		nParts += len(batch[i].parts)
	}

	_, err := tx.CopyFrom(ctx, pgx.Identifier{"switchboard_stage_calls"}, stageCallColumns,
		pgx.CopyFromSlice(len(views), func(i int) ([]any, error) {
			c := &views[i].call
			return []any{c.id, views[i].version, c.serverCallID, c.agentID, c.direction, c.kind, c.state,
				c.start, c.end, c.endCode, c.endSubCode, c.endMessage, c.view}, nil
		}))
	if err != nil {
		return err
	}
	if nParts > 0 {
		rows := make([][]any, 0, nParts)
		for _, v := range views {
			for _, r := range v.parts {
				rows = append(rows, []any{v.call.id, r.rawID, r.position, r.displayName, r.state, r.isMuted,
					r.endCode, r.endSubCode, r.endMessage})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"switchboard_stage_participants"}, stagePartColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(mergeCalls, node)
	b.Queue(deleteParticipants)
	b.Queue(upsertParticipants)
	b.Queue(beatWithVersion, micro(time.Now()), maxVersion, p.opt.Node)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if nEvents > 0 {
		table := pgx.Identifier{"call_events"}
		if merge {
			table = pgx.Identifier{"switchboard_stage_events"}
		}
		if _, err := tx.CopyFrom(ctx, table, eventColumns, &eventSource{batch: batch, i: 0, j: -1}); err != nil {
			return err
		}
		if merge {
			if _, err := tx.Exec(ctx, mergeEvents); err != nil {
				return err
			}
		}
	}
	return nil
}

// newerView reports whether a call's view b (ended or not, of version vb)
// wins over its view a: views are ordered by whether the call has ended,
// then by version. An ended call therefore stays ended whatever live view
// comes later, and the view kept does not depend on the order views are
// written in. All the stores keep views by this rule.
func newerView(endedA bool, va int64, endedB bool, vb int64) bool {
	if endedA != endedB {
		return endedB
	}
	return va < vb
}

// eventSource feeds a batch's events to COPY, keyed by call, version and
// place.
type eventSource struct {
	batch []change
	i, j  int // the change, and the event in it
	row   [8]any
}

func (s *eventSource) Next() bool {
	for s.i < len(s.batch) {
		s.j++
		if s.j < len(s.batch[s.i].events) {
			return true
		}
		s.i, s.j = s.i+1, -1
	}
	return false
}

func (s *eventSource) Values() ([]any, error) {
	c := &s.batch[s.i]
	e := &c.events[s.j]
	s.row = [8]any{c.call.id, c.version, int32(s.j), e.typ, e.at, nil, nil, nil}
	if e.actor != nil {
		s.row[5] = string(e.actor.Kind)
		if e.actor.RawID != "" {
			s.row[6] = e.actor.RawID
		}
	}
	if e.data != nil {
		s.row[7] = e.data
	}
	return s.row[:], nil
}

func (s *eventSource) Err() error { return nil }

// isUniqueViolation reports whether Postgres refused a duplicate key.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// permanent reports whether Postgres refused what was written for good
// (a data exception, an integrity or a size limit), so that retrying the
// same rows cannot succeed. Anything else (the connection, a timeout, a
// server shutting down or read-only during a failover) is worth retrying.
func permanent(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}
