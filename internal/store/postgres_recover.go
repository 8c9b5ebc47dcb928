package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
)

// replay writes the changes an earlier run left in the journal, in order,
// then removes it. When Postgres fails it, the spool stays as it is, for
// the next start to replay (writing a change twice changes nothing).
func (p *Postgres) replay(ctx context.Context) error {
	if p.spool.empty() {
		return p.spool.removeIfDone()
	}
	began, total := time.Now(), p.spool.pending()
	for !p.spool.empty() {
		payloads, ends, gen, err := p.spool.read(p.opt.BatchSize)
		if err != nil {
			return fmt.Errorf("replay the spool: %w", err)
		}
		batch, _ := decodeSpooled(payloads, p.spool.payloadFormat(), p.log)
		for i := range batch {
			p.version = max(p.version, batch[i].version)
		}
		if _, err := p.write(ctx, batch); err != nil {
			return fmt.Errorf("replay the spool %s (kept for the next start): %w", p.spool.path, err)
		}
		if err := p.spool.consume(gen, ends[len(ends)-1], len(ends)); err != nil {
			return fmt.Errorf("replay the spool: %w", err)
		}
	}
	if err := p.spool.removeIfDone(); err != nil {
		return fmt.Errorf("replay the spool: %w", err)
	}
	p.log.Info("history store: wrote the changes an earlier run spooled", "changes", total,
		"path", p.spool.path, "duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// RecoverCrashed ends the calls an earlier run of this node left live:
// the switchboard that had them died without ending them. Each gets state
// Disconnected and calls.ReasonSwitchboardDied (503/0), ending when the
// crash is best known to have happened: the later of the earlier run's
// last sign of life (its heartbeat in the database, or its alive mark)
// and the call's last event. Its participants still in it end likewise,
// and its timeline gets a callEnded event caused by the system. It
// answers how many calls it ended, once they are written.
//
// Call it once, after OpenPostgres and before taking calls. It ends only
// the calls of this node (PostgresOptions.Node) that an earlier run
// recorded: other nodes' calls, and those recorded by this store, are
// never touched. A call that a surviving node ended meanwhile
// (RecoverNode) is not ended again. Errors: a closed store or Postgres out
// of reach is CodeUnavailable, and nothing was ended.
func (p *Postgres) RecoverCrashed(ctx context.Context) (int, error) {
	const op = "recover crashed calls"
	if err := p.usable(ctx, op); err != nil {
		return 0, err
	}
	ended, err := p.recover(ctx, op, p.opt.Node, p.openVersion, func(pgx.Tx) (time.Time, error) { return p.lastBeat, nil })
	if err != nil {
		return 0, err
	}
	if n := len(ended); n > 0 {
		p.log.Warn("history store: ended the calls a crash left live", "calls", n,
			"node", p.opt.Node, "last_heartbeat", p.lastBeat)
	}
	return len(ended), nil
}

// RecoverNode ends the live calls of node, another node of the cluster
// that died (its lease lapsed): as RecoverCrashed does for this node's own
// after a restart, each ends with calls.ReasonSwitchboardDied (503/0) at
// the later of node's last heartbeat in the database (see NodeAlive) and
// the call's last event. It answers how many calls it ended, once they
// are written.
//
// Deciding that node is dead is the caller's: RecoverNode ends whatever
// node has live, and never touches another node's calls (a node wrongly
// taken for dead would go on adding events to its calls, but their views
// stay ended). RecoverNode(ctx, "") ends what a single switchboard left
// live before the deployment became a cluster of named nodes. It is
// idempotent: the calls are ended in one transaction that locks them, so
// nodes recovering the same dead node together end each call once, with
// one callEnded event, and a later call (or the dead node's own
// RecoverCrashed when it restarts) finds nothing left to do. Should the
// dead node's journal be replayed later (it restarts), its changes to these
// calls add their events but never make an ended call live again.
//
// With PostgresOptions.AliveWithin set, the check that node is dead is
// made again in the transaction: it locks node's live calls and then its
// heartbeat row (the order node's own writes take), and ends nothing
// while the heartbeat is fresh (CodeInvalidState). So a node that comes back (its heartbeat
// written again) and then reads its calls in the history sees every
// recovery that read its stale heartbeat, committed, and no later one
// ends its calls: its heartbeat write waits for such a transaction to end.
//
// Errors: node is this store's own node is CodeInvalidRequest; node's
// heartbeat is fresh (with AliveWithin) is CodeInvalidState; a closed
// store or Postgres out of reach is CodeUnavailable; then nothing was
// ended.
func (p *Postgres) RecoverNode(ctx context.Context, node string) (int, error) {
	ended, err := p.RecoverNodeEvents(ctx, node)
	return len(ended), err
}

// RecoverNodeEvents is RecoverNode answering what it ended: the callEnded
// event of each call this store ended (supervised, by the system, dated
// as the call's end), in history order, once they are written. Of several
// nodes recovering node together, each call's event is answered to the
// one whose transaction ended it, and to no other, so that it is
// published once (cmd/switchboard hands it to the cluster's supervisors).
func (p *Postgres) RecoverNodeEvents(ctx context.Context, node string) ([]calls.Event, error) {
	const op = "recover a dead node's calls"
	if node == p.opt.Node {
		return nil, &calls.Error{Code: calls.CodeInvalidRequest, Op: op,
			Message: fmt.Sprintf("node %q is this node: its calls are live here", node)}
	}
	if err := p.usable(ctx, op); err != nil {
		return nil, err
	}
	var beat time.Time
	ended, err := p.recover(ctx, op, node, math.MaxInt64, func(tx pgx.Tx) (time.Time, error) {
		read := `SELECT at FROM switchboard_heartbeat WHERE node = $1`
		if p.opt.AliveWithin > 0 {
			if _, err := tx.Exec(ctx, `
SELECT 1 FROM calls WHERE node = $1 AND end_time IS NULL ORDER BY start_time, id FOR UPDATE`, node); err != nil {
				return time.Time{}, err
			}
			read += ` FOR UPDATE`
		}
		var at *time.Time
		err := tx.QueryRow(ctx, read, node).Scan(&at)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return time.Time{}, nil // no heartbeat: the calls' own times date the end
		case err != nil:
			return time.Time{}, err
		case at != nil:
			beat = *at
		}
		if p.opt.AliveWithin > 0 && !beat.IsZero() && time.Since(beat) < p.opt.AliveWithin {
			return time.Time{}, errNodeAlive
		}
		return beat, nil
	})
	if errors.Is(err, errNodeAlive) {
		return nil, &calls.Error{Code: calls.CodeInvalidState, Op: op, Err: errNodeAlive,
			Message: fmt.Sprintf("node %q wrote its heartbeat at %v: it is alive, and its calls stay live", node, beat)}
	}
	if err != nil {
		return nil, err
	}
	if len(ended) > 0 {
		p.log.Warn("history store: ended the calls of a dead node", "calls", len(ended), "node", node,
			"last_heartbeat", beat)
	}
	events := make([]calls.Event, 0, len(ended))
	for _, r := range ended {
		events = append(events, r.Events...)
	}
	return events, nil
}

// errNodeAlive stops a recovery whose node's heartbeat is fresh.
var errNodeAlive = errors.New("the node's heartbeat is fresh")

// NodeAlive answers when node last showed it was alive in the database:
// its heartbeat, which its store writes every HeartbeatInterval and with
// every batch it writes. The zero time means node has started but not
// written its heartbeat yet. Errors: a node that never used this database
// is CodeNotFound; a closed store or Postgres out of reach is
// CodeUnavailable.
func (p *Postgres) NodeAlive(ctx context.Context, node string) (time.Time, error) {
	const op = "read a node's heartbeat"
	if err := p.usable(ctx, op); err != nil {
		return time.Time{}, err
	}
	var at *time.Time
	err := p.pool.QueryRow(ctx, `SELECT at FROM switchboard_heartbeat WHERE node = $1`, node).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, &calls.Error{Code: calls.CodeNotFound, Op: op,
			Message: fmt.Sprintf("no node %q has used this database", node)}
	}
	if err != nil {
		return time.Time{}, dbError(op, err)
	}
	if at == nil {
		return time.Time{}, nil
	}
	return at.UTC(), nil
}

// recover ends node's live calls of versions up to upTo in one
// transaction, dated by the beat it reads in it, and answers the records
// that ended them, once committed.
// The calls are locked (in history order, so that recoverers never
// deadlock) and a call another transaction ended meanwhile drops out, so
// each is ended once. The ended views get versions above the calls' own
// and this store's, so that they win over what the node had written.
func (p *Postgres) recover(ctx context.Context, op, node string, upTo int64, lastBeat func(pgx.Tx) (time.Time, error)) ([]calls.Record, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer tx.Rollback(ctx) // after Commit it does nothing; before it, its error is moot
	beat, err := lastBeat(tx)
	if err != nil {
		return nil, dbError(op, err)
	}
	rows, err := tx.Query(ctx, `
SELECT c.view, c.version, (SELECT max(e.at) FROM call_events e WHERE e.call_id = c.id)
FROM calls c
WHERE c.node = $1 AND c.end_time IS NULL AND c.version <= $2
ORDER BY c.start_time, c.id
FOR UPDATE OF c`, node, upTo)
	if err != nil {
		return nil, dbError(op, err)
	}
	type live struct {
		rec     calls.Record
		version int64
	}
	var found []live
	for rows.Next() {
		var (
			view    []byte
			version int64
			last    *time.Time
		)
		if err := rows.Scan(&view, &version, &last); err != nil {
			rows.Close()
			return nil, dbError(op, err)
		}
		var c calls.Call
		if err := json.Unmarshal(view, &c); err != nil {
			p.log.Error("history store: cannot read a live call to end it", "node", node, "err", err)
			continue
		}
		found = append(found, live{crashed(c, crashTime(beat, last, &c)), version})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	now := time.Now()
	batch := make([]change, len(found))
	p.mu.Lock()
	for i := range found {
		p.version = max(p.version+1, now.UnixNano(), found[i].version+1)
		batch[i] = newChange(&found[i].rec, p.version, now, p.log)
	}
	p.mu.Unlock()
	if err := p.writeIn(ctx, tx, batch, false, node); err != nil {
		return nil, dbError(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbError(op, err)
	}
	ended := make([]calls.Record, len(found))
	for i := range found {
		ended[i] = found[i].rec
	}
	return ended, nil
}

// crashTime is when a call is best known to have ended in a crash: the
// later of the last heartbeat and the call's last event, and never before
// what the call itself shows.
func crashTime(beat time.Time, lastEvent *time.Time, c *calls.Call) time.Time {
	t := beat
	later := func(u *time.Time) {
		if u != nil && u.After(t) {
			t = *u
		}
	}
	later(lastEvent)
	later(&c.StartTime)
	later(c.ConnectedTime)
	later(c.HeldTime)
	return micro(t).UTC()
}

// crashed is the record that ends c at, as the crash did.
func crashed(c calls.Call, at time.Time) calls.Record {
	reason := calls.ReasonSwitchboardDied
	c.State, c.IsActive = calls.StateDisconnected, false
	c.CallEndReason, c.EndTime = &reason, &at
	var live []calls.Participant
	parts := make([]calls.Participant, len(c.RemoteParticipants))
	for i, pt := range c.RemoteParticipants {
		if pt.CallEndReason == nil {
			r := reason
			pt.State, pt.IsSpeaking, pt.CallEndReason = calls.ParticipantDisconnected, false, &r
			live = append(live, pt)
		}
		parts[i] = pt
	}
	c.RemoteParticipants = parts
	ended := c
	ended.RemoteParticipants = live
	if ended.RemoteParticipants == nil {
		ended.RemoteParticipants = []calls.Participant{}
	}
	return calls.Record{Call: c, Events: []calls.Event{{
		Type:       calls.EventCallEnded,
		At:         at,
		AgentID:    c.AgentID,
		CallID:     c.ID,
		Actor:      &calls.Actor{Kind: calls.ActorSystem},
		Data:       calls.CallEndedData{CallEndReason: reason, Call: ended},
		Supervised: true,
	}}}
}

// LiveCallNode answers another node that has a live call of identity (its
// rawId) in the shared history, the one of its latest such call, or "" when
// no other node has one. A node about to take a free identity asks it: an
// identity whose lease lapsed (NATS was out of reach) while its node still
// runs its calls goes back to that node, rather than being split. Errors:
// a closed store or Postgres out of reach is CodeUnavailable.
func (p *Postgres) LiveCallNode(ctx context.Context, identity string) (string, error) {
	const op = "find a node with live calls of an identity"
	if err := p.usable(ctx, op); err != nil {
		return "", err
	}
	var node string
	err := p.pool.QueryRow(ctx, `SELECT node FROM calls
		WHERE agent_id = $1 AND end_time IS NULL AND node <> $2
		ORDER BY start_time DESC LIMIT 1`, identity, p.opt.Node).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", dbError(op, err)
	}
	return node, nil
}

// CallNode answers the node that runs the live call id in the shared
// history, or "" when no call with that id is live (unknown, ended, or
// not written yet). A node asks it for a supervisor's request naming a
// call it does not run. Errors: a closed store or Postgres out of reach is
// CodeUnavailable.
func (p *Postgres) CallNode(ctx context.Context, id string) (string, error) {
	const op = "find the node of a live call"
	if err := p.usable(ctx, op); err != nil {
		return "", err
	}
	var node string
	err := p.pool.QueryRow(ctx, `SELECT node FROM calls WHERE id = $1 AND end_time IS NULL`, id).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", dbError(op, err)
	}
	return node, nil
}
