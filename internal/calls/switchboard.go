package calls

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// Config is what a Switchboard needs. Store, Publisher and NewID are
// required; the rest have defaults.
type Config struct {
	Store     Store
	Publisher Publisher
	// Media is the media plane; nil runs without one.
	Media Media
	// Clock defaults to SystemClock.
	Clock Clock
	// NewID returns a fresh unique id for calls and conversations.
	NewID func() string
	// RingTimeout is how long an incoming call rings before it ends with
	// 480. Defaults to DefaultRingTimeout.
	RingTimeout time.Duration
	// Policy is every identity's single-active-call preference.
	Policy holdpolicy.Options
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultRingTimeout is how long a call rings by default.
const DefaultRingTimeout = 30 * time.Second

// maxParticipants bounds the participants one request may name.
const maxParticipants = 32

// Switchboard is the domain service: every identity's calls and the rules
// that change them.
//
// Concurrency: each identity (party) and each conversation has a mutex. An
// operation locks, in one global order (parties by rawId, then
// conversations by id), the identities it acts for, every member of the
// conversations it acts on, and every conversation of those identities; it
// plans the lock set from atomic snapshots of membership, locks, checks the
// set still covers what it must, and retries with the larger set if not.
// Leg state is guarded by its conversation's mutex; an identity's list of
// calls by its own. Events, store records and media routes are handed over
// before the locks are released, so each identity's events arrive in the
// order its state changed, and no observer sees two Connected calls of one
// identity.
type Switchboard struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex // guards the maps and closed; taken after party and conversation locks, never before
	parties map[string]*party
	legs    map[string]*leg
	rooms   map[string]*conversation // "g:"+groupId or "r:"+roomId
	closed  bool

	heldSeq atomic.Uint64
	work    sync.WaitGroup // timers and follow-ups in flight
}

// New returns a Switchboard.
func New(cfg Config) (*Switchboard, error) {
	if cfg.Store == nil || cfg.Publisher == nil || cfg.NewID == nil {
		return nil, errors.New("calls.New: Store, Publisher and NewID are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = DefaultRingTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Switchboard{
		cfg:     cfg,
		log:     cfg.Logger,
		parties: map[string]*party{},
		legs:    map[string]*leg{},
		rooms:   map[string]*conversation{},
	}, nil
}

// party is one identity: a person with a token (agent, supervisor, caller)
// or a bot.
type party struct {
	id    string // rawId
	ident Identifier
	bot   bool

	mu       sync.Mutex
	legsSnap atomic.Pointer[[]*leg] // a copy of legs, for planning lock sets

	// guarded by mu
	legs        []*leg // live and ringing calls
	displayName string
	role        Role
	conns       int
	seen        bool // has connected once: shown on dashboards
}

func (p *party) setLegs(legs []*leg) {
	p.legs = legs
	snap := slices.Clone(legs)
	p.legsSnap.Store(&snap)
}

func (p *party) supervised() bool { return p.role == RoleAgent || p.role == RoleSupervisor }

// conversation is what the identities in one call share.
type conversation struct {
	id string // the serverCallId

	mu          sync.Mutex
	membersSnap atomic.Pointer[[]*leg] // a copy of members, for planning lock sets

	// guarded by mu
	kind    Kind
	groupID string
	roomID  string
	members []*leg // legs not ended, in the order they came
	all     []*leg // every leg ever, for history
	closed  bool
}

func (c *conversation) setMembers(members []*leg) {
	c.members = members
	snap := slices.Clone(members)
	c.membersSnap.Store(&snap)
}

func (c *conversation) registryKey() string {
	switch {
	case c.groupID != "":
		return "g:" + c.groupID
	case c.roomID != "":
		return "r:" + c.roomID
	}
	return ""
}

// phase is where a leg is in its life.
type phase int

const (
	phaseConnecting phase = iota // outgoing, placing
	phaseRinging                 // outgoing, a callee rings
	phaseIncoming                // incoming, ringing, not accepted
	phaseLive                    // answered or joined
	phaseEnded
)

// leg is one identity's part in a conversation: its Call.
type leg struct {
	id         string
	party      *party
	conv       *conversation
	direction  Direction
	callerInfo CallerInfo
	start      time.Time

	// guarded by conv.mu
	phase         phase
	listed        bool // in the identity's calls (accepted or placed)
	holding       bool
	heldSeq       uint64
	heldAt        time.Time
	muted         bool
	incomingMuted bool
	speaking      bool
	connectedAt   time.Time
	endAt         time.Time
	endReason     EndReason
	ringTimer     Timer
}

// policyCall is the leg as the hold policy sees it.
func (l *leg) policyCall() holdpolicy.Call {
	c := holdpolicy.Call{
		ID:          l.id,
		Live:        l.phase == phaseLive,
		Ended:       l.phase == phaseEnded,
		HeldByAgent: l.holding,
		HeldSeq:     l.heldSeq,
	}
	if l.conv.kind == OneToOne {
		for _, m := range l.conv.members {
			if m != l && m.holding && m.phase == phaseLive {
				c.HeldByRemote = true
			}
		}
	}
	return c
}

func (l *leg) state() CallState {
	switch l.phase {
	case phaseConnecting:
		return StateConnecting
	case phaseRinging, phaseIncoming:
		return StateRinging
	case phaseEnded:
		return StateDisconnected
	}
	switch l.policyCall().State() {
	case holdpolicy.LocalHold:
		return StateLocalHold
	case holdpolicy.RemoteHold:
		return StateRemoteHold
	}
	return StateConnected
}

func (l *leg) participantState() ParticipantState {
	switch l.phase {
	case phaseConnecting, phaseRinging:
		return ParticipantConnecting
	case phaseIncoming:
		return ParticipantRinging
	case phaseEnded:
		return ParticipantDisconnected
	}
	if l.holding {
		return ParticipantHold
	}
	return ParticipantConnected
}

// lookupParty returns the party of an identity, creating it.
func (s *Switchboard) lookupParty(id Identifier) *party {
	raw := id.RawID()
	s.mu.RLock()
	p := s.parties[raw]
	s.mu.RUnlock()
	if p != nil {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p = s.parties[raw]; p == nil {
		p = &party{id: raw, ident: id, bot: id == EchoBot}
		p.setLegs(nil)
		s.parties[raw] = p
	}
	return p
}

func (s *Switchboard) lookupLeg(id string) *leg {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.legs[id]
}

func (s *Switchboard) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

var errClosed = Errorf(CodeUnavailable, "the switchboard is shutting down")

// lockPlan is the set of parties and conversations an operation locks.
type lockPlan struct {
	parties map[*party]struct{}
	convs   map[*conversation]struct{}
}

// planLocks computes the lock set: the seed parties, the human members of
// the seed conversations, and every conversation of all of those.
func planLocks(seedParties []*party, seedConvs []*conversation) lockPlan {
	lp := lockPlan{parties: map[*party]struct{}{}, convs: map[*conversation]struct{}{}}
	addParty := func(p *party) {
		if p != nil && !p.bot {
			lp.parties[p] = struct{}{}
		}
	}
	for _, p := range seedParties {
		addParty(p)
	}
	for _, c := range seedConvs {
		lp.convs[c] = struct{}{}
		for _, m := range *c.membersSnap.Load() {
			addParty(m.party)
		}
	}
	for p := range lp.parties {
		for _, l := range *p.legsSnap.Load() {
			lp.convs[l.conv] = struct{}{}
		}
	}
	return lp
}

func (lp lockPlan) covers(other lockPlan) bool {
	for p := range other.parties {
		if _, ok := lp.parties[p]; !ok {
			return false
		}
	}
	for c := range other.convs {
		if _, ok := lp.convs[c]; !ok {
			return false
		}
	}
	return true
}

func (lp lockPlan) merge(other lockPlan) {
	for p := range other.parties {
		lp.parties[p] = struct{}{}
	}
	for c := range other.convs {
		lp.convs[c] = struct{}{}
	}
}

// ordered returns the plan's locks in the global order.
func (lp lockPlan) ordered() ([]*party, []*conversation) {
	ps := make([]*party, 0, len(lp.parties))
	for p := range lp.parties {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *party) int { return cmp.Compare(a.id, b.id) })
	cs := make([]*conversation, 0, len(lp.convs))
	for c := range lp.convs {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *conversation) int { return cmp.Compare(a.id, b.id) })
	return ps, cs
}

// begin locks what an operation on the seeds needs and returns the
// transaction that holds those locks. actor is nil for the system.
func (s *Switchboard) begin(actor *Principal, seedParties []*party, seedConvs []*conversation) *txn {
	lp := planLocks(seedParties, seedConvs)
	for {
		ps, cs := lp.ordered()
		for _, p := range ps {
			p.mu.Lock()
		}
		for _, c := range cs {
			c.mu.Lock()
		}
		again := planLocks(seedParties, seedConvs)
		if lp.covers(again) {
			return newTxn(s, actor, lp)
		}
		for _, c := range cs {
			c.mu.Unlock()
		}
		for _, p := range ps {
			p.mu.Unlock()
		}
		lp.merge(again)
	}
}

// beginAll locks every party and conversation: a consistent view of the
// whole switchboard, for a supervisor's snapshot. It also keeps the registry
// read-locked until the transaction ends, so no identity can appear (and
// publish) between the snapshot and the end of the transaction. The
// transaction must not change the registry.
func (s *Switchboard) beginAll(actor *Principal) *txn {
	for {
		s.mu.RLock()
		parties := make([]*party, 0, len(s.parties))
		for _, p := range s.parties {
			parties = append(parties, p)
		}
		convs := make([]*conversation, 0, len(s.rooms))
		for _, c := range s.rooms {
			convs = append(convs, c)
		}
		s.mu.RUnlock()
		tx := s.begin(actor, parties, convs)
		s.mu.RLock()
		if len(s.parties) == len(parties) && len(s.rooms) == len(convs) {
			tx.registryLocked = true
			return tx
		}
		s.mu.RUnlock()
		tx.unlock()
	}
}
