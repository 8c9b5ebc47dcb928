package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// FindCalls answers a page of history, newest first. Each filter is a
// column with an index that serves it in history order (see sqliteSchema);
// the cursor is a keyset bound on (start time, id). Errors: a malformed
// cursor is CodeInvalidRequest; a closed store or a failing file
// CodeUnavailable; a cancelled context wraps its error. A Limit of 0 or
// less means calls.DefaultHistoryLimit; one above calls.MaxHistoryLimit is
// cut to it. Changes still queued are not seen: Flush first.
func (s *SQLite) FindCalls(ctx context.Context, f calls.CallFilter) (calls.CallPage, error) {
	const op = "find calls"
	if err := s.usable(ctx, op); err != nil {
		return calls.CallPage{}, err
	}
	limit := pageLimit(f)
	after, err := cursorAfter(f)
	if err != nil {
		return calls.CallPage{}, err
	}
	page := calls.CallPage{Items: []calls.Call{}}
	query, args, ok := sqliteHistoryQuery(&f, after, limit+1)
	if !ok {
		return page, nil
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return calls.CallPage{}, sqliteError(op, err)
	}
	defer rows.Close()
	var last []position
	for rows.Next() {
		var (
			start int64
			id    string
			view  []byte
			code  *string
			qs    *string
		)
		if err := rows.Scan(&start, &id, &view, &code, &qs); err != nil {
			return calls.CallPage{}, sqliteError(op, err)
		}
		var c calls.Call
		if err := json.Unmarshal(view, &c); err != nil {
			return calls.CallPage{}, &calls.Error{Code: calls.CodeInternal, Op: op, Message: fmt.Sprintf("call %q is not readable", id), Err: err}
		}
		if code != nil {
			c.WrapUpCode = *code
		}
		c.Queues = queueList(qs)
		page.Items = append(page.Items, c)
		last = append(last, positionOf(time.Unix(0, start), id))
	}
	if err := rows.Err(); err != nil {
		return calls.CallPage{}, sqliteError(op, err)
	}
	trimPage(&page, last, limit)
	return page, nil
}

// sqliteQueuesOf is the column of a call's queues (queueList).
const sqliteQueuesOf = "(SELECT group_concat(q.queue, ' ') FROM call_queues q WHERE q.call_id = c.id)"

// sqliteHistoryQuery is the SQL for a page of n calls passing f, below the
// position after (nil: from the newest). ok is false when nothing can
// pass. With a participant, the page walks that participant's rows in
// history order and joins each call (CROSS JOIN keeps that order of the
// loops); otherwise it walks calls, by agent or end code when f has one.
func sqliteHistoryQuery(f *calls.CallFilter, after *position, n int) (query string, args []any, ok bool) {
	var where []string
	cond := func(c string, vs ...any) {
		where = append(where, c)
		args = append(args, vs...)
	}
	from, start, id := "calls c", "c.start_ns", "c.id"
	if f.Participant != "" {
		from, start, id = "participants p CROSS JOIN calls c ON c.id = p.call_id", "p.start_ns", "p.call_id"
		cond("p.raw_id = ?", f.Participant)
	}
	if f.AgentID != "" {
		cond("c.agent_id = ?", f.AgentID)
	}
	if !f.From.IsZero() {
		if f.From.After(maxNanoTime) {
			return "", nil, false
		}
		if f.From.After(minNanoTime) {
			cond(start+" >= ?", f.From.UnixNano())
		}
	}
	// A cursor before To bounds the walk more tightly than To does (SQLite
	// walks one range of an index): then To is left out.
	cursorFirst := after != nil && time.Unix(after.sec, int64(after.nsec)).Before(f.To)
	if !f.To.IsZero() && !cursorFirst {
		if !f.To.After(minNanoTime) {
			return "", nil, false
		}
		if !f.To.After(maxNanoTime) {
			cond(start+" < ?", f.To.UnixNano())
		}
	}
	if f.Direction != "" {
		cond("c.direction = ?", string(f.Direction))
	}
	if f.EndCode != nil {
		cond("c.end_code = ?", int64(*f.EndCode))
	}
	if f.EndSubCode != nil {
		cond("c.end_subcode = ?", int64(*f.EndSubCode))
	}
	if f.WrapUpCode != "" {
		cond("EXISTS (SELECT 1 FROM wrap_up_codes w WHERE w.call_id = c.id AND w.code = ?)", f.WrapUpCode)
	}
	if f.Queue != "" {
		cond("EXISTS (SELECT 1 FROM call_queues q WHERE q.call_id = c.id AND q.queue = ?)", f.Queue)
	}
	if after != nil {
		t := time.Unix(after.sec, int64(after.nsec))
		switch {
		case t.Before(minNanoTime):
			return "", nil, false
		case t.After(maxNanoTime):
		default:
			cond("("+start+", "+id+") < (?, ?)", t.UnixNano(), after.id)
		}
	}
	var b strings.Builder
	b.WriteString("SELECT c.start_ns, c.id, c.view, (SELECT w.code FROM wrap_up_codes w WHERE w.call_id = c.id), " + sqliteQueuesOf + " FROM ")
	b.WriteString(from)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s DESC, %s DESC LIMIT ?", start, id)
	args = append(args, n)
	return b.String(), args, true
}

// FindCallByID answers one call with its timeline, in the order recorded;
// each entry's Data is a json.RawMessage (nil when the event had none).
// Errors: an unknown id is CodeCallNotFound; a closed store or a failing
// file CodeUnavailable; a cancelled context wraps its error.
func (s *SQLite) FindCallByID(ctx context.Context, id string) (calls.CallHistory, error) {
	op := fmt.Sprintf("find call %q", id)
	if err := s.usable(ctx, op); err != nil {
		return calls.CallHistory{}, err
	}
	// One read transaction: the call and its timeline from one snapshot.
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return calls.CallHistory{}, sqliteError(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var (
		view []byte
		code *string
		qs   *string
	)
	if err := tx.QueryRowContext(ctx, `
SELECT c.view, (SELECT w.code FROM wrap_up_codes w WHERE w.call_id = c.id), `+sqliteQueuesOf+` FROM calls c WHERE c.id = ?`, id).Scan(&view, &code, &qs); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return calls.CallHistory{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
		}
		return calls.CallHistory{}, sqliteError(op, err)
	}
	h := calls.CallHistory{Timeline: []calls.TimelineEntry{}}
	if err := json.Unmarshal(view, &h.Call); err != nil {
		return calls.CallHistory{}, &calls.Error{Code: calls.CodeInternal, Op: op, Message: "the call is not readable", Err: err}
	}
	if code != nil {
		h.Call.WrapUpCode = *code
	}
	h.Call.Queues = queueList(qs)
	rows, err := tx.QueryContext(ctx, `
SELECT type, at_ns, actor_kind, actor_id, actor_name, data FROM call_events WHERE call_id = ? ORDER BY version, idx`, id)
	if err != nil {
		return calls.CallHistory{}, sqliteError(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e               calls.TimelineEntry
			at              int64
			kind, raw, name sql.NullString
			data            []byte
		)
		if err := rows.Scan(&e.Type, &at, &kind, &raw, &name, &data); err != nil {
			return calls.CallHistory{}, sqliteError(op, err)
		}
		e.At = time.Unix(0, at).UTC()
		if kind.Valid {
			e.Actor = &calls.Actor{Kind: calls.ActorKind(kind.String), RawID: raw.String, DisplayName: name.String}
		}
		if data != nil {
			e.Data = json.RawMessage(data)
		}
		h.Timeline = append(h.Timeline, e)
	}
	if err := rows.Err(); err != nil {
		return calls.CallHistory{}, sqliteError(op, err)
	}
	return h, nil
}

// RevokeToken writes the revocation at once (not through the history
// queue), keeping the later expiry when the id was revoked before, and
// deletes the revocations that expired a day before expiresAt or earlier.
// Errors: a closed store or a failing file CodeUnavailable; an ended ctx
// wraps its error.
func (s *SQLite) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	const op = "revoke token"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	_, err := s.wdb.ExecContext(ctx, `
INSERT INTO revoked_tokens (id, expires_ns) VALUES (?1, ?2)
ON CONFLICT (id) DO UPDATE SET expires_ns = max(expires_ns, excluded.expires_ns)`, id, unixNanos(expiresAt))
	if err != nil {
		return sqliteError(op, err)
	}
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE expires_ns < ?`, unixNanos(expiresAt.Add(-24*time.Hour))); err != nil {
		// The revocation is written; old rows wait for the next one.
		s.log.Warn("deleting expired token revocations failed", "err", err)
	}
	return nil
}

// FindRevokedTokens reads the revocations that expire after now. Errors as
// RevokeToken's.
func (s *SQLite) FindRevokedTokens(ctx context.Context, now time.Time) ([]calls.RevokedToken, error) {
	const op = "find revoked tokens"
	if err := s.usable(ctx, op); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, expires_ns FROM revoked_tokens WHERE expires_ns > ?`, unixNanos(now))
	if err != nil {
		return nil, sqliteError(op, err)
	}
	defer rows.Close()
	out := []calls.RevokedToken{}
	for rows.Next() {
		var (
			r  calls.RevokedToken
			ns int64
		)
		if err := rows.Scan(&r.ID, &ns); err != nil {
			return nil, sqliteError(op, err)
		}
		r.ExpiresAt = time.Unix(0, ns).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteError(op, err)
	}
	return out, nil
}

// RecoverCrashed ends the calls an earlier run left live, as
// Postgres.RecoverCrashed does: state Disconnected, 503/0
// (calls.ReasonSwitchboardDied), at the later of the earlier run's last
// heartbeat and the call's last event, with a callEnded event by the
// system. It answers how many calls it ended, once they are written. Call
// it once, after OpenSQLite and before taking calls; calls recorded by
// this store are never touched.
func (s *SQLite) RecoverCrashed(ctx context.Context) (int, error) {
	const op = "recover crashed calls"
	if err := s.usable(ctx, op); err != nil {
		return 0, err
	}
	rows, err := s.rdb.QueryContext(ctx, `
SELECT c.view, (SELECT max(e.at_ns) FROM call_events e WHERE e.call_id = c.id)
FROM calls c
WHERE c.end_ns IS NULL AND c.version <= ?
ORDER BY c.start_ns, c.id`, s.openVersion)
	if err != nil {
		return 0, sqliteError(op, err)
	}
	var recs []calls.Record
	for rows.Next() {
		var (
			view []byte
			last sql.NullInt64
		)
		if err := rows.Scan(&view, &last); err != nil {
			rows.Close()
			return 0, sqliteError(op, err)
		}
		var c calls.Call
		if err := json.Unmarshal(view, &c); err != nil {
			s.log.Error("history store: cannot read a live call to end it", "err", err)
			continue
		}
		var lastAt *time.Time
		if last.Valid {
			t := time.Unix(0, last.Int64).UTC()
			lastAt = &t
		}
		recs = append(recs, crashed(c, crashTime(s.lastBeat, lastAt, &c)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, sqliteError(op, err)
	}
	s.recoverMu.Lock()
	defer s.recoverMu.Unlock()
	fresh := recs[:0]
	for _, r := range recs {
		if !s.recovered[r.Call.ID] {
			s.recovered[r.Call.ID] = true
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	s.Record(fresh...)
	if err := s.Flush(ctx); err != nil {
		return 0, &calls.Error{Code: calls.CodeUnavailable, Op: op, Message: "the ended calls are not written yet", Err: err}
	}
	s.log.Warn("history store: ended the calls a crash left live", "calls", len(fresh), "last_heartbeat", s.lastBeat)
	return len(fresh), nil
}
