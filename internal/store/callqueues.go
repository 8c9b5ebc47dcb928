package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/internal/calls"
)

var (
	_ calls.CallQueueLog = (*Memory)(nil)
	_ calls.CallQueueLog = (*SQLite)(nil)
	_ calls.CallQueueLog = (*Postgres)(nil)
)

// PutCallQueue keeps in memory that the call went through the queue.
func (m *Memory) PutCallQueue(ctx context.Context, q calls.CallQueue) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put call queue: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if m.status.queues == nil {
		m.status.queues = map[string][]string{}
	}
	if !slices.Contains(m.status.queues[q.CallID], q.Queue) {
		m.status.queues[q.CallID] = append(m.status.queues[q.CallID], q.Queue)
	}
	return nil
}

// queuesOf answers the queues call id went through, by name (nil: none),
// a copy. The caller holds mu.
func (m *Memory) queuesOf(id string) []string {
	qs := slices.Clone(m.status.queues[id])
	slices.Sort(qs)
	return qs
}

// queueList is a call's queues as the SQL stores read them (names joined
// by spaces, which names never have; NULL: none), by name.
func queueList(s *string) []string {
	if s == nil || *s == "" {
		return nil
	}
	qs := strings.Fields(*s)
	slices.Sort(qs)
	return qs
}

// PutCallQueue writes at once that the call went through the queue; the
// first time it did is kept.
func (s *SQLite) PutCallQueue(ctx context.Context, q calls.CallQueue) error {
	const op = "put call queue"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	_, err := s.wdb.ExecContext(ctx, `
INSERT INTO call_queues (call_id, queue, at_ns) VALUES (?1, ?2, ?3)
ON CONFLICT (call_id, queue) DO NOTHING`, q.CallID, q.Queue, unixNanos(q.At))
	if err != nil {
		return sqliteError(op, err)
	}
	return nil
}

// PutCallQueue writes to Postgres at once that the call went through the
// queue; the first time it did is kept.
func (p *Postgres) PutCallQueue(ctx context.Context, q calls.CallQueue) error {
	const op = "put call queue"
	if err := p.open(); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO call_queues (call_id, queue, at) VALUES ($1, $2, $3)
ON CONFLICT (call_id, queue) DO NOTHING`, clean(q.CallID), clean(q.Queue), q.At)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	return nil
}
