package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// CallFinder finds a live call as a principal may see it (the
// switchboard's GetCall): an agent its own calls, a supervisor every call;
// else an *calls.Error with CodeCallNotFound.
type CallFinder interface {
	GetCall(ctx context.Context, p calls.Principal, id string) (calls.Call, error)
}

// CallsFunc is a CallFinder as a function: a switchboard made after the
// service (whose publisher the service wraps) is reached through one.
type CallsFunc func(ctx context.Context, p calls.Principal, id string) (calls.Call, error)

// GetCall calls f.
func (f CallsFunc) GetCall(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
	return f(ctx, p, id)
}

// Tapper is the media plane's hook (the mixer's SetTap).
type Tapper interface {
	SetTap(callID string, t audio.Tap)
}

// Config is what a Service needs.
type Config struct {
	// Dir is the recordings' directory (created if missing).
	Dir string
	// Node is this node's id in a cluster, kept with each recording ("" on
	// one node).
	Node      string
	Calls     CallFinder
	Media     Tapper
	Store     calls.Recordings
	Publisher calls.Publisher
	NewID     func() string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retention, when positive, is how long a stopped recording's file is
	// kept: older files are deleted (their metadata stays, with deletedAt)
	// every SweepEvery (default Retention/10, at most an hour, at least a
	// second).
	Retention  time.Duration
	SweepEvery time.Duration
	Logger     *slog.Logger
}

// Service records calls on demand: it owns the live recordings, their
// writers, the goroutine that stops the recordings of calls that ended,
// and the retention sweeper. New starts them, Close stops them.
type Service struct {
	cfg Config
	log *slog.Logger

	// opMu serialises the operations, so that each recording's changes,
	// its metadata and its events keep one order.
	opMu sync.Mutex

	mu    sync.Mutex
	live  map[string]*active // by call id; written under opMu and mu
	ended []string           // calls that ended while recorded, for the stopper
	wake  chan struct{}
	// parties is every listed call on this node, by server call id
	// (conversation), then call id: its agent. The publisher follows
	// callsUpdated to keep it, so that a recorded call's other parties can
	// be told.
	parties map[string]map[string]string

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// active is a recording in progress.
type active struct {
	rec          calls.Recording
	r            *recorder
	serverCallID string
	// others are the other parties' calls (call id: agent) of the
	// conversation when it was last seen, who are told of the recording
	// too.
	others map[string]string
}

// New recovers what a crash left (files whose header is short, metadata
// not stopped) and starts the service's goroutines.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = min(max(cfg.Retention/10, time.Second), time.Hour)
	}
	if cfg.Dir == "" || cfg.Calls == nil || cfg.Media == nil || cfg.Store == nil || cfg.Publisher == nil || cfg.NewID == nil {
		return nil, errors.New("recording: Dir, Calls, Media, Store, Publisher and NewID are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "recording"),
		live: map[string]*active{}, wake: make(chan struct{}, 1), parties: map[string]map[string]string{}}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	run, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.stopper(run) }()
	if cfg.Retention > 0 {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.sweeper(run) }()
	}
	return s, nil
}

// recover ends the recordings this node left unfinished: it makes each
// file readable up to its last flush and marks the recording stopped at
// the file's last change.
func (s *Service) recover(ctx context.Context) error {
	left, err := s.cfg.Store.FindRecordings(ctx, calls.RecordingFilter{Node: s.cfg.Node, Unfinished: true})
	if err != nil {
		return fmt.Errorf("recording: find unfinished recordings: %w", err)
	}
	for _, rec := range left {
		path := s.path(rec)
		stopped := s.cfg.Now()
		if st, err := os.Stat(path); err == nil {
			stopped = st.ModTime()
		}
		d, err := repairWAV(path)
		if err != nil {
			s.log.Warn("a recording left by a crash could not be repaired", "call_id", rec.CallID, "file", rec.File, "err", err)
		}
		rec.DurationMs = d.Milliseconds()
		rec.State, rec.StoppedAt, rec.StoppedBy = calls.RecordingStopped, &stopped, &calls.Actor{Kind: calls.ActorSystem}
		for i := range rec.Paused {
			if rec.Paused[i].End == nil {
				rec.Paused[i].End = &stopped
			}
		}
		if err := s.cfg.Store.PutRecording(ctx, rec); err != nil {
			return fmt.Errorf("recording: finish recording %s: %w", rec.ID, err)
		}
		s.log.Info("finished a recording a crash left", "call_id", rec.CallID, "file", rec.File, "duration", d)
	}
	return nil
}

// Close stops every live recording (their files complete) and the
// service's goroutines.
func (s *Service) Close(ctx context.Context) error {
	s.stop()
	s.wg.Wait()
	s.opMu.Lock()
	defer s.opMu.Unlock()
	var errs []error
	for id := range s.snapshotLive() {
		if _, err := s.stopLocked(ctx, id, calls.Actor{Kind: calls.ActorSystem}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) snapshotLive() map[string]*active {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*active, len(s.live))
	for k, v := range s.live {
		out[k] = v
	}
	return out
}

// Publisher wraps next so that the service hears the calls that end (and
// stops their recordings) and who is in each conversation (to tell a
// recorded call's other parties). It never blocks.
func (s *Service) Publisher(next calls.Publisher) calls.Publisher {
	return publisher{s: s, next: next}
}

type publisher struct {
	s    *Service
	next calls.Publisher
}

func (p publisher) Publish(ev calls.Event) {
	p.next.Publish(ev)
	if ev.Type == calls.EventCallsUpdated {
		if d, ok := ev.Data.(calls.CallsUpdatedData); ok {
			p.s.follow(d)
		}
		return
	}
	if ev.Type != calls.EventCallEnded || ev.CallID == "" {
		return
	}
	p.s.mu.Lock()
	_, recorded := p.s.live[ev.CallID]
	if recorded {
		p.s.ended = append(p.s.ended, ev.CallID)
	}
	p.s.mu.Unlock()
	if recorded {
		select {
		case p.s.wake <- struct{}{}:
		default:
		}
	}
}

// follow keeps the conversations' parties as callsUpdated tells them.
func (s *Service) follow(d calls.CallsUpdatedData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range d.Added {
		m := s.parties[c.ServerCallID]
		if m == nil {
			m = map[string]string{}
			s.parties[c.ServerCallID] = m
		}
		m[c.ID] = c.AgentID
	}
	for _, c := range d.Removed {
		if m := s.parties[c.ServerCallID]; m != nil {
			delete(m, c.ID)
			if len(m) == 0 {
				delete(s.parties, c.ServerCallID)
			}
		}
	}
}

// stopper stops the recordings of calls that ended, until ctx ends.
func (s *Service) stopper(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		ended := s.ended
		s.ended = nil
		s.mu.Unlock()
		for _, id := range ended {
			s.opMu.Lock()
			if _, err := s.stopLocked(ctx, id, calls.Actor{Kind: calls.ActorSystem}); err != nil && !isNoRecording(err) {
				s.log.Warn("stopping the recording of a call that ended", "call_id", id, "err", err)
			}
			s.opMu.Unlock()
		}
	}
}

// authorize finds the live call p may record: its agent's own call, or
// any call for a supervisor. A caller (an outside party) may not.
func (s *Service) authorize(ctx context.Context, op string, p calls.Principal, callID string) (calls.Call, calls.Actor, error) {
	if p.Role == calls.RoleCaller {
		return calls.Call{}, calls.Actor{}, &calls.Error{Code: calls.CodeForbidden, Op: op,
			Message: "only the call's agent and supervisors may record a call"}
	}
	c, err := s.cfg.Calls.GetCall(ctx, p, callID)
	if err != nil {
		return calls.Call{}, calls.Actor{}, fmt.Errorf("%s: %w", op, err)
	}
	actor := calls.Actor{Kind: calls.ActorAgent, RawID: p.Identifier.RawID()}
	if actor.RawID != c.AgentID {
		actor.Kind, actor.DisplayName = calls.ActorSupervisor, p.DisplayName
	}
	return c, actor, nil
}

// Start starts recording the call: 409 invalid_state when it is recorded
// already.
func (s *Service) Start(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error) {
	const op = "start recording"
	c, actor, err := s.authorize(ctx, op, p, callID)
	if err != nil {
		return calls.Recording{}, err
	}
	return s.StartFor(ctx, c, actor)
}

// StartFor starts recording the call c on behalf of by, without asking
// who may: the hook for an "always record" queue (by is then the
// switchboard, calls.ActorSystem).
func (s *Service) StartFor(ctx context.Context, c calls.Call, by calls.Actor) (calls.Recording, error) {
	return s.start(ctx, c, by, false)
}

// StartVoicemail records the queue caller's call c, gone to voicemail,
// as the switchboard: her microphone on the right, the left silent (no
// agent; not what she hears, such as the greeting). Its AgentID is the
// caller's: supervisors may fetch it, no agent may. It stops as any
// recording does, when the call ends.
func (s *Service) StartVoicemail(ctx context.Context, c calls.Call) (calls.Recording, error) {
	return s.start(ctx, c, calls.Actor{Kind: calls.ActorSystem}, true)
}

func (s *Service) start(ctx context.Context, c calls.Call, by calls.Actor, voicemail bool) (calls.Recording, error) {
	const op = "start recording"
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	_, busy := s.live[c.ID]
	s.mu.Unlock()
	if busy {
		return calls.Recording{}, &calls.Error{Code: calls.CodeInvalidState, Op: op, Message: "the call is being recorded already"}
	}
	id := s.cfg.NewID()
	rec := calls.Recording{ID: id, CallID: c.ID, AgentID: c.AgentID, State: calls.RecordingActive,
		File: id + ".wav", Node: s.cfg.Node, StartedBy: by, StartedAt: s.cfg.Now(), Paused: []calls.PausedSpan{}}
	w, err := createWAV(s.path(rec))
	if err != nil {
		return calls.Recording{}, &calls.Error{Code: calls.CodeInternal, Op: op, Message: "the recording's file could not be created", Err: err}
	}
	if err := s.cfg.Store.PutRecording(ctx, rec); err != nil {
		_ = w.close()
		_ = os.Remove(w.f.Name())
		return calls.Recording{}, fmt.Errorf("%s: %w", op, err)
	}
	a := &active{rec: rec, r: newRecorder(w, s.log.With("call_id", c.ID, "recording_id", id)), serverCallID: c.ServerCallID}
	a.r.voicemail = voicemail // before the mixer's clock taps it
	s.mu.Lock()
	s.live[c.ID] = a
	s.mu.Unlock()
	s.cfg.Media.SetTap(c.ID, a.r)
	s.publish(a, by)
	s.log.Info("recording started", "call_id", c.ID, "recording_id", id, "by", by.RawID)
	return rec.Clone(), nil
}

// Pause makes the recording silent until Resume: 409 invalid_state unless
// it is recording.
func (s *Service) Pause(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error) {
	return s.change(ctx, "pause recording", p, callID, calls.RecordingActive, func(a *active, now time.Time, by calls.Actor) {
		a.r.setPaused(true)
		a.rec.State = calls.RecordingPaused
		a.rec.Paused = append(a.rec.Paused, calls.PausedSpan{Start: now, PausedBy: &by})
	})
}

// Resume records again after Pause: 409 invalid_state unless paused.
func (s *Service) Resume(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error) {
	return s.change(ctx, "resume recording", p, callID, calls.RecordingPaused, func(a *active, now time.Time, by calls.Actor) {
		a.r.setPaused(false)
		a.rec.State = calls.RecordingActive
		if n := len(a.rec.Paused); n > 0 {
			a.rec.Paused[n-1].End, a.rec.Paused[n-1].ResumedBy = &now, &by
		}
	})
}

// change applies one pause or resume to the call's live recording, which
// must be in state from.
func (s *Service) change(ctx context.Context, op string, p calls.Principal, callID string, from calls.RecordingState,
	apply func(a *active, now time.Time, by calls.Actor)) (calls.Recording, error) {
	_, actor, err := s.authorize(ctx, op, p, callID)
	if err != nil {
		return calls.Recording{}, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	a := s.live[callID]
	s.mu.Unlock()
	if a == nil {
		return calls.Recording{}, errNoRecording(op)
	}
	if a.rec.State != from {
		return calls.Recording{}, &calls.Error{Code: calls.CodeInvalidState, Op: op,
			Message: fmt.Sprintf("the recording is %s", a.rec.State)}
	}
	apply(a, s.cfg.Now(), actor)
	if err := s.cfg.Store.PutRecording(ctx, a.rec.Clone()); err != nil {
		return calls.Recording{}, fmt.Errorf("%s: %w", op, err)
	}
	s.publish(a, actor)
	return a.rec.Clone(), nil
}

// Stop ends the call's recording and completes its file: 409
// invalid_state when it is not recorded.
func (s *Service) Stop(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error) {
	_, actor, err := s.authorize(ctx, "stop recording", p, callID)
	if err != nil {
		return calls.Recording{}, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.stopLocked(ctx, callID, actor)
}

func (s *Service) stopLocked(ctx context.Context, callID string, by calls.Actor) (calls.Recording, error) {
	const op = "stop recording"
	s.mu.Lock()
	a := s.live[callID]
	s.mu.Unlock()
	if a == nil {
		return calls.Recording{}, errNoRecording(op)
	}
	s.cfg.Media.SetTap(callID, nil)
	n, werr := a.r.stop()
	s.mu.Lock()
	delete(s.live, callID)
	s.mu.Unlock()
	now := s.cfg.Now()
	a.rec.State, a.rec.StoppedAt, a.rec.DurationMs = calls.RecordingStopped, &now, durationOf(n).Milliseconds()
	a.rec.StoppedBy = &by
	if k := len(a.rec.Paused); k > 0 && a.rec.Paused[k-1].End == nil {
		a.rec.Paused[k-1].End = &now
	}
	if werr != nil {
		s.log.Error("writing a recording failed", "call_id", callID, "recording_id", a.rec.ID, "err", werr)
	}
	err := s.cfg.Store.PutRecording(context.WithoutCancel(ctx), a.rec.Clone())
	s.publish(a, by)
	s.log.Info("recording stopped", "call_id", callID, "recording_id", a.rec.ID, "duration_ms", a.rec.DurationMs)
	if err != nil {
		return calls.Recording{}, fmt.Errorf("%s: %w", op, err)
	}
	return a.rec.Clone(), nil
}

func errNoRecording(op string) error {
	return &calls.Error{Code: calls.CodeInvalidState, Op: op, Message: "the call is not being recorded"}
}

func isNoRecording(err error) bool {
	var e *calls.Error
	return errors.As(err, &e) && e.Code == calls.CodeInvalidState
}

// publish tells the recorded call's agent (and supervisors) where the
// recording stands, and the other parties of its conversation on this
// node, each on its own call (so that a customer's console can show that
// the call is recorded too).
func (s *Service) publish(a *active, by calls.Actor) {
	now := s.cfg.Now()
	s.cfg.Publisher.Publish(calls.Event{Type: calls.EventRecordingStateChanged, At: now,
		AgentID: a.rec.AgentID, CallID: a.rec.CallID, Actor: &by, Data: a.rec.Clone(), Supervised: true})
	s.mu.Lock()
	if parties, ok := s.parties[a.serverCallID]; ok {
		a.others = make(map[string]string, len(parties))
		for id, agent := range parties {
			if id != a.rec.CallID {
				a.others[id] = agent
			}
		}
	}
	others := maps.Clone(a.others)
	s.mu.Unlock()
	for id, agent := range others {
		s.cfg.Publisher.Publish(calls.Event{Type: calls.EventRecordingStateChanged, At: now,
			AgentID: agent, CallID: id, Data: calls.RecordingNotice{State: a.rec.State}})
	}
}

// Recordings answers the call's recordings, oldest first, without asking
// who may see them (the history's handler did).
func (s *Service) Recordings(ctx context.Context, callID string) ([]calls.Recording, error) {
	recs, err := s.cfg.Store.FindRecordings(ctx, calls.RecordingFilter{CallID: callID})
	if err != nil {
		return nil, fmt.Errorf("find recordings: %w", err)
	}
	return recs, nil
}

// Local says whether this node can read the file of the call's
// recording (recordingID, or "" for the latest), whoever asks; if not, it
// answers the node that wrote it ("" when none is known, or this one).
func (s *Service) Local(ctx context.Context, callID, recordingID string) (here bool, node string) {
	recs, err := s.Recordings(ctx, callID)
	if err != nil {
		return false, ""
	}
	recs = slices.DeleteFunc(recs, func(r calls.Recording) bool { return recordingID != "" && r.ID != recordingID })
	if len(recs) == 0 {
		return false, ""
	}
	rec := recs[len(recs)-1]
	if _, err := os.Stat(s.path(rec)); err == nil {
		return true, ""
	}
	if rec.Node == s.cfg.Node || rec.DeletedAt != nil {
		return false, ""
	}
	return false, rec.Node
}

// Open opens the call's recording for p to read: recordingID names one
// ("" the latest). The call's agent and supervisors may; a caller gets
// 403, another agent 404 call_not_found; a call without a recording (or
// whose file retention deleted) 404 not_found. The caller closes the file.
func (s *Service) Open(ctx context.Context, p calls.Principal, callID, recordingID string) (*os.File, calls.Recording, error) {
	const op = "open recording"
	if p.Role == calls.RoleCaller {
		return nil, calls.Recording{}, &calls.Error{Code: calls.CodeForbidden, Op: op,
			Message: "only the call's agent and supervisors may hear its recording"}
	}
	recs, err := s.Recordings(ctx, callID)
	if err != nil {
		return nil, calls.Recording{}, fmt.Errorf("%s: %w", op, err)
	}
	self := p.Identifier.RawID()
	recs = slices.DeleteFunc(recs, func(r calls.Recording) bool {
		return p.Role != calls.RoleSupervisor && r.AgentID != self || recordingID != "" && r.ID != recordingID
	})
	if len(recs) == 0 {
		if p.Role != calls.RoleSupervisor {
			return nil, calls.Recording{}, &calls.Error{Code: calls.CodeCallNotFound, Op: op, Message: fmt.Sprintf("no call %q", callID)}
		}
		return nil, calls.Recording{}, &calls.Error{Code: calls.CodeNotFound, Op: op, Message: "the call has no such recording"}
	}
	rec := recs[len(recs)-1]
	if rec.DeletedAt != nil {
		return nil, calls.Recording{}, &calls.Error{Code: calls.CodeNotFound, Op: op, Message: "the recording was deleted by the retention setting"}
	}
	f, err := os.Open(s.path(rec))
	if errors.Is(err, os.ErrNotExist) {
		msg := "the recording's file is not on this node"
		if rec.Node != "" {
			msg = fmt.Sprintf("the recording's file is on node %s", rec.Node)
		}
		return nil, calls.Recording{}, &calls.Error{Code: calls.CodeNotFound, Op: op, Message: msg, Err: err}
	}
	if err != nil {
		return nil, calls.Recording{}, &calls.Error{Code: calls.CodeInternal, Op: op, Message: "the recording could not be read", Err: err}
	}
	return f, rec, nil
}

// path is the recording's file in the recordings directory (its name
// only: a name read back from the store never leads elsewhere).
func (s *Service) path(rec calls.Recording) string {
	return filepath.Join(s.cfg.Dir, filepath.Base(rec.File))
}
