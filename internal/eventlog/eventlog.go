package eventlog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the log writes on each event.
const (
	SeqHeader      = "Sb-Seq"
	RunStartHeader = "Sb-Run-Start"
)

// Defaults for a zero Config.
const (
	DefaultStream  = "SB_EVENTS"
	DefaultSubject = "sb.events"
	DefaultMaxAge  = 10 * time.Minute
)

// maxAttempts bounds Append's retries after "wrong last sequence"; each
// retry first waits a random time of up to a millisecond per attempt made,
// so that writers on two nodes racing for one identity do not keep
// colliding (CI saw 16 immediate retries lose in a row).
const maxAttempts = 32

var (
	// ErrGone is answered by Since when the stream no longer holds every
	// event after the given sequence.
	ErrGone = errors.New("eventlog: events after that sequence are no longer retained")
	// ErrInvalid is answered for an empty identity or a bad Config.
	ErrInvalid = errors.New("eventlog: invalid")
)

// Config names the stream and its retention.
type Config struct {
	// Stream is the stream's name (DefaultStream when empty); it is
	// created when missing and its limits updated when it exists.
	Stream string
	// Subject is the subjects' prefix (DefaultSubject when empty).
	Subject string
	// MaxAge is how long events are kept (DefaultMaxAge when 0).
	MaxAge time.Duration
	// Duplicates is the window in which a message id deduplicates an
	// append (the server's default, 2 minutes or MaxAge if shorter, when 0).
	Duplicates time.Duration
	// Storage is the stream's storage (file by default).
	Storage jetstream.StorageType
}

// Entry is one event of an identity.
type Entry struct {
	Identity string
	// Seq is the identity's sequence (Sb-Seq).
	Seq uint64
	// StreamSeq is the event's sequence in the whole stream.
	StreamSeq uint64
	// RunStart says the identity had no retained event before this one.
	RunStart bool
	Time     time.Time
	Payload  []byte
	// Header holds the headers given with WithHeader (and the log's own).
	Header nats.Header
}

// cursor is what Append knows of an identity's last event. mu serialises
// this process's appends to the identity.
type cursor struct {
	mu        sync.Mutex
	known     bool
	seq       uint64
	streamSeq uint64
}

// Log is the event log on one stream. It is safe for concurrent use.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config

	mu      sync.Mutex
	cursors map[string]*cursor
}

// Open creates or updates the stream and answers the log on it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Log, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.FileStorage
	}
	if cfg.MaxAge < 0 || cfg.Duplicates < 0 || strings.ContainsAny(cfg.Subject, "*> \t\r\n") ||
		strings.HasPrefix(cfg.Subject, ".") || strings.HasSuffix(cfg.Subject, ".") {
		return nil, fmt.Errorf("eventlog: open: MaxAge %v, Duplicates %v, Subject %q: %w", cfg.MaxAge, cfg.Duplicates, cfg.Subject, ErrInvalid)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Switchboard events, per identity",
		Subjects:    []string{cfg.Subject + ".*"},
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Storage:     cfg.Storage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: open stream %s: %w", cfg.Stream, err)
	}
	return &Log{js: js, stream: stream, cfg: cfg, cursors: map[string]*cursor{}}, nil
}

// Subject is the subject of identity's events.
func (l *Log) Subject(identity string) string {
	return l.cfg.Subject + "." + base64.RawURLEncoding.EncodeToString([]byte(identity))
}

// Stream is the stream's name.
func (l *Log) Stream() string { return l.cfg.Stream }

func (l *Log) identityOf(subject string) (string, error) {
	token, ok := strings.CutPrefix(subject, l.cfg.Subject+".")
	if !ok {
		return "", fmt.Errorf("eventlog: subject %q is not under %s", subject, l.cfg.Subject)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("eventlog: subject %q: %w", subject, err)
	}
	return string(b), nil
}

// AppendOption changes one Append.
type AppendOption func(*appendOpts)

type appendOpts struct {
	msgID  string
	header nats.Header
}

// WithHeader sends a header of the caller's with the event; readers find
// it in Entry.Header. The log's own headers (Sb-Seq, Sb-Run-Start,
// Nats-*) cannot be set.
func WithHeader(key, value string) AppendOption {
	return func(o *appendOpts) {
		if o.header == nil {
			o.header = nats.Header{}
		}
		o.header.Set(key, value)
	}
}

// WithMsgID deduplicates the append by id (Nats-Msg-Id) within the
// stream's duplicate window: an append repeated with the same id writes
// nothing and answers the first one's sequence.
func WithMsgID(id string) AppendOption {
	return func(o *appendOpts) { o.msgID = id }
}

// Append adds payload to identity's events and answers its sequence. Give
// ctx a deadline: a request sent as the server goes away gets no reply. An
// append that failed may still have been stored; retry it with the same
// WithMsgID to have it stored once.
func (l *Log) Append(ctx context.Context, identity string, payload []byte, opts ...AppendOption) (uint64, error) {
	if identity == "" {
		return 0, fmt.Errorf("eventlog: append: empty identity: %w", ErrInvalid)
	}
	var o appendOpts
	for _, opt := range opts {
		opt(&o)
	}
	subject := l.Subject(identity)
	c := l.cursorOf(identity)
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := range maxAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("eventlog: append to %q: %w", identity, ctx.Err())
			case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))):
			}
		}
		if !c.known {
			if err := l.load(ctx, c, subject); err != nil {
				return 0, fmt.Errorf("eventlog: append to %q: %w", identity, err)
			}
		}
		msg := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: payload}
		for k, v := range o.header {
			if k != SeqHeader && k != RunStartHeader && !strings.HasPrefix(k, "Nats-") {
				msg.Header[k] = v
			}
		}
		seq := c.seq + 1
		msg.Header.Set(SeqHeader, strconv.FormatUint(seq, 10))
		if c.streamSeq == 0 {
			msg.Header.Set(RunStartHeader, "true")
		}
		pubOpts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(c.streamSeq)}
		if o.msgID != "" {
			pubOpts = append(pubOpts, jetstream.WithMsgID(o.msgID))
		}
		ack, err := l.js.PublishMsg(ctx, msg, pubOpts...)
		if err != nil {
			c.known = false // unknown whether it was stored: reread next time
			if wrongLastSeq(err) {
				continue
			}
			return 0, fmt.Errorf("eventlog: append to %q: %w", identity, err)
		}
		if ack.Duplicate {
			// The first append with this id was stored: answer its sequence.
			c.known = false
			m, err := l.stream.GetMsg(ctx, ack.Sequence)
			if err != nil {
				return 0, fmt.Errorf("eventlog: append to %q: read the duplicate's original: %w", identity, err)
			}
			e, err := l.entryOf(m.Subject, m.Header, m.Sequence, m.Time, m.Data)
			if err != nil {
				return 0, fmt.Errorf("eventlog: append to %q: %w", identity, err)
			}
			return e.Seq, nil
		}
		c.seq, c.streamSeq = seq, ack.Sequence
		return seq, nil
	}
	return 0, fmt.Errorf("eventlog: append to %q: other writers kept winning (%d attempts)", identity, maxAttempts)
}

func (l *Log) cursorOf(identity string) *cursor {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cursors[identity]
	if !ok {
		c = &cursor{}
		l.cursors[identity] = c
	}
	return c
}

// load reads the identity's last event into c; with none, c starts a new
// run after the stream's last sequence (see the package doc).
func (l *Log) load(ctx context.Context, c *cursor, subject string) error {
	m, err := l.stream.GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil:
		e, err := l.entryOf(m.Subject, m.Header, m.Sequence, m.Time, m.Data)
		if err != nil {
			return err
		}
		c.seq, c.streamSeq = e.Seq, e.StreamSeq
	case errors.Is(err, jetstream.ErrMsgNotFound):
		info, err := l.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("read stream state: %w", err)
		}
		c.seq, c.streamSeq = info.State.LastSeq, 0
	default:
		return fmt.Errorf("read last event: %w", err)
	}
	c.known = true
	return nil
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (l *Log) entryOf(subject string, h nats.Header, streamSeq uint64, t time.Time, data []byte) (Entry, error) {
	id, err := l.identityOf(subject)
	if err != nil {
		return Entry{}, err
	}
	seq, err := strconv.ParseUint(h.Get(SeqHeader), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("eventlog: event %d on %s has no %s: %w", streamSeq, subject, SeqHeader, err)
	}
	return Entry{
		Identity: id, Seq: seq, StreamSeq: streamSeq, Time: t, Payload: data,
		RunStart: h.Get(RunStartHeader) == "true", Header: h,
	}, nil
}

// Last answers identity's last retained event, or ok false when the stream
// holds none.
func (l *Log) Last(ctx context.Context, identity string) (e Entry, ok bool, err error) {
	m, err := l.stream.GetLastMsgForSubject(ctx, l.Subject(identity))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("eventlog: last of %q: %w", identity, err)
	}
	e, err = l.entryOf(m.Subject, m.Header, m.Sequence, m.Time, m.Data)
	if err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// Since answers identity's events after seq, oldest first. Seq 0 asks for
// all of them. It answers ErrGone when the stream no longer holds every
// event after seq: some aged out, or seq is not a place in the identity's
// current run (from a run that has expired).
//
// It reads one event per request (direct get, next by subject), from the
// identity's oldest retained event: cheap for a window of minutes.
func (l *Log) Since(ctx context.Context, identity string, seq uint64) ([]Entry, error) {
	last, ok, err := l.Last(ctx, identity)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok && seq == 0:
		return nil, nil
	case !ok || seq > last.Seq:
		return nil, fmt.Errorf("eventlog: %q since %d: %w", identity, seq, ErrGone)
	case seq == last.Seq:
		return nil, nil
	}
	subject := l.Subject(identity)
	var out []Entry
	first := true
	for next := uint64(1); ; {
		m, err := l.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			// ErrMsgNotFound here means the rest aged out while we read.
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, fmt.Errorf("eventlog: %q since %d: %w", identity, seq, ErrGone)
			}
			return nil, fmt.Errorf("eventlog: %q since %d: %w", identity, seq, err)
		}
		e, err := l.entryOf(m.Subject, m.Header, m.Sequence, m.Time, m.Data)
		if err != nil {
			return nil, err
		}
		if first {
			first = false
			// Seq 0 is met by the start of the current run; any other seq
			// by the event just after it.
			if e.Seq > seq+1 && !(seq == 0 && e.RunStart) {
				return nil, fmt.Errorf("eventlog: %q since %d: oldest retained is %d: %w", identity, seq, e.Seq, ErrGone)
			}
		}
		if e.Seq > seq {
			out = append(out, e)
		}
		if e.StreamSeq >= last.StreamSeq {
			return out, nil
		}
		next = e.StreamSeq + 1
	}
}
