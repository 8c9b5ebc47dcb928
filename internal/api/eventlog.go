package api

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EventLog holds the recent events of each event stream, so that a client
// that reconnects can be sent what it missed instead of a snapshot. A
// stream is named by the Hub: one per identity (AgentStream) and one that
// every supervisor shares (SupervisorStream).
//
// A stream's seqs grow by one per event and never go back, across the
// stream being forgotten and begun again: a seq once given is never given
// again by the same log (a log that begins again, as after a restart,
// starts past the seqs the last one gave, or cannot tell and answers
// ErrGone). The Hub serializes the calls for one stream; an EventLog is
// safe for concurrent use across streams.
type EventLog interface {
	// Append adds an encoded event to the stream and returns its seq.
	Append(stream string, payload []byte) (seq uint64, err error)
	// Since returns the stream's events after seq, oldest first: none
	// when seq is its last. It answers ErrGone when some of them are no
	// longer held (seq is older than the retention) or seq is past the
	// stream's last (it was given by another log).
	Since(stream string, seq uint64) ([]Entry, error)
	// Last is the seq of the stream's last event: the seq a snapshot
	// carries, so that the stream's next event is Last+1.
	Last(stream string) (uint64, error)
}

// Entry is one event of a stream.
type Entry struct {
	Seq     uint64
	Payload []byte // the event's encoding, without its seq
}

// ErrGone says the events asked for are no longer (or were never) held:
// the client starts over from a snapshot.
var ErrGone = errors.New("events no longer held")

// ErrBehind says a RemoteLog does not hold the seq asked for yet: it may
// not have caught up with the node that gave it. It wraps ErrGone.
var ErrBehind = fmt.Errorf("%w: not caught up yet", ErrGone)

// Stream names.
const (
	// SupervisorStream is the stream every supervisor connection shares:
	// the events of every agent and supervisor.
	SupervisorStream  = "supervisors"
	agentStreamPrefix = "agent/"
)

// AgentStream is the stream of one identity's own events.
func AgentStream(rawID string) string { return agentStreamPrefix + rawID }

// Retention bounds what an EventLog holds per stream.
type Retention struct {
	MaxAge    time.Duration // events older than this are dropped (0: DefaultRetention's)
	MaxEvents int           // at most this many per stream (0: DefaultRetention's)
}

// DefaultRetention is what serve holds unless told otherwise.
var DefaultRetention = Retention{MaxAge: 10 * time.Minute, MaxEvents: 10_000}

func (r Retention) withDefaults() Retention {
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultRetention.MaxAge
	}
	if r.MaxEvents <= 0 {
		r.MaxEvents = DefaultRetention.MaxEvents
	}
	return r
}

// MemoryLog is an EventLog in memory, for one switchboard process. A
// stream begins at the later of the clock's microsecond and the log's count
// of all events (which starts at the microsecond the log was made): so a
// restarted switchboard's seqs, and another node's for an identity that
// moved there, are past the earlier ones, and a client's old seq answers
// ErrGone; and a stream begun again after it was forgotten starts at least
// where it ended.
type MemoryLog struct {
	ret Retention
	now func() time.Time

	all atomic.Uint64 // the log's base plus every event appended to it

	mu        sync.Mutex
	streams   map[string]*memStream
	lastSweep time.Time
}

var _ EventLog = (*MemoryLog)(nil)

type memStream struct {
	// numbered says its seqs are given by the caller (AppendSeq): it is
	// never forgotten, as a stream begun again would start elsewhere.
	numbered bool
	// continued says it was begun at base, where the identity's stream
	// ended on her earlier owner (Begin): the seqs up to base are that
	// owner's, in the cluster's event log.
	continued bool
	base      uint64
	last      uint64     // the seq of its last event
	entries   []memEntry // the held events, oldest first, the last is last
	created   time.Time  // when it was begun (when it has no events)
}

type memEntry struct {
	Entry
	at time.Time
}

// NewMemoryLog returns a MemoryLog holding what ret allows; now is its
// clock (nil: time.Now).
func NewMemoryLog(ret Retention, now func() time.Time) *MemoryLog {
	if now == nil {
		now = time.Now
	}
	l := &MemoryLog{ret: ret.withDefaults(), now: now, streams: map[string]*memStream{}}
	t := now()
	l.all.Store(uint64(t.UnixMicro()))
	l.lastSweep = t
	return l
}

// stream returns the named stream, begun if it is not held.
func (l *MemoryLog) stream(name string, now time.Time) *memStream {
	s := l.streams[name]
	if s == nil {
		// A stream begins at the later of the log's count and the clock's
		// microsecond. In a cluster an identity's stream begins again on the
		// node that takes it over; its new seqs then start past any seq the
		// earlier node gave out (that node's count stays far behind its
		// clock), so a client's old seq answers ErrGone, not wrong events.
		start := max(l.all.Load(), uint64(now.UnixMicro()))
		l.all.Store(start)
		s = &memStream{last: start, created: now}
		l.streams[name] = s
	}
	return s
}

// Append implements EventLog.
func (l *MemoryLog) Append(name string, payload []byte) (uint64, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	s := l.stream(name, now)
	l.all.Add(1)
	s.last++
	s.entries = append(s.entries, memEntry{Entry: Entry{Seq: s.last, Payload: payload}, at: now})
	s.trim(l.ret, now)
	return s.last, nil
}

// Begin begins a stream that is not held at last, so that its next event
// is last+1 (an identity's stream continued from her earlier owner's); it
// answers false, and does nothing, when the stream is held.
func (l *MemoryLog) Begin(name string, last uint64) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[name] != nil {
		return false
	}
	l.streams[name] = &memStream{continued: true, base: last, last: last, created: now}
	return true
}

// Held says whether the stream is held.
func (l *MemoryLog) Held(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[name] != nil
}

// Continued answers the seq a stream was begun at by Begin, when it was.
func (l *MemoryLog) Continued(name string) (base uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.streams[name]
	if s == nil || !s.continued {
		return 0, false
	}
	return s.base, true
}

// Lasts answers the last seq of each stream held whose name begins with
// prefix, by the rest of its name.
func (l *MemoryLog) Lasts(prefix string) map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]uint64{}
	for name, s := range l.streams {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			out[rest] = s.last
		}
	}
	return out
}

// Restart empties the stream and numbers it from last on: its next event
// is last+1 (AppendSeq). Its seqs are the caller's from then on.
func (l *MemoryLog) Restart(name string, last uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(name, now)
	clear(s.entries)
	*s = memStream{numbered: true, last: last, created: now}
}

// AppendSeq adds an event numbered by the caller to a stream Restart
// numbered: seq must be past the stream's last. When it is not last+1 the
// events held are dropped (a Since before seq answers ErrGone).
func (l *MemoryLog) AppendSeq(name string, seq uint64, payload []byte) error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(name, now)
	switch {
	case !s.numbered:
		return fmt.Errorf("api: stream %s is not numbered by its caller", name)
	case seq <= s.last:
		return fmt.Errorf("api: stream %s: seq %d is not past its last, %d", name, seq, s.last)
	case seq != s.last+1:
		clear(s.entries)
		s.entries = s.entries[:0]
	}
	s.last = seq
	s.entries = append(s.entries, memEntry{Entry: Entry{Seq: seq, Payload: payload}, at: now})
	s.trim(l.ret, now)
	return nil
}

// Since implements EventLog.
func (l *MemoryLog) Since(name string, seq uint64) ([]Entry, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(name, now)
	s.trim(l.ret, now)
	first := s.last + 1 // the first held seq
	if len(s.entries) > 0 {
		first = s.entries[0].Seq
	}
	if seq > s.last || seq+1 < first {
		return nil, ErrGone
	}
	held := s.entries[len(s.entries)-int(s.last-seq):]
	out := make([]Entry, len(held))
	for i := range held {
		out[i] = held[i].Entry
	}
	return out, nil
}

// Last implements EventLog.
func (l *MemoryLog) Last(name string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stream(name, l.now()).last, nil
}

// trim drops the events past the retention, oldest first.
func (s *memStream) trim(r Retention, now time.Time) {
	n := 0
	for n < len(s.entries) && (len(s.entries)-n > r.MaxEvents || now.Sub(s.entries[n].at) > r.MaxAge) {
		s.entries[n] = memEntry{} // let the payload go
		n++
	}
	if n == 0 {
		return
	}
	// The dropped front of the array goes when append next outgrows it.
	s.entries = s.entries[n:]
}

// sweepLocked forgets the streams that have held no event for the
// retention's age, at most every quarter of it.
func (l *MemoryLog) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < l.ret.MaxAge/4 {
		return
	}
	l.lastSweep = now
	for name, s := range l.streams {
		newest := s.created
		if n := len(s.entries); n > 0 {
			newest = s.entries[n-1].at
		}
		if !s.numbered && now.Sub(newest) > l.ret.MaxAge {
			delete(l.streams, name)
		}
	}
}

// Streams counts the streams the log holds.
func (l *MemoryLog) Streams() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.streams)
}
