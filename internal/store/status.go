package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/routing"
)

var (
	_ calls.AgentStatusLog = (*Memory)(nil)
	_ calls.AgentStatusLog = (*SQLite)(nil)
	_ calls.AgentStatusLog = (*Postgres)(nil)
)

// memoryStatus is what the memory store keeps of agent status, under its
// mu.
type memoryStatus struct {
	changes []calls.StatusChange // in the order recorded
	wrapUps map[string]calls.WrapUpCode
	queues  map[string][]string // call id -> the queues it went through, in order
}

// RecordStatusChanges keeps cs in memory. Errors: a closed store
// CodeUnavailable; an ended ctx wraps its error.
func (m *Memory) RecordStatusChanges(ctx context.Context, cs ...calls.StatusChange) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("record status changes: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	for _, c := range cs {
		c.By.DisplayName = ""
		m.status.changes = append(m.status.changes, c)
	}
	return nil
}

// FindStatusChanges answers the changes passing f, newest first.
func (m *Memory) FindStatusChanges(ctx context.Context, f calls.StatusFilter) ([]calls.StatusChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find status changes: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed()
	}
	limit := statusLimit(f)
	out := []calls.StatusChange{}
	for i := len(m.status.changes) - 1; i >= 0 && len(out) < limit; i-- {
		c := m.status.changes[i]
		if statusMatches(c, f) {
			out = append(out, c)
		}
	}
	// Recorded in order of the changes, except across writers: order by
	// time as the SQL stores do.
	slices.SortStableFunc(out, func(a, b calls.StatusChange) int { return b.At.Compare(a.At) })
	return out, nil
}

func statusMatches(c calls.StatusChange, f calls.StatusFilter) bool {
	return (f.AgentID == "" || c.AgentID == f.AgentID) &&
		(f.From.IsZero() || !c.At.Before(f.From)) &&
		(f.To.IsZero() || c.At.Before(f.To))
}

func statusLimit(f calls.StatusFilter) int {
	switch {
	case f.Limit <= 0:
		return calls.DefaultHistoryLimit
	case f.Limit > calls.MaxHistoryLimit:
		return calls.MaxHistoryLimit
	}
	return f.Limit
}

// LastStatusChange answers agentID's latest change, or CodeNotFound.
func (m *Memory) LastStatusChange(ctx context.Context, agentID string) (calls.StatusChange, error) {
	out, err := m.FindStatusChanges(ctx, calls.StatusFilter{AgentID: agentID, Limit: 1})
	if err != nil {
		return calls.StatusChange{}, err
	}
	if len(out) == 0 {
		return calls.StatusChange{}, errNoStatus(agentID)
	}
	return out[0], nil
}

func errNoStatus(agentID string) error {
	return calls.Errorf(calls.CodeNotFound, "no status change of %s", agentID)
}

// PutWrapUpCode keeps the call's wrap-up code in memory.
func (m *Memory) PutWrapUpCode(ctx context.Context, w calls.WrapUpCode) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put wrap-up code: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if m.status.wrapUps == nil {
		m.status.wrapUps = map[string]calls.WrapUpCode{}
	}
	m.status.wrapUps[w.CallID] = w
	return nil
}

// statusWhere is f as SQL conditions, with placeholders made by ph.
func statusWhere(f calls.StatusFilter, at string, ph func(v any) string) string {
	var where []string
	if f.AgentID != "" {
		where = append(where, "agent_id = "+ph(f.AgentID))
	}
	if !f.From.IsZero() {
		where = append(where, at+" >= "+ph(nil))
	}
	if !f.To.IsZero() {
		where = append(where, at+" < "+ph(nil))
	}
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

func scanStatusChanges(rows sqlRows, fromNanos bool) ([]calls.StatusChange, error) {
	defer rows.Close()
	out := []calls.StatusChange{}
	for rows.Next() {
		var (
			c              calls.StatusChange
			ns             int64
			at             time.Time
			status, chosen string
			kind           string
			by             *string
		)
		dest := []any{&c.AgentID, &at, &status, &chosen, &kind, &by}
		if fromNanos {
			dest[1] = &ns
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if fromNanos {
			at = time.Unix(0, ns)
		}
		c.At = at.UTC()
		c.Status, c.Chosen = routing.Status(status), routing.Status(chosen)
		c.By.Kind = calls.ActorKind(kind)
		if by != nil {
			c.By.RawID = *by
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// RecordStatusChanges writes cs at once, in one transaction. Errors: a
// closed store or a failing file CodeUnavailable; an ended ctx wraps its
// error.
func (s *SQLite) RecordStatusChanges(ctx context.Context, cs ...calls.StatusChange) error {
	const op = "record status changes"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return sqliteError(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	for _, c := range cs {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO agent_status_changes (agent_id, at_ns, status, chosen, by_kind, by_raw_id) VALUES (?, ?, ?, ?, ?, ?)`,
			c.AgentID, unixNanos(c.At), string(c.Status), string(c.Chosen), string(c.By.Kind), optString(c.By.RawID)); err != nil {
			return sqliteError(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return sqliteError(op, err)
	}
	return nil
}

// FindStatusChanges reads the changes passing f, newest first.
func (s *SQLite) FindStatusChanges(ctx context.Context, f calls.StatusFilter) ([]calls.StatusChange, error) {
	const op = "find status changes"
	if err := s.usable(ctx, op); err != nil {
		return nil, err
	}
	var args []any
	vals := []any{}
	if !f.From.IsZero() {
		vals = append(vals, unixNanos(f.From))
	}
	if !f.To.IsZero() {
		vals = append(vals, unixNanos(f.To))
	}
	where := statusWhere(f, "at_ns", func(v any) string {
		if v == nil {
			v, vals = vals[0], vals[1:]
		}
		args = append(args, v)
		return "?"
	})
	args = append(args, statusLimit(f))
	rows, err := s.rdb.QueryContext(ctx, `
SELECT agent_id, at_ns, status, chosen, by_kind, by_raw_id FROM agent_status_changes`+where+`
ORDER BY at_ns DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, sqliteError(op, err)
	}
	out, err := scanStatusChanges(stdRows{rows}, true)
	if err != nil {
		return nil, sqliteError(op, err)
	}
	return out, nil
}

// LastStatusChange reads agentID's latest change, or CodeNotFound.
func (s *SQLite) LastStatusChange(ctx context.Context, agentID string) (calls.StatusChange, error) {
	out, err := s.FindStatusChanges(ctx, calls.StatusFilter{AgentID: agentID, Limit: 1})
	if err != nil {
		return calls.StatusChange{}, err
	}
	if len(out) == 0 {
		return calls.StatusChange{}, errNoStatus(agentID)
	}
	return out[0], nil
}

// PutWrapUpCode writes the call's wrap-up code at once, replacing one it
// had.
func (s *SQLite) PutWrapUpCode(ctx context.Context, w calls.WrapUpCode) error {
	const op = "put wrap-up code"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	_, err := s.wdb.ExecContext(ctx, `
INSERT INTO wrap_up_codes (call_id, agent_id, code, at_ns) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (call_id) DO UPDATE SET agent_id = excluded.agent_id, code = excluded.code, at_ns = excluded.at_ns`,
		w.CallID, w.AgentID, w.Code, unixNanos(w.At))
	if err != nil {
		return sqliteError(op, err)
	}
	return nil
}

// RecordStatusChanges writes cs to Postgres at once, in one statement
// (rows in the order given, so ids follow it). Errors: a closed store, or
// Postgres out of reach, CodeUnavailable; an ended ctx wraps its error.
func (p *Postgres) RecordStatusChanges(ctx context.Context, cs ...calls.StatusChange) error {
	const op = "record status changes"
	if err := p.open(); err != nil {
		return err
	}
	if len(cs) == 0 {
		return nil
	}
	agents, ats, statuses, chosen, kinds, bys := make([]string, len(cs)), make([]time.Time, len(cs)),
		make([]string, len(cs)), make([]string, len(cs)), make([]string, len(cs)), make([]*string, len(cs))
	for i, c := range cs {
		agents[i], ats[i], statuses[i], chosen[i] = clean(c.AgentID), c.At, clean(string(c.Status)), clean(string(c.Chosen))
		kinds[i], bys[i] = clean(string(c.By.Kind)), optString(clean(c.By.RawID))
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO agent_status_changes (agent_id, at, status, chosen, by_kind, by_raw_id)
SELECT a, t, s, c, k, b FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS r(a, t, s, c, k, b, n)
ORDER BY n`, agents, ats, statuses, chosen, kinds, bys)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	return nil
}

// FindStatusChanges reads the changes passing f, newest first.
func (p *Postgres) FindStatusChanges(ctx context.Context, f calls.StatusFilter) ([]calls.StatusChange, error) {
	const op = "find status changes"
	if err := p.open(); err != nil {
		return nil, err
	}
	var args []any
	vals := []any{}
	if !f.From.IsZero() {
		vals = append(vals, f.From)
	}
	if !f.To.IsZero() {
		vals = append(vals, f.To)
	}
	ph := func(v any) string {
		if v == nil {
			v, vals = vals[0], vals[1:]
		}
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := statusWhere(f, "at", ph)
	limit := ph(statusLimit(f))
	rows, err := p.pool.Query(ctx, `
SELECT agent_id, at, status, chosen, by_kind, by_raw_id FROM agent_status_changes`+where+`
ORDER BY at DESC, id DESC LIMIT `+limit, args...)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	out, err := scanStatusChanges(rows, false)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	return out, nil
}

// LastStatusChange reads agentID's latest change, or CodeNotFound.
func (p *Postgres) LastStatusChange(ctx context.Context, agentID string) (calls.StatusChange, error) {
	out, err := p.FindStatusChanges(ctx, calls.StatusFilter{AgentID: agentID, Limit: 1})
	if err != nil {
		return calls.StatusChange{}, err
	}
	if len(out) == 0 {
		return calls.StatusChange{}, errNoStatus(agentID)
	}
	return out[0], nil
}

// PutWrapUpCode writes the call's wrap-up code to Postgres at once,
// replacing one it had.
func (p *Postgres) PutWrapUpCode(ctx context.Context, w calls.WrapUpCode) error {
	const op = "put wrap-up code"
	if err := p.open(); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO wrap_up_codes (call_id, agent_id, code, at) VALUES ($1, $2, $3, $4)
ON CONFLICT (call_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, code = EXCLUDED.code, at = EXCLUDED.at`,
		clean(w.CallID), clean(w.AgentID), clean(w.Code), w.At)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	return nil
}
