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
	// Phones places calls to phone numbers that no connected identity
	// holds (package sip, through a trunk); nil ends them with 480 as
	// for anyone not connected.
	Phones PhoneNetwork
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
	txnSeq  atomic.Uint64  // numbers transactions, from 1
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
	line          PhoneLine // a phone's call with the phone network (StartPhoneCall, PhoneNetwork.Dial)
	early         bool      // a phone called out plays early media (183)
	tones         []byte    // a phone's last DTMF tones, for *6
	seenBy        uint64    // the transaction that last saw the leg (txn.see)
	seenAt        int       // where in that transaction's seen list
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
	case phaseRinging:
		if slices.ContainsFunc(l.conv.members, func(m *leg) bool { return m.early && m.phase == phaseIncoming }) {
			return StateEarlyMedia
		}
		return StateRinging
	case phaseIncoming:
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
		if l.early {
			return ParticipantEarlyMedia
		}
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
	var buf [128]byte
	key := id.appendRawID(buf[:0])
	s.mu.RLock()
	p := s.parties[string(key)] // no copy of key for a lookup
	s.mu.RUnlock()
	if p != nil {
		return p
	}
	raw := id.RawID()
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
// Once sorted, each list is in the global lock order (by id) without
// repeats.
type lockPlan struct {
	parties []*party
	convs   []*conversation
}

// planLocks appends to lp the lock set: the seed parties, the human
// members of the seed conversations, and every conversation of all of
// those. The lists may repeat and are in no order; sort puts them in order.
func planLocks(lp lockPlan, seedParties []*party, seedConvs []*conversation) lockPlan {
	addParty := func(p *party) {
		if p != nil && !p.bot {
			lp.parties = append(lp.parties, p)
		}
	}
	for _, p := range seedParties {
		addParty(p)
	}
	for _, c := range seedConvs {
		lp.convs = append(lp.convs, c)
		for _, m := range *c.membersSnap.Load() {
			addParty(m.party)
		}
	}
	for _, p := range lp.parties {
		lp.convs = slices.Grow(lp.convs, len(*p.legsSnap.Load()))
	}
	for _, p := range lp.parties {
		for _, l := range *p.legsSnap.Load() {
			lp.convs = append(lp.convs, l.conv)
		}
	}
	return lp
}

func partyID(p *party) string               { return p.id }
func conversationID(c *conversation) string { return c.id }

// sort puts the plan in the global lock order and drops repeats.
func (lp *lockPlan) sort() {
	lp.parties = sortUnique(lp.parties, partyID)
	lp.convs = sortUnique(lp.convs, conversationID)
}

// sortUnique sorts xs by id and drops repeated elements. Distinct elements
// never share an id, but a repeat is found among equal ids either way.
func sortUnique[T comparable](xs []T, id func(T) string) []T {
	slices.SortFunc(xs, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	out := xs[:0]
	for _, x := range xs {
		dup := false
		for i := len(out) - 1; i >= 0 && id(out[i]) == id(x); i-- {
			if out[i] == x {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}

// holds reports whether the sorted list xs has x.
func holds[T comparable](xs []T, x T, id func(T) string) bool {
	key := id(x)
	i, _ := slices.BinarySearchFunc(xs, key, func(e T, k string) int { return cmp.Compare(id(e), k) })
	for ; i < len(xs) && id(xs[i]) == key; i++ {
		if xs[i] == x {
			return true
		}
	}
	return false
}

// covers reports whether the sorted plan has everything other names.
func (lp lockPlan) covers(other lockPlan) bool {
	for _, p := range other.parties {
		if !holds(lp.parties, p, partyID) {
			return false
		}
	}
	for _, c := range other.convs {
		if !holds(lp.convs, c, conversationID) {
			return false
		}
	}
	return true
}

// hasParty reports whether the sorted plan locks p.
func (lp lockPlan) hasParty(p *party) bool { return holds(lp.parties, p, partyID) }

// begin locks what an operation on the seeds needs and returns the
// transaction that holds those locks. actor is nil for the system.
func (s *Switchboard) begin(actor *Principal, seedParties []*party, seedConvs []*conversation) *txn {
	lp := planLocks(lockPlan{
		parties: make([]*party, 0, len(seedParties)+2),
		convs:   make([]*conversation, 0, len(seedConvs)+16),
	}, seedParties, seedConvs)
	lp.sort()
	for {
		for _, p := range lp.parties {
			p.mu.Lock()
		}
		for _, c := range lp.convs {
			c.mu.Lock()
		}
		var partyBuf [8]*party
		var convBuf [32]*conversation
		again := planLocks(lockPlan{parties: partyBuf[:0], convs: convBuf[:0]}, seedParties, seedConvs)
		if lp.covers(again) {
			return newTxn(s, actor, lp)
		}
		for _, c := range lp.convs {
			c.mu.Unlock()
		}
		for _, p := range lp.parties {
			p.mu.Unlock()
		}
		lp.parties = append(lp.parties, again.parties...)
		lp.convs = append(lp.convs, again.convs...)
		lp.sort()
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
