package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

var (
	_ calls.Recordings = (*Memory)(nil)
	_ calls.Recordings = (*SQLite)(nil)
	_ calls.Recordings = (*Postgres)(nil)
)

// PutRecording keeps r in memory. Errors: a closed store CodeUnavailable.
func (m *Memory) PutRecording(ctx context.Context, r calls.Recording) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put recording: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if m.recs == nil {
		m.recs = map[string]calls.Recording{}
	}
	m.recs[r.ID] = r.Clone()
	return nil
}

// FindRecordings answers the recordings f selects, oldest start first.
func (m *Memory) FindRecordings(ctx context.Context, f calls.RecordingFilter) ([]calls.Recording, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find recordings: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed()
	}
	out := []calls.Recording{}
	for _, r := range m.recs {
		if recordingSelected(r, f) {
			out = append(out, r.Clone())
		}
	}
	slices.SortFunc(out, compareRecordings)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// recordingSelected is the filter as the SQL stores' queries apply it.
func recordingSelected(r calls.Recording, f calls.RecordingFilter) bool {
	switch {
	case f.CallID != "" && r.CallID != f.CallID:
		return false
	case f.Unfinished && r.StoppedAt != nil:
		return false
	case !f.StoppedBefore.IsZero() && (r.StoppedAt == nil || !r.StoppedAt.Before(f.StoppedBefore) || r.DeletedAt != nil):
		return false
	case (f.Unfinished || !f.StoppedBefore.IsZero()) && r.Node != f.Node:
		return false
	}
	return true
}

func compareRecordings(a, b calls.Recording) int {
	if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// recordingWhere is the filter as SQL conditions and arguments; param
// writes the n-th parameter's placeholder.
func recordingWhere(f calls.RecordingFilter, param func(n int) string, at func(time.Time) any) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, param(len(args))))
	}
	if f.CallID != "" {
		add("call_id = %s", f.CallID)
	}
	if f.Unfinished {
		conds = append(conds, "stopped IS NULL")
	}
	if !f.StoppedBefore.IsZero() {
		add("stopped < %s", at(f.StoppedBefore))
		conds = append(conds, "deleted IS NULL")
	}
	if f.Unfinished || !f.StoppedBefore.IsZero() {
		add("node = %s", f.Node)
	}
	q := ""
	if len(conds) > 0 {
		q = " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY started, id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

// recordingTimes are a recording's times as the SQL stores' columns.
func recordingTimes(r calls.Recording, at func(time.Time) any) (started, stopped, deleted any) {
	started = at(r.StartedAt)
	if r.StoppedAt != nil {
		stopped = at(*r.StoppedAt)
	}
	if r.DeletedAt != nil {
		deleted = at(*r.DeletedAt)
	}
	return started, stopped, deleted
}

func scanRecordings(rows sqlRows) ([]calls.Recording, error) {
	defer rows.Close()
	out := []calls.Recording{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var r calls.Recording
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("stored recording: %w", err)
		}
		if r.Paused == nil {
			r.Paused = []calls.PausedSpan{}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func sqliteParam(n int) string   { return fmt.Sprintf("?%d", n) }
func sqliteAt(t time.Time) any   { return t.UnixNano() }
func postgresParam(n int) string { return fmt.Sprintf("$%d", n) }
func postgresAt(t time.Time) any { return t }

// PutRecording writes r at once. Errors: a closed store or a failing file
// CodeUnavailable; an ended ctx wraps its error.
func (s *SQLite) PutRecording(ctx context.Context, r calls.Recording) error {
	const op = "put recording"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	started, stopped, deleted := recordingTimes(r, sqliteAt)
	_, err = s.wdb.ExecContext(ctx, `
INSERT INTO recordings (id, call_id, node, started, stopped, deleted, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, node = excluded.node, started = excluded.started,
    stopped = excluded.stopped, deleted = excluded.deleted, data = excluded.data`,
		r.ID, r.CallID, r.Node, started, stopped, deleted, string(data))
	if err != nil {
		return sqliteError(op, err)
	}
	return nil
}

// FindRecordings reads the recordings f selects, oldest start first.
func (s *SQLite) FindRecordings(ctx context.Context, f calls.RecordingFilter) ([]calls.Recording, error) {
	const op = "find recordings"
	if err := s.usable(ctx, op); err != nil {
		return nil, err
	}
	where, args := recordingWhere(f, sqliteParam, sqliteAt)
	rows, err := s.rdb.QueryContext(ctx, `SELECT data FROM recordings`+where, args...)
	if err != nil {
		return nil, sqliteError(op, err)
	}
	recs, err := scanRecordings(stdRows{rows})
	if err != nil {
		return nil, sqliteError(op, err)
	}
	return recs, nil
}

// PutRecording writes r to Postgres at once. Errors: a closed store, or
// Postgres out of reach, CodeUnavailable; an ended ctx wraps its error.
func (p *Postgres) PutRecording(ctx context.Context, r calls.Recording) error {
	const op = "put recording"
	if err := p.open(); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	started, stopped, deleted := recordingTimes(r, postgresAt)
	_, err = p.pool.Exec(ctx, `
INSERT INTO recordings (id, call_id, node, started, stopped, deleted, data) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET call_id = EXCLUDED.call_id, node = EXCLUDED.node, started = EXCLUDED.started,
    stopped = EXCLUDED.stopped, deleted = EXCLUDED.deleted, data = EXCLUDED.data`,
		r.ID, r.CallID, r.Node, started, stopped, deleted, data)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	return nil
}

// FindRecordings reads the recordings f selects, oldest start first.
func (p *Postgres) FindRecordings(ctx context.Context, f calls.RecordingFilter) ([]calls.Recording, error) {
	const op = "find recordings"
	if err := p.open(); err != nil {
		return nil, err
	}
	where, args := recordingWhere(f, postgresParam, postgresAt)
	rows, err := p.pool.Query(ctx, `SELECT data FROM recordings`+where, args...)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	recs, err := scanRecordings(rows)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	return recs, nil
}
