package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard/switchboard/internal/calls"
)

// FindCalls answers a page of history, newest first, from Postgres. Each
// filter is a column with an index that serves it in history order (see
// the migrations); the cursor is a keyset bound on (start time, id). Errors:
// a malformed cursor is CodeInvalidRequest; a closed store, or Postgres out
// of reach, CodeUnavailable; a cancelled context wraps its error. A Limit
// of 0 or less means calls.DefaultHistoryLimit; one above
// calls.MaxHistoryLimit is cut to it.
//
// Changes still waiting in the writer's queue are not seen: Flush first to
// read what was just recorded.
func (p *Postgres) FindCalls(ctx context.Context, f calls.CallFilter) (calls.CallPage, error) {
	const op = "find calls"
	if err := p.usable(ctx, op); err != nil {
		return calls.CallPage{}, err
	}
	limit := pageLimit(f)
	after, err := cursorAfter(f)
	if err != nil {
		return calls.CallPage{}, err
	}
	page := calls.CallPage{Items: []calls.Call{}}
	query, args, ok := historyQuery(&f, after, limit+1)
	if !ok {
		return page, nil
	}

	rows, err := p.pool.Query(ctx, query, args...)
	if err != nil {
		return calls.CallPage{}, dbError(op, err)
	}
	defer rows.Close()
	var last []position
	for rows.Next() {
		var (
			start time.Time
			id    string
			view  []byte
			code  *string
			qs    *string
		)
		if err := rows.Scan(&start, &id, &view, &code, &qs); err != nil {
			return calls.CallPage{}, dbError(op, err)
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
		last = append(last, positionOf(start, id))
	}
	if err := rows.Err(); err != nil {
		return calls.CallPage{}, dbError(op, err)
	}
	trimPage(&page, last, limit)
	return page, nil
}

// Postgres keeps times from 4713 BC to 294276 AD; a cursor (which any
// client can forge) may point far outside.
var (
	minTime = time.Date(-4000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// historyQuery is the SQL for a page of n calls passing f, below the
// position after (nil: from the newest). ok is false when nothing can pass.
//
// With a participant, the page walks that participant's rows in history
// order and joins each call; otherwise it walks calls, by agent when f
// has one. Ids are compared bytewise: the id columns use the "C" collation.
func historyQuery(f *calls.CallFilter, after *position, n int) (query string, args []any, ok bool) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var where []string
	from, start, id := "calls c", "c.start_time", "c.id"
	if f.Participant != "" {
		from, start, id = "participants p JOIN calls c ON c.id = p.call_id", "p.start_time", "p.call_id"
		where = append(where, "p.raw_id = "+arg(clean(f.Participant)))
	}
	if f.AgentID != "" {
		where = append(where, "c.agent_id = "+arg(clean(f.AgentID)))
	}
	if !f.From.IsZero() {
		if f.From.After(maxTime) {
			return "", nil, false
		}
		if f.From.After(minTime) {
			// Start times are whole microseconds: start >= From is start >= From rounded up.
			where = append(where, start+" >= "+arg(ceilMicro(f.From)))
		}
	}
	if !f.To.IsZero() {
		if !f.To.After(minTime) {
			return "", nil, false
		}
		if f.To.Before(maxTime) {
			where = append(where, start+" < "+arg(ceilMicro(f.To)))
		}
	}
	if f.Direction != "" {
		where = append(where, "c.direction = "+arg(clean(string(f.Direction))))
	}
	if f.EndCode != nil {
		code := int32Ptr(*f.EndCode)
		if code == nil {
			return "", nil, false // no call's column holds it
		}
		where = append(where, "c.end_code = "+arg(*code))
	}
	if f.EndSubCode != nil {
		sub := int32Ptr(*f.EndSubCode)
		if sub == nil {
			return "", nil, false
		}
		where = append(where, "c.end_subcode = "+arg(*sub))
	}
	if f.WrapUpCode != "" {
		where = append(where, "EXISTS (SELECT 1 FROM wrap_up_codes w WHERE w.call_id = c.id AND w.code = "+arg(clean(f.WrapUpCode))+")")
	}
	if f.Queue != "" {
		where = append(where, "EXISTS (SELECT 1 FROM call_queues q WHERE q.call_id = c.id AND q.queue = "+arg(clean(f.Queue))+")")
	}
	if after != nil {
		t := time.Unix(after.sec, int64(after.nsec)).UTC()
		switch {
		case !t.After(minTime):
			return "", nil, false
		case t.After(maxTime):
		case t.Nanosecond()%1000 != 0:
			// Between two microseconds: no start time equals it.
			where = append(where, start+" < "+arg(ceilMicro(t)))
		default:
			where = append(where, "("+start+", "+id+") < ("+arg(t)+", "+arg(clean(after.id))+")")
		}
	}
	var b strings.Builder
	b.WriteString("SELECT c.start_time, c.id, c.view, (SELECT w.code FROM wrap_up_codes w WHERE w.call_id = c.id), " + postgresQueuesOf + " FROM ")
	b.WriteString(from)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s DESC, %s DESC LIMIT %s", start, id, arg(n))
	return b.String(), args, true
}

// postgresQueuesOf is the column of a call's queues (queueList).
const postgresQueuesOf = "(SELECT string_agg(q.queue, ' ') FROM call_queues q WHERE q.call_id = c.id)"

// ceilMicro is t rounded up to the microsecond.
func ceilMicro(t time.Time) time.Time {
	u := t.Truncate(time.Microsecond)
	if u.Before(t) {
		u = u.Add(time.Microsecond)
	}
	return u
}

// FindCallByID answers one call with its participants (in the call) and
// its timeline, in the order recorded; each entry's Data is a
// json.RawMessage (nil when the event had none). Errors: an unknown id is
// CodeCallNotFound; a closed store, or Postgres out of reach,
// CodeUnavailable; a cancelled context wraps its error.
func (p *Postgres) FindCallByID(ctx context.Context, id string) (calls.CallHistory, error) {
	op := fmt.Sprintf("find call %q", id)
	if err := p.usable(ctx, op); err != nil {
		return calls.CallHistory{}, err
	}
	if id == "" || clean(id) != id {
		return calls.CallHistory{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT c.view, (SELECT w.code FROM wrap_up_codes w WHERE w.call_id = c.id), `+postgresQueuesOf+` FROM calls c WHERE c.id = $1`, id)
	b.Queue(`SELECT type, at, actor_kind, actor_raw_id, data FROM call_events WHERE call_id = $1 ORDER BY version, idx`, id)
	br := p.pool.SendBatch(ctx, b)
	defer br.Close()

	var (
		view []byte
		code *string
		qs   *string
	)
	if err := br.QueryRow().Scan(&view, &code, &qs); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return calls.CallHistory{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
		}
		return calls.CallHistory{}, dbError(op, err)
	}
	h := calls.CallHistory{Timeline: []calls.TimelineEntry{}}
	if err := json.Unmarshal(view, &h.Call); err != nil {
		return calls.CallHistory{}, &calls.Error{Code: calls.CodeInternal, Op: op, Message: "the call is not readable", Err: err}
	}
	if code != nil {
		h.Call.WrapUpCode = *code
	}
	h.Call.Queues = queueList(qs)
	rows, err := br.Query()
	if err != nil {
		return calls.CallHistory{}, dbError(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e         calls.TimelineEntry
			kind, raw *string
			data      []byte
		)
		if err := rows.Scan(&e.Type, &e.At, &kind, &raw, &data); err != nil {
			return calls.CallHistory{}, dbError(op, err)
		}
		e.At = e.At.UTC()
		if kind != nil {
			e.Actor = &calls.Actor{Kind: calls.ActorKind(*kind)}
			if raw != nil {
				e.Actor.RawID = *raw
			}
		}
		if data != nil {
			e.Data = json.RawMessage(data)
		}
		h.Timeline = append(h.Timeline, e)
	}
	if err := rows.Err(); err != nil {
		return calls.CallHistory{}, dbError(op, err)
	}
	return h, nil
}

// usable answers why the store cannot serve a query now, or nil.
func (p *Postgres) usable(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errClosed()
	}
	return nil
}

// dbError is err from Postgres as the domain's error: a context's ending
// stays itself (wrapped), a lost or overloaded server is CodeUnavailable,
// anything else (a bug) CodeInternal.
func dbError(op string, err error) error {
	if isContextError(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	code := calls.CodeUnavailable
	var pg *pgconn.PgError
	if errors.As(err, &pg) && !serverUnavailable(pg.Code) {
		code = calls.CodeInternal
	}
	return &calls.Error{Code: code, Op: op, Message: "the history database failed", Err: err}
}

// serverUnavailable reports whether a SQLSTATE says the server cannot
// serve now (connection, resources, shutdown, read-only, conflicts) rather
// than that the query is wrong.
func serverUnavailable(code string) bool {
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "08", "25", "40", "53", "55", "57", "58":
		return true
	}
	return false
}
