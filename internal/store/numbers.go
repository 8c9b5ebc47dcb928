package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/internal/calls"
)

var (
	_ calls.NumberRoutes = (*Memory)(nil)
	_ calls.NumberRoutes = (*SQLite)(nil)
	_ calls.NumberRoutes = (*Postgres)(nil)
)

// PutNumberRoute keeps the route in memory. Errors: a closed store
// CodeUnavailable.
func (m *Memory) PutNumberRoute(ctx context.Context, r calls.NumberRoute) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put number route: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if r.Target != nil {
		t := *r.Target
		r.Target = &t
	}
	m.numbers[r.Number] = r
	return nil
}

// FindNumberRoute answers the route of number, or CodeNotFound.
func (m *Memory) FindNumberRoute(ctx context.Context, number string) (calls.NumberRoute, error) {
	if err := ctx.Err(); err != nil {
		return calls.NumberRoute{}, fmt.Errorf("find number route: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return calls.NumberRoute{}, errClosed()
	}
	r, ok := m.numbers[number]
	if !ok {
		return calls.NumberRoute{}, calls.ErrNumberNotRouted(number)
	}
	return copyRoute(r), nil
}

// FindNumberRoutes answers every route, by number.
func (m *Memory) FindNumberRoutes(ctx context.Context) ([]calls.NumberRoute, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find number routes: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed()
	}
	out := make([]calls.NumberRoute, 0, len(m.numbers))
	for _, r := range m.numbers {
		out = append(out, copyRoute(r))
	}
	slices.SortFunc(out, func(a, b calls.NumberRoute) int { return strings.Compare(a.Number, b.Number) })
	return out, nil
}

// DeleteNumberRoute forgets the route of number, or answers CodeNotFound.
func (m *Memory) DeleteNumberRoute(ctx context.Context, number string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete number route: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if _, ok := m.numbers[number]; !ok {
		return calls.ErrNumberNotRouted(number)
	}
	delete(m.numbers, number)
	return nil
}

func copyRoute(r calls.NumberRoute) calls.NumberRoute {
	if r.Target != nil {
		t := *r.Target
		r.Target = &t
	}
	return r
}

// routeColumns are a route as the SQL stores keep it: the target's rawId
// (or NULL) and the queue's name (or NULL).
func routeColumns(r calls.NumberRoute) (target, queue *string) {
	if r.Target != nil {
		raw := r.Target.RawID()
		target = &raw
	}
	if r.Queue != "" {
		queue = &r.Queue
	}
	return target, queue
}

// routeFromColumns rebuilds a route read back from SQL.
func routeFromColumns(number string, target, queue *string) (calls.NumberRoute, error) {
	r := calls.NumberRoute{Number: number}
	if target != nil {
		id, err := calls.ParseRawID(*target)
		if err != nil {
			return calls.NumberRoute{}, fmt.Errorf("number route %s: stored target %q: %w", number, *target, err)
		}
		r.Target = &id
	}
	if queue != nil {
		r.Queue = *queue
	}
	return r, nil
}

// PutNumberRoute writes the route at once. Errors: a closed store or a
// failing file CodeUnavailable; an ended ctx wraps its error.
func (s *SQLite) PutNumberRoute(ctx context.Context, r calls.NumberRoute) error {
	const op = "put number route"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	target, queue := routeColumns(r)
	_, err := s.wdb.ExecContext(ctx, `
INSERT INTO number_routes (number, target, queue) VALUES (?1, ?2, ?3)
ON CONFLICT (number) DO UPDATE SET target = excluded.target, queue = excluded.queue`, r.Number, target, queue)
	if err != nil {
		return sqliteError(op, err)
	}
	return nil
}

// FindNumberRoute reads the route of number, or answers CodeNotFound.
func (s *SQLite) FindNumberRoute(ctx context.Context, number string) (calls.NumberRoute, error) {
	const op = "find number route"
	if err := s.usable(ctx, op); err != nil {
		return calls.NumberRoute{}, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT number, target, queue FROM number_routes WHERE number = ?`, number)
	if err != nil {
		return calls.NumberRoute{}, sqliteError(op, err)
	}
	routes, err := scanRoutes(rows)
	if err != nil {
		return calls.NumberRoute{}, sqliteError(op, err)
	}
	if len(routes) == 0 {
		return calls.NumberRoute{}, calls.ErrNumberNotRouted(number)
	}
	return routes[0], nil
}

// FindNumberRoutes reads every route, by number.
func (s *SQLite) FindNumberRoutes(ctx context.Context) ([]calls.NumberRoute, error) {
	const op = "find number routes"
	if err := s.usable(ctx, op); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT number, target, queue FROM number_routes ORDER BY number`)
	if err != nil {
		return nil, sqliteError(op, err)
	}
	routes, err := scanRoutes(rows)
	if err != nil {
		return nil, sqliteError(op, err)
	}
	return routes, nil
}

// DeleteNumberRoute deletes the route of number, or answers CodeNotFound.
func (s *SQLite) DeleteNumberRoute(ctx context.Context, number string) error {
	const op = "delete number route"
	if err := s.usable(ctx, op); err != nil {
		return err
	}
	res, err := s.wdb.ExecContext(ctx, `DELETE FROM number_routes WHERE number = ?`, number)
	if err != nil {
		return sqliteError(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sqliteError(op, err)
	} else if n == 0 {
		return calls.ErrNumberNotRouted(number)
	}
	return nil
}

// sqlRows is what database/sql's and pgx's rows share.
type sqlRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// closeErrRows adapts database/sql's rows, whose Close answers an error.
type closeErrRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

type stdRows struct{ closeErrRows }

func (r stdRows) Close() { _ = r.closeErrRows.Close() }

func scanRoutes(rows closeErrRows) ([]calls.NumberRoute, error) {
	return scanRouteRows(stdRows{rows})
}

func scanRouteRows(rows sqlRows) ([]calls.NumberRoute, error) {
	defer rows.Close()
	out := []calls.NumberRoute{}
	for rows.Next() {
		var (
			number        string
			target, queue *string
		)
		if err := rows.Scan(&number, &target, &queue); err != nil {
			return nil, err
		}
		r, err := routeFromColumns(number, target, queue)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// PutNumberRoute writes the route to Postgres at once. Errors: a closed
// store, or Postgres out of reach, CodeUnavailable; an ended ctx wraps its
// error.
func (p *Postgres) PutNumberRoute(ctx context.Context, r calls.NumberRoute) error {
	const op = "put number route"
	if err := p.open(); err != nil {
		return err
	}
	target, queue := routeColumns(r)
	_, err := p.pool.Exec(ctx, `
INSERT INTO number_routes (number, target, queue) VALUES ($1, $2, $3)
ON CONFLICT (number) DO UPDATE SET target = EXCLUDED.target, queue = EXCLUDED.queue`, r.Number, target, queue)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	return nil
}

// FindNumberRoute reads the route of number, or answers CodeNotFound.
func (p *Postgres) FindNumberRoute(ctx context.Context, number string) (calls.NumberRoute, error) {
	const op = "find number route"
	if err := p.open(); err != nil {
		return calls.NumberRoute{}, err
	}
	rows, err := p.pool.Query(ctx, `SELECT number, target, queue FROM number_routes WHERE number = $1`, number)
	if err != nil {
		return calls.NumberRoute{}, revocationError(ctx, op, err)
	}
	routes, err := scanRouteRows(rows)
	if err != nil {
		return calls.NumberRoute{}, revocationError(ctx, op, err)
	}
	if len(routes) == 0 {
		return calls.NumberRoute{}, calls.ErrNumberNotRouted(number)
	}
	return routes[0], nil
}

// FindNumberRoutes reads every route, by number.
func (p *Postgres) FindNumberRoutes(ctx context.Context) ([]calls.NumberRoute, error) {
	const op = "find number routes"
	if err := p.open(); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT number, target, queue FROM number_routes ORDER BY number`)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	routes, err := scanRouteRows(rows)
	if err != nil {
		return nil, revocationError(ctx, op, err)
	}
	return routes, nil
}

// DeleteNumberRoute deletes the route of number, or answers CodeNotFound.
func (p *Postgres) DeleteNumberRoute(ctx context.Context, number string) error {
	const op = "delete number route"
	if err := p.open(); err != nil {
		return err
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM number_routes WHERE number = $1`, number)
	if err != nil {
		return revocationError(ctx, op, err)
	}
	if tag.RowsAffected() == 0 {
		return calls.ErrNumberNotRouted(number)
	}
	return nil
}
