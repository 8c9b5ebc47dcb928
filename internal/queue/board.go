package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/routing"
)

// Board is the cluster's view of the agents queues may offer calls to.
// Each node publishes the offer state of the agents connected to it (her
// chosen status, her live calls, since when she is idle) in a JetStream
// key-value bucket, on every change it is told of (Touch) and every
// Resync; every node watches the bucket into memory, so that asking it
// costs no round trip. Availability and Status answer an engine's seams
// over it: an agent connected to another node is offered as one here is,
// and her misses and wrap-up are sent to that node, which alone sets her
// status.
type Board struct {
	cfg  BoardConfig
	kv   jetstream.KeyValue
	sub  *nats.Subscription
	kick chan struct{}

	syncMu sync.Mutex // one sync at a time: puts in the order of the states read

	mu        sync.Mutex
	seen      map[string]boardEntry // by agent: every node's entries, as watched
	published map[string]boardEntry // by agent: what this node put last
	dirty     map[string]bool
	live      map[string]bool // the other nodes in the cluster, as Peers said last
	closed    bool
	wake      func(agent string) // told when another node's agent may have become offerable
	misses    map[string]int     // by agent connected here: offers rung out in a row, every node's
}

// AgentState is an agent's offer state as the node she is connected to
// publishes it.
type AgentState struct {
	Agent     string         `json:"agent"`
	Node      string         `json:"node"`
	Status    routing.Status `json:"status"` // chosen: Available, Away or WrapUp
	Calls     int            `json:"calls"`  // live calls
	IdleSince time.Time      `json:"idleSince"`
}

type boardEntry struct {
	st  AgentState
	rev uint64
}

// AgentSource is what a node knows of the agents connected to it:
// calls.Switchboard.
type AgentSource interface {
	OfferState(agent string) calls.OfferState
	OfferAgents() []string
}

// BoardConfig configures a Board.
type BoardConfig struct {
	JetStream jetstream.JetStream
	Conn      *nats.Conn
	// Bucket names the key-value bucket (created when missing).
	Bucket  string
	Storage jetstream.StorageType
	// Subject is where nodes send each other status changes:
	// Subject.<node>.
	Subject string
	Node    string // this node's id
	// Peers answers the other nodes in the cluster now (cluster.Node.Peers):
	// the entries of others are not believed.
	Peers  func() []string
	Source AgentSource
	// Status sets the status of the agents connected here, for the
	// requests of other nodes.
	Status AgentStatus
	// Calls, optional, resolves and records the calls of the agents
	// connected here, for the queue calls of other nodes they answered.
	Calls AgentCalls
	// Resync is how often every entry is published again and Peers is
	// asked (default 1 s).
	Resync time.Duration
	Logger *slog.Logger
}

// OpenBoard opens the bucket and serves the status requests of other
// nodes; Run keeps it current, Close withdraws this node's entries.
func OpenBoard(ctx context.Context, cfg BoardConfig) (*Board, error) {
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := cfg.JetStream.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "Switchboard queues: the offer state of each connected agent", Storage: cfg.Storage, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open bucket %s: %w", cfg.Bucket, err)
	}
	b := &Board{cfg: cfg, kv: kv, kick: make(chan struct{}, 1), seen: map[string]boardEntry{},
		published: map[string]boardEntry{}, dirty: map[string]bool{}, live: map[string]bool{}, misses: map[string]int{}}
	b.refreshPeers()
	if err := b.Drop(ctx, cfg.Node); err != nil { // this node's earlier run's
		cfg.Logger.Warn("queue: drop the agents of this node's earlier run", "err", err)
	}
	b.sub, err = cfg.Conn.Subscribe(cfg.Subject+"."+cfg.Node, b.serve)
	if err != nil {
		return nil, fmt.Errorf("queue: serve status requests: %w", err)
	}
	return b, nil
}

// Touch says that the agent's offer state may have changed: it is
// published again soon. It never blocks.
func (b *Board) Touch(agent string) {
	if agent == "" {
		return
	}
	b.mu.Lock()
	b.dirty[agent] = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Run watches the bucket and publishes this node's agents until ctx
// ends.
func (b *Board) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { b.watch(ctx) })
	t := time.NewTicker(b.cfg.Resync)
	defer t.Stop()
	b.resync(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			b.refreshPeers()
			b.resync(ctx)
		case <-b.kick:
			b.mu.Lock()
			agents := make([]string, 0, len(b.dirty))
			for a := range b.dirty {
				agents = append(agents, a)
			}
			clear(b.dirty)
			b.mu.Unlock()
			for _, a := range agents {
				b.sync(ctx, a)
			}
		}
	}
}

// watch follows the bucket into seen, again after an error, until ctx
// ends.
func (b *Board) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := b.kv.WatchAll(ctx)
		if err != nil {
			b.cfg.Logger.Warn("queue: watch the agents' bucket", "err", err)
		} else {
			b.follow(ctx, w)
			_ = w.Stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// follow takes w's changes until ctx ends or w stops.
func (b *Board) follow(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil { // nil: the values there were are in
				b.take(e)
			}
		}
	}
}

// OnOfferable sets what is told, with her rawId, when an agent of another
// node may have become offerable (her entry changed and says Available):
// the engine's WakeFor, so that a waiting call here is offered to her at
// once rather than at the engine's next tick, after a look at her alone.
// f must be cheap and never block; set it before Run.
func (b *Board) OnOfferable(f func(agent string)) {
	b.mu.Lock()
	b.wake = f
	b.mu.Unlock()
}

// take records one watched change, and tells OnOfferable's f when it
// made an agent of another node Available or freed one of her calls.
func (b *Board) take(e jetstream.KeyValueEntry) {
	if wake, agent := b.record(e); wake != nil {
		wake(agent)
	}
}

// record records one watched change; it answers the wake to call, and
// for whom, when the change may make an agent of another node offerable.
func (b *Board) record(e jetstream.KeyValueEntry) (func(string), string) {
	raw, err := base64.RawURLEncoding.DecodeString(e.Key())
	if err != nil {
		return nil, ""
	}
	agent := string(raw)
	b.mu.Lock()
	defer b.mu.Unlock()
	old, had := b.seen[agent]
	if had && old.rev > e.Revision() {
		return nil, ""
	}
	// Ours was removed or replaced (she moved to another node): it is no
	// longer ours to withdraw, and is put again if she is back here.
	if p, ok := b.published[agent]; ok && e.Revision() > p.rev {
		delete(b.published, agent)
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(b.seen, agent)
		return nil, ""
	}
	var st AgentState
	if json.Unmarshal(e.Value(), &st) != nil {
		return nil, ""
	}
	b.seen[agent] = boardEntry{st: st, rev: e.Revision()}
	if st.Node == b.cfg.Node || st.Status != routing.Available {
		return nil, "" // this node's agents wake the engine through the switchboard
	}
	if had && old.st.Node == st.Node && old.st.Status == routing.Available && old.st.Calls <= st.Calls {
		return nil, "" // no freer than she was
	}
	return b.wake, agent
}

func (b *Board) refreshPeers() {
	live := map[string]bool{}
	if b.cfg.Peers != nil {
		for _, p := range b.cfg.Peers() {
			live[p] = true
		}
	}
	b.mu.Lock()
	b.live = live
	b.mu.Unlock()
}

// resync publishes every agent connected here and withdraws those no
// longer.
func (b *Board) resync(ctx context.Context) {
	agents := map[string]bool{}
	for _, a := range b.cfg.Source.OfferAgents() {
		agents[a] = true
	}
	b.mu.Lock()
	for a := range b.published {
		agents[a] = true
	}
	b.mu.Unlock()
	for a := range agents {
		b.sync(ctx, a)
	}
}

// sync publishes the agent's state when it changed since this node put
// it last; an agent no longer connected here is withdrawn. It answers the
// revision of her entry after it (0: none, or not this node's).
func (b *Board) sync(ctx context.Context, agent string) uint64 {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	os := b.cfg.Source.OfferState(agent)
	b.mu.Lock()
	last, had := b.published[agent]
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0
	}
	if !os.Connected {
		if had {
			b.withdraw(ctx, agent)
		}
		return 0
	}
	st := AgentState{Agent: agent, Node: b.cfg.Node, Status: os.Chosen, Calls: os.LiveCalls, IdleSince: os.IdleSince.UTC()}
	if had && last.st == st {
		return last.rev
	}
	v, err := json.Marshal(st)
	if err != nil {
		return 0
	}
	rev, err := b.kv.Put(ctx, enc(agent), v)
	if err != nil {
		b.cfg.Logger.Warn("queue: publish an agent's offer state", "agent", agent, "err", err)
		return 0
	}
	b.mu.Lock()
	b.published[agent] = boardEntry{st: st, rev: rev}
	b.mu.Unlock()
	return rev
}

// withdraw removes the agent's entry when it is still this node's. Under
// syncMu, or once Run returned.
func (b *Board) withdraw(ctx context.Context, agent string) {
	b.mu.Lock()
	delete(b.published, agent)
	b.mu.Unlock()
	e, err := b.kv.Get(ctx, enc(agent))
	if err != nil {
		return // gone already, or out of reach: others drop it with this node
	}
	var st AgentState
	if json.Unmarshal(e.Value(), &st) != nil || st.Node != b.cfg.Node {
		return // she is another node's now
	}
	if err := b.kv.Delete(ctx, enc(agent), jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		b.cfg.Logger.Debug("queue: withdraw an agent's offer state", "agent", agent, "err", err)
	}
}

// Close stops serving requests and withdraws this node's entries (the
// node is stopping); call it after Run returned.
func (b *Board) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	agents := make([]string, 0, len(b.published))
	for a := range b.published {
		agents = append(agents, a)
	}
	b.mu.Unlock()
	err := b.sub.Unsubscribe()
	for _, a := range agents {
		b.withdraw(ctx, a)
	}
	return err
}

// Drop removes the entries node put (it is gone, or this node's earlier
// run), unless replaced since.
func (b *Board) Drop(ctx context.Context, node string) error {
	l, err := b.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("queue: list the agents' bucket: %w", err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	var errs []error
	for _, k := range keys {
		e, err := b.kv.Get(ctx, k)
		if err != nil {
			continue // removed meanwhile
		}
		var st AgentState
		if json.Unmarshal(e.Value(), &st) != nil || st.Node != node {
			continue
		}
		if err := b.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) &&
			!errors.Is(err, jetstream.ErrKeyExists) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// remote answers the agent's entry when another node that is in the
// cluster published it.
func (b *Board) remote(agent string) (boardEntry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remoteLocked(agent)
}

// remoteLocked is remote under b.mu.
func (b *Board) remoteLocked(agent string) (boardEntry, bool) {
	if _, here := b.published[agent]; here {
		return boardEntry{}, false // connected here: this node's switchboard answers
	}
	e, ok := b.seen[agent]
	if !ok || e.st.Node == b.cfg.Node || !b.live[e.st.Node] {
		return boardEntry{}, false
	}
	return e, true
}

// waitRev waits until the watch saw the agent's entry at rev or later,
// or ctx ends: what the other node just changed is then believed here.
func (b *Board) waitRev(ctx context.Context, agent string, rev uint64) {
	for {
		b.mu.Lock()
		e, ok := b.seen[agent]
		b.mu.Unlock()
		if rev == 0 || ok && e.rev >= rev {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Availability answers local (this node's agents) joined with the
// agents of the other nodes.
func (b *Board) Availability(local Availability) Availability {
	return boardAvailability{b: b, local: local}
}

type boardAvailability struct {
	b     *Board
	local Availability
}

func (a boardAvailability) Offerable(agent string, maxConcurrent int, now time.Time) bool {
	if a.local.Offerable(agent, maxConcurrent, now) {
		return true
	}
	e, ok := a.b.remote(agent)
	return ok && e.st.Status == routing.Available && e.st.Calls < max(maxConcurrent, 1)
}

func (a boardAvailability) IdleSince(agent string) time.Time {
	if e, ok := a.b.remote(agent); ok {
		return e.st.IdleSince
	}
	return a.local.IdleSince(agent)
}

// LookAll implements Looker: local's look (in one when it is a Looker),
// then the other nodes' agents under one hold of the board.
func (a boardAvailability) LookAll(agents []string, maxConcurrent int, now time.Time, offerable []bool, idleSince []time.Time) {
	if l, ok := a.local.(Looker); ok {
		l.LookAll(agents, maxConcurrent, now, offerable, idleSince)
	} else {
		for i, agent := range agents {
			offerable[i] = a.local.Offerable(agent, maxConcurrent, now)
			idleSince[i] = a.local.IdleSince(agent)
		}
	}
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	for i, agent := range agents {
		e, ok := a.b.remoteLocked(agent)
		if !ok {
			continue
		}
		idleSince[i] = e.st.IdleSince
		offerable[i] = offerable[i] || e.st.Status == routing.Available && e.st.Calls < max(maxConcurrent, 1)
	}
}

// Status answers local (this node's agent status) joined with the
// agents of the other nodes: a status change for an agent connected to
// another node is sent there, and answered once this node's view has it.
func (b *Board) Status(local AgentStatus) AgentStatus {
	return boardStatus{boardAvailability: boardAvailability{b: b, local: local}, local: local}
}

type boardStatus struct {
	boardAvailability
	local AgentStatus
}

func (s boardStatus) SetStatusBySystem(ctx context.Context, agent string, req calls.SetStatusRequest) (calls.AgentStatusData, error) {
	if e, ok := s.b.remote(agent); ok {
		return s.b.ask(ctx, e.st.Node, statusRequest{Op: opAway, Agent: agent, Status: req})
	}
	return s.local.SetStatusBySystem(ctx, agent, req)
}

func (s boardStatus) EnterWrapUp(ctx context.Context, agent, callID string, seconds int) (calls.AgentStatusData, error) {
	if e, ok := s.b.remote(agent); ok {
		return s.b.ask(ctx, e.st.Node, statusRequest{Op: opWrapUp, Agent: agent, CallID: callID, Seconds: seconds})
	}
	return s.local.EnterWrapUp(ctx, agent, callID, seconds)
}

// The status requests between nodes.
const (
	opAway   = "setBySystem"
	opWrapUp = "wrapUp"
)

type statusRequest struct {
	Op      string                 `json:"op"`
	Agent   string                 `json:"agent"`
	Status  calls.SetStatusRequest `json:"status"`
	CallID  string                 `json:"callId,omitempty"`
	Seconds int                    `json:"seconds,omitempty"`
	// ServerCallID names the conversation of a call request.
	ServerCallID string `json:"serverCallId,omitempty"`
	MaxMisses    int    `json:"maxMisses,omitempty"`
}

type statusResponse struct {
	Data calls.AgentStatusData `json:"data"`
	Rev  uint64                `json:"rev"` // her entry's revision once changed
	// CallID answers opAgentCall: her own call's id on her node.
	CallID string     `json:"callId,omitempty"`
	Code   calls.Code `json:"code,omitempty"`
	Error  string     `json:"error,omitempty"`
	// Away answers opMissed: she reached maxMisses in a row.
	Away bool `json:"away,omitempty"`
}

// ask sends a status request to node, and waits until this node's view
// has what it changed.
func (b *Board) ask(ctx context.Context, node string, req statusRequest) (calls.AgentStatusData, error) {
	resp, err := b.request(ctx, node, req)
	if err != nil {
		return calls.AgentStatusData{}, err
	}
	b.waitRev(ctx, req.Agent, resp.Rev)
	return resp.Data, nil
}

// request sends a request to node and answers its answer.
func (b *Board) request(ctx context.Context, node string, req statusRequest) (statusResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return statusResponse{}, fmt.Errorf("queue: encode a status request: %w", err)
	}
	msg, err := b.cfg.Conn.RequestWithContext(ctx, b.cfg.Subject+"."+node, body)
	if err != nil {
		return statusResponse{}, calls.Errorf(calls.CodeUnavailable, "queue: %s request to node %s: %v", req.Op, node, err)
	}
	var resp statusResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return statusResponse{}, fmt.Errorf("queue: decode the %s answer of node %s: %w", req.Op, node, err)
	}
	if resp.Error != "" {
		return statusResponse{}, calls.Errorf(resp.Code, "node %s: %s", node, resp.Error)
	}
	return resp, nil
}

// serve runs another node's status request on an agent connected here.
func (b *Board) serve(msg *nats.Msg) {
	var req statusRequest
	resp := statusResponse{}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	err := json.Unmarshal(msg.Data, &req)
	if err == nil {
		switch req.Op {
		case opAway:
			resp.Data, err = b.cfg.Status.SetStatusBySystem(ctx, req.Agent, req.Status)
		case opWrapUp:
			resp.Data, err = b.cfg.Status.EnterWrapUp(ctx, req.Agent, req.CallID, req.Seconds)
		case opAgentCall, opRecord:
			resp.CallID, err = b.serveCall(ctx, req)
		case opMissed:
			resp.Away = b.countMiss(req.Agent, max(req.MaxMisses, 1))
		case opAnswered:
			b.countMiss(req.Agent, 0)
		default:
			err = calls.Errorf(calls.CodeInvalidRequest, "unknown status request %q", req.Op)
		}
	}
	if err != nil {
		resp.Code, resp.Error = calls.ErrorCode(err), err.Error()
	} else if req.Op == opAway || req.Op == opWrapUp {
		resp.Rev = b.sync(ctx, req.Agent)
	}
	out, err := json.Marshal(resp)
	if err == nil {
		err = msg.Respond(out)
	}
	if err != nil {
		b.cfg.Logger.Warn("queue: answer a status request", "err", err)
	}
}
