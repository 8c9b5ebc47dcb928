package calls

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/holdpolicy"
	"github.com/switchboard/switchboard/internal/routing"
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
	// Peers places calls to identities owned by other nodes of a cluster
	// (package peercall); nil: there are no other nodes.
	Peers PeerNetwork
	// Rooms claims the group calls by GUID and rooms this node anchors
	// across a cluster (peerroom.go); nil with Peers nil: each node runs
	// its own.
	Rooms RoomClaims
	// Queues finds a transfer's queue target (transfer.go); nil: there
	// are no queues yet, and a queue transfer is not_found.
	Queues Queues
	// JoinWait is how long a join on a node that does not anchor the
	// conversation waits for the anchor's roster, so that its answer
	// shows the others as one node's does (peerjoin.go); 0: it answers
	// at once.
	JoinWait time.Duration
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
// Concurrency: the live state (the registry of identities, calls and
// rooms, and every field of them that changes) has one owner, the mutex
// live. Every operation is one transaction (begin … done) that holds it
// from its first read to the hand-over of its changes, so operations on
// the live state run one at a time, each on a consistent view of
// everything. Nothing under it waits on I/O: the store only queues, the
// publisher only enqueues, the media plane and phone lines take a change
// and return. See the package doc for the shape of an operation.
type Switchboard struct {
	cfg Config
	log *slog.Logger

	live sync.Mutex // owns everything below, and all live state of parties, conversations and legs

	parties map[string]*party
	legs    map[string]*leg
	rooms   map[string]*conversation // "g:"+groupId or "r:"+roomId
	// queueAnswers keeps, for a queue caller's call that ended, who
	// answered in it, until the queue forgets the call (AnsweredIn,
	// ForgetQueueCall): its agent may end it, and so the call, before the
	// queue's next look saw her answer.
	queueAnswers map[string][]string
	closed       bool
	// draining refuses new calls (Drain, Fence); drained, set by Drain
	// only, is closed once no call is left after that, and idle is drained
	// until then. fenced: Fence drains, and Unfence may leave it unless
	// Drain was called too (drained is set).
	draining bool
	fenced   bool
	drained  chan struct{}
	idle     chan struct{}
	heldSeq  uint64 // orders holds, for the policy's "held last"
	txnSeq   uint64 // numbers transactions, from 1
	tx       txn    // the transaction in progress, reused: there is one at a time

	work sync.WaitGroup // timers and follow-ups in flight

	// statusLog keeps status changes (the Store, when it can); the
	// changes wait in statusWrites for one writer (status.go).
	statusLog    AgentStatusLog
	statusWrites chan statusItem
	statusDone   chan struct{}
	statusClosed bool
	statusFinal  bool // Close showed everyone Offline: no more changes
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
	statusLog, _ := cfg.Store.(AgentStatusLog)
	return &Switchboard{
		statusLog: statusLog,
		cfg:       cfg,
		log:       cfg.Logger,
		parties:   map[string]*party{},
		legs:      map[string]*leg{},
		rooms:     map[string]*conversation{},

		queueAnswers: map[string][]string{},
	}, nil
}

// party is one identity: a person with a token (agent, supervisor, caller)
// or a bot.
type party struct {
	id    string // rawId
	ident Identifier
	bot   bool

	// owned by Switchboard.live
	legs        []*leg // live and ringing calls
	displayName string
	role        Role
	conns       int
	seen        bool // has connected once: shown on dashboards

	// Agent status (status.go): statusLoaded once the party has one;
	// shown and shownChosen are what was last told of it.
	presence     routing.State
	statusLoaded bool
	shown        routing.Status
	shownChosen  routing.Status
	statusAt     time.Time // when this node last told of her status (or loaded it)
	wrapTimer    Timer
	recentCalls  []string  // her last ended calls, for wrap-up codes
	callEndedAt  time.Time // when a call of hers last ended (queue.go: IdleSince)
}

func (p *party) supervised() bool { return p.role == RoleAgent || p.role == RoleSupervisor }

// conversation is what the identities in one call share.
type conversation struct {
	id string // the serverCallId

	// owned by Switchboard.live
	kind    Kind
	groupID string
	roomID  string
	members []*leg // legs not ended, in the order they came
	all     []*leg // every leg ever, for history
	closed  bool
	// joiner is set on a mirror (peerroom.go): this node's one joiner of a
	// group call or room another node anchors.
	joiner *leg
	lobby  *roomLobby // a room opened with a lobby (lobby.go); nil: none
	// endsWith is a queue's waiting caller (EndWithCaller): when she
	// leaves an answered call, the agent left with it ends too, and when
	// the agent leaves her alone, she does.
	endsWith *leg
	// rostered, on a mirror, closes when the anchor's first roster came
	// (peerjoin.go).
	rostered chan struct{}
	// bridge, on a merged call this node runs, is the stand-in that joins
	// it to a group call another node runs (peermerge.go); its ghosts
	// show that call's parties.
	bridge *leg
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

	// owned by Switchboard.live
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
	line          PhoneLine // a phone's call with the phone network (StartPhoneCall, PhoneNetwork.Dial), or a stand-in's
	standIn       bool      // stands in for a party on another node (peer.go): no history, no events, in no party's calls
	hidden        bool      // a mirror's stand-in for the anchor's conversation (peerroom.go): nobody's participant
	ghost         bool      // a mirror's copy of a party of the anchor's conversation (peerroom.go): a participant only
	inviterLive   bool      // a caller's stand-in that invites into a live call (peerroom.go): shown Connected while the callee rings
	early         bool      // a phone called out plays early media (183)
	tones         []byte    // a phone's last DTMF tones, for *6
	seenBy        uint64    // the transaction that last saw the leg (txn.see)
	seenAt        int       // where in that transaction's seen list
	// A supervisor's monitor leg (monitor.go): its mode, the leg it
	// monitors, and whether it ever barged (then everyone's history shows
	// it).
	monitor   MonitorMode
	monitored *leg
	barged    bool
	// inLobby: the leg waits in its room's lobby (lobby.go) since
	// lobbyAt, hearing nobody and heard by nobody.
	inLobby bool
	lobbyAt time.Time
	// Transfer and merge (transfer.go): handedOff, the leg leaves without
	// ending the others of its 1:1 call (they were handed to someone
	// else); consult is the agent's consult call of this (customer's)
	// call, consultOf the customer's call of this consult call.
	handedOff bool
	consult   *leg
	consultOf *leg
	// voicemail: a queue caller's call gone to voicemail (MarkVoicemail):
	// a normal end of it is the voicemail's, 0/7017.
	voicemail bool
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
	if l.conv.kind == OneToOne && l.monitor == "" {
		for _, m := range l.conv.members {
			if m != l && m.holding && m.phase == phaseLive && m.monitor == "" {
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
	if l.inLobby && !l.holding {
		return StateInLobby
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
		if l.inviterLive {
			return ParticipantConnected
		}
		return ParticipantConnecting
	case phaseIncoming:
		if l.early {
			return ParticipantEarlyMedia
		}
		return ParticipantRinging
	case phaseEnded:
		return ParticipantDisconnected
	}
	if l.inLobby {
		return ParticipantInLobby
	}
	if l.holding {
		return ParticipantHold
	}
	return ParticipantConnected
}

// party returns the party of an identity, creating it.
func (tx *txn) party(id Identifier) *party {
	s := tx.s
	var buf [128]byte
	key := id.appendRawID(buf[:0])
	if p := s.parties[string(key)]; p != nil { // no copy of key for a lookup
		return p
	}
	p := &party{id: id.RawID(), ident: id, bot: id == EchoBot}
	s.parties[p.id] = p
	return p
}

var (
	errClosed   = Errorf(CodeUnavailable, "the switchboard is shutting down")
	errDraining = Errorf(CodeDraining, "the switchboard is draining before it stops: it takes no new calls (try another node, or again once it is back)")
)

// begin starts an operation: it takes the live state and returns the
// transaction that holds it, until done (or unlock, for one that changed
// nothing). actor is nil for the system.
func (s *Switchboard) begin(actor *Principal) *txn {
	s.live.Lock()
	s.txnSeq++
	tx := &s.tx
	tx.reset(s, s.txnSeq, actor)
	return tx
}
