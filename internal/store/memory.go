package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Memory is the embedded store: it keeps history in the process's memory
// only. History is lost when the process exits, and it grows with every
// call until then; nothing is ever evicted. It is safe for concurrent use.
//
// Record is cheap: a map lookup, usually an append to two indexes and to
// the call's timeline, under one mutex; it never allocates more than the
// call's entry and amortized slice growth. FindCalls finds its starting
// point by binary search in an index kept in history order (one for all
// calls, one per agent) and scans from there, dropping the lock every few
// thousand entries so that a long scan never holds up Record for long.
//
// The store keeps the Call values and Events it is given as they are, and
// the caller must not change them afterwards (the switchboard hands over
// fresh views). What FindCalls and FindCallByID answer is the caller's to
// change, except timeline Data, which is shared and must be treated as
// read-only.
type Memory struct {
	mu      sync.RWMutex
	closed  bool
	byID    map[string]*entry
	all     index                // every call
	byAgent map[string]*index    // each agent's calls
	revoked map[string]time.Time // token id → when its revocation expires
	numbers map[string]calls.NumberRoute
	recs    map[string]calls.Recording // recordings by id (recordings.go)
	status  memoryStatus               // agent status (status.go)
}

var _ calls.Store = (*Memory)(nil)

// entry is what the store keeps of one call.
type entry struct {
	pos      position // of call, as it is indexed
	call     calls.Call
	timeline []calls.TimelineEntry
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{
		byID:    make(map[string]*entry),
		byAgent: make(map[string]*index),
		revoked: make(map[string]time.Time),
		numbers: make(map[string]calls.NumberRoute),
	}
}

// Durable answers nil at once: the embedded memory store keeps nothing
// across a restart, so there is nothing more to wait for.
func (m *Memory) Durable(context.Context) error { return nil }

// Record keeps the latest view of each call and appends the records' events
// to its timeline, in order. A record without a call id is ignored, and so
// is everything recorded after Close.
func (m *Memory) Record(recs ...calls.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for i := range recs {
		m.record(&recs[i])
	}
}

func (m *Memory) record(r *calls.Record) {
	c := &r.Call
	if c.ID == "" {
		return
	}
	pos := positionOf(c.StartTime, c.ID)
	e := m.byID[c.ID]
	switch {
	case e != nil && e.call.EndTime != nil && c.EndTime == nil:
		// An ended call stays ended (see newerView): a live view of it
		// adds its events only.
	case e == nil:
		e = &entry{pos: pos}
		m.byID[c.ID] = e
		m.index(e, c.AgentID)
		e.call = *c
	default:
		if e.pos != pos || e.call.AgentID != c.AgentID {
			// The switchboard does not change a call's start or agent, but
			// if it ever does, the indexes follow.
			m.unindex(e)
			e.pos = pos
			m.index(e, c.AgentID)
		}
		e.call = *c
	}
	for i := range r.Events {
		ev := &r.Events[i]
		e.timeline = append(e.timeline, calls.TimelineEntry{
			Type: ev.Type, At: ev.At, Actor: ev.Actor, Data: ev.Data,
		})
	}
}

// index adds e, at e.pos, to the indexes for all calls and agent's calls.
func (m *Memory) index(e *entry, agent string) {
	m.all.insert(e)
	ix := m.byAgent[agent]
	if ix == nil {
		ix = new(index)
		m.byAgent[agent] = ix
	}
	ix.insert(e)
}

// unindex removes e from the indexes, where e.pos and e.call put it.
func (m *Memory) unindex(e *entry) {
	m.all.remove(e)
	agent := e.call.AgentID
	if ix := m.byAgent[agent]; ix != nil {
		ix.remove(e)
		if len(ix.entries) == 0 {
			delete(m.byAgent, agent)
		}
	}
}

// scanChunk is how many entries FindCalls examines per hold of the lock.
const scanChunk = 4096

// FindCalls answers a page of history, newest first. Errors: a malformed
// cursor is CodeInvalidRequest, a closed store CodeUnavailable. A Limit
// of 0 or less means calls.DefaultHistoryLimit; one above
// calls.MaxHistoryLimit is cut to it.
func (m *Memory) FindCalls(ctx context.Context, f calls.CallFilter) (calls.CallPage, error) {
	limit := pageLimit(f)

	// Walk positions below upper (exclusive), newest first, down to from.
	var upper position
	bounded := false
	if f.Cursor != "" {
		p, err := decodeCursor(f.Cursor)
		if err != nil {
			return calls.CallPage{}, err
		}
		upper, bounded = p, true
	}
	if !f.To.IsZero() {
		// The lowest position at To: ids are never empty.
		if p := positionOf(f.To, ""); !bounded || p.compare(upper) < 0 {
			upper, bounded = p, true
		}
	}
	from := position{sec: math.MinInt64}
	if !f.From.IsZero() {
		from = positionOf(f.From, "")
	}

	// One more than the page, to tell whether another page follows.
	found := make([]calls.Call, 0, limit+1)
	for more := true; more; {
		if err := ctx.Err(); err != nil {
			return calls.CallPage{}, fmt.Errorf("find calls: %w", err)
		}
		var err error
		found, upper, more, err = m.scan(f, from, upper, bounded, found, limit+1)
		if err != nil {
			return calls.CallPage{}, err
		}
		bounded = true
	}

	page := calls.CallPage{Items: found}
	if len(found) > limit {
		last := &found[limit-1]
		page.Items = found[:limit]
		page.NextCursor = encodeCursor(positionOf(last.StartTime, last.ID))
	}
	for i := range page.Items {
		page.Items[i] = cloneCall(page.Items[i])
	}
	return page, nil
}

// scan examines up to scanChunk entries below upper (all of them when not
// bounded) that are at or above from, appending those that match f to found
// until it holds want. It answers the position to resume below and whether
// there is more to examine.
func (m *Memory) scan(f calls.CallFilter, from, upper position, bounded bool, found []calls.Call, want int) ([]calls.Call, position, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return found, upper, false, errClosed()
	}
	ix := &m.all
	if f.AgentID != "" {
		if ix = m.byAgent[f.AgentID]; ix == nil {
			return found, upper, false, nil
		}
	}
	i := len(ix.entries)
	if bounded {
		i, _ = ix.search(upper)
	}
	for n := 0; n < scanChunk; n++ {
		i--
		if i < 0 {
			return found, upper, false, nil
		}
		e := ix.entries[i]
		if e.pos.compare(from) < 0 {
			return found, upper, false, nil
		}
		upper = e.pos
		w, coded := m.status.wrapUps[e.call.ID]
		if matches(&e.call, &f) && (f.WrapUpCode == "" || coded && w.Code == f.WrapUpCode) &&
			(f.Queue == "" || slices.Contains(m.status.queues[e.call.ID], f.Queue)) {
			c := e.call
			c.WrapUpCode = w.Code
			c.Queues = m.queuesOf(c.ID)
			found = append(found, c)
			if len(found) == want {
				return found, upper, false, nil
			}
		}
	}
	return found, upper, true, nil
}

// matches reports whether c passes f's filters other than time and cursor.
func matches(c *calls.Call, f *calls.CallFilter) bool {
	if f.AgentID != "" && c.AgentID != f.AgentID {
		return false
	}
	if f.Direction != "" && c.Direction != f.Direction {
		return false
	}
	if f.EndCode != nil && (c.CallEndReason == nil || c.CallEndReason.Code != *f.EndCode) {
		return false
	}
	if f.EndSubCode != nil && (c.CallEndReason == nil || c.CallEndReason.SubCode != *f.EndSubCode) {
		return false
	}
	if f.Participant != "" && !slices.ContainsFunc(c.RemoteParticipants, func(p calls.Participant) bool {
		return p.RawID == f.Participant
	}) {
		return false
	}
	return true
}

// FindCallByID answers one call with its timeline. Errors: an unknown id is
// CodeCallNotFound, a closed store CodeUnavailable.
func (m *Memory) FindCallByID(ctx context.Context, id string) (calls.CallHistory, error) {
	if err := ctx.Err(); err != nil {
		return calls.CallHistory{}, fmt.Errorf("find call %q: %w", id, err)
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return calls.CallHistory{}, errClosed()
	}
	e := m.byID[id]
	if e == nil {
		m.mu.RUnlock()
		return calls.CallHistory{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
	}
	h := calls.CallHistory{
		Call:     e.call,
		Timeline: make([]calls.TimelineEntry, len(e.timeline)),
	}
	copy(h.Timeline, e.timeline)
	h.Call.WrapUpCode = m.status.wrapUps[id].Code
	h.Call.Queues = m.queuesOf(id)
	m.mu.RUnlock()

	h.Call = cloneCall(h.Call)
	for i := range h.Timeline {
		h.Timeline[i].Actor = clonePtr(h.Timeline[i].Actor)
	}
	return h, nil
}

// Ready answers nil until the store is closed, then CodeUnavailable.
func (m *Memory) Ready(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errClosed()
	}
	return nil
}

// Close drops the history; the store then answers CodeUnavailable and
// ignores what is recorded. Closing again does nothing.
func (m *Memory) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.byID, m.all, m.byAgent = nil, index{}, nil
	return nil
}

// RevokeToken keeps the revocation in memory, with the later of its
// expiries when revoked again, and forgets the revocations that expired
// before expiresAt less a day. Errors: a closed store CodeUnavailable.
func (m *Memory) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed()
	}
	if expiresAt.After(m.revoked[id]) {
		m.revoked[id] = expiresAt
	}
	forget := expiresAt.Add(-24 * time.Hour)
	for jti, exp := range m.revoked {
		if exp.Before(forget) {
			delete(m.revoked, jti)
		}
	}
	return nil
}

// FindRevokedTokens answers the revocations that expire after now.
// Errors: a closed store CodeUnavailable.
func (m *Memory) FindRevokedTokens(ctx context.Context, now time.Time) ([]calls.RevokedToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("find revoked tokens: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed()
	}
	out := make([]calls.RevokedToken, 0, len(m.revoked))
	for id, exp := range m.revoked {
		if exp.After(now) {
			out = append(out, calls.RevokedToken{ID: id, ExpiresAt: exp})
		}
	}
	return out, nil
}

func errClosed() *calls.Error {
	return calls.Errorf(calls.CodeUnavailable, "the history store is closed")
}

// index is entries in ascending history order (oldest first), so that the
// usual new call, the newest, is an append.
type index struct {
	entries []*entry
}

// search answers where p is or would be inserted.
func (x *index) search(p position) (int, bool) {
	return slices.BinarySearchFunc(x.entries, p, func(e *entry, p position) int {
		return e.pos.compare(p)
	})
}

// insert adds e at e.pos.
func (x *index) insert(e *entry) {
	if n := len(x.entries); n == 0 || x.entries[n-1].pos.compare(e.pos) < 0 {
		x.entries = append(x.entries, e)
		return
	}
	i, _ := x.search(e.pos)
	x.entries = slices.Insert(x.entries, i, e)
}

// remove takes e, at e.pos, out.
func (x *index) remove(e *entry) {
	if i, ok := x.search(e.pos); ok && x.entries[i] == e {
		x.entries = slices.Delete(x.entries, i, i+1)
	}
}

// cloneCall copies what c points to, so the copy shares nothing with the
// store.
func cloneCall(c calls.Call) calls.Call {
	c.CallEndReason = clonePtr(c.CallEndReason)
	c.ConnectedTime = clonePtr(c.ConnectedTime)
	c.HeldTime = clonePtr(c.HeldTime)
	c.EndTime = clonePtr(c.EndTime)
	c.RemoteParticipants = slices.Clone(c.RemoteParticipants)
	for i := range c.RemoteParticipants {
		p := &c.RemoteParticipants[i]
		p.CallEndReason = clonePtr(p.CallEndReason)
		p.EndpointDetails = slices.Clone(p.EndpointDetails)
	}
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
