package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/calls"
)

// change is one calls.Record as the Postgres store writes it, encoded once
// by the journaler: the call's row, its participants' rows and its events'
// rows. Its key is given when the record is taken: the call's id and the
// change's version, which grows with every record; an event's key adds its
// place in the record. Writing a change again, from a retry or a replayed
// spool, therefore changes nothing.
type change struct {
	version    int64
	recordedAt time.Time // when Record took it, for Ready
	// Where the journal holds it: the end of its frame, in the journal
	// file's generation journalGen (see spool.consume).
	journalEnd int64
	journalGen uint64
	call       callRow
	parts      []partRow
	events     []eventRow
}

// callRow is a calls row. Strings are clean (see clean), times in
// microseconds, as Postgres keeps them.
type callRow struct {
	id, serverCallID, agentID string
	direction, kind, state    string
	start                     time.Time
	end                       *time.Time
	endCode, endSubCode       *int32
	endMessage                *string
	view                      []byte // the calls.Call as JSON
}

// partRow is a participants row.
type partRow struct {
	rawID               string
	position            int32
	displayName         *string
	state               string
	isMuted             bool
	endCode, endSubCode *int32
	endMessage          *string
}

// eventRow is a call_events row, but for its key.
type eventRow struct {
	typ   string
	at    time.Time
	actor *calls.Actor
	data  []byte // JSON; nil: none
}

// newChange encodes rec, taken at recordedAt with version.
func newChange(rec *calls.Record, version int64, recordedAt time.Time, log *slog.Logger) change {
	view, err := json.Marshal(&rec.Call)
	if err != nil {
		// A Call is plain data; this would be a bug in package calls.
		log.Error("history: cannot encode a call", "call_id", rec.Call.ID, "err", err)
		view = []byte(`{}`)
	}
	ch := change{
		version:    version,
		recordedAt: recordedAt,
		call:       newCallRow(&rec.Call, jsonForPostgres(view)),
		parts:      newPartRows(rec.Call.RemoteParticipants),
		events:     make([]eventRow, len(rec.Events)),
	}
	for i := range rec.Events {
		ev := &rec.Events[i]
		row := eventRow{typ: clean(string(ev.Type)), at: micro(ev.At), actor: cleanActor(ev.Actor)}
		if ev.Data != nil {
			data, err := json.Marshal(ev.Data)
			if err != nil {
				log.Error("history: cannot encode an event's data; keeping the event without it",
					"call_id", rec.Call.ID, "type", ev.Type, "err", err)
			} else {
				row.data = jsonForPostgres(data)
			}
		}
		ch.events[i] = row
	}
	return ch
}

func newCallRow(c *calls.Call, view []byte) callRow {
	r := callRow{
		id:           clean(c.ID),
		serverCallID: clean(c.ServerCallID),
		agentID:      clean(c.AgentID),
		direction:    clean(string(c.Direction)),
		kind:         clean(string(c.Kind)),
		state:        clean(string(c.State)),
		start:        micro(c.StartTime),
		view:         view,
	}
	if c.EndTime != nil {
		t := micro(*c.EndTime)
		r.end = &t
	}
	r.endCode, r.endSubCode, r.endMessage = endColumns(c.CallEndReason)
	return r
}

// newPartRows is a call's participants, one row per party: a party who
// left and came back is its latest appearance.
func newPartRows(ps []calls.Participant) []partRow {
	rows := make([]partRow, 0, len(ps))
	at := make(map[string]int, len(ps))
	for i := range ps {
		p := &ps[i]
		r := partRow{
			rawID:    clean(p.RawID),
			position: int32(min(i+1, math.MaxInt32)),
			state:    clean(string(p.State)),
			isMuted:  p.IsMuted,
		}
		if p.DisplayName != "" {
			name := clean(p.DisplayName)
			r.displayName = &name
		}
		r.endCode, r.endSubCode, r.endMessage = endColumns(p.CallEndReason)
		if j, ok := at[r.rawID]; ok {
			rows[j] = r
			continue
		}
		at[r.rawID] = len(rows)
		rows = append(rows, r)
	}
	return rows
}

// endColumns is an end reason's columns. A code that does not fit the
// integer column is left out of it (the call's view keeps it).
func endColumns(r *calls.EndReason) (code, sub *int32, msg *string) {
	if r == nil {
		return nil, nil, nil
	}
	code, sub = int32Ptr(r.Code), int32Ptr(r.SubCode)
	m := clean(r.Message)
	return code, sub, &m
}

func int32Ptr(v int) *int32 {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return nil
	}
	i := int32(v)
	return &i
}

func cleanActor(a *calls.Actor) *calls.Actor {
	if a == nil {
		return nil
	}
	return &calls.Actor{Kind: calls.ActorKind(clean(string(a.Kind))), RawID: clean(a.RawID)}
}

// micro is t to the microsecond, as Postgres keeps it (Postgres would
// round; truncating matches what pgx sends for filters and cursors).
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// clean is s as a Postgres text value can hold it: NUL bytes and invalid
// UTF-8 become U+FFFD. Identifiers are validated upstream, so this only
// ever changes free text such as display names.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// jsonForPostgres is JSON that encoding/json produced, as jsonb accepts it:
// jsonb refuses the escape \u0000, which becomes \ufffd. (encoding/json
// already writes invalid UTF-8 as U+FFFD.)
func jsonForPostgres(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			out = append(out, `\ufffd`...)
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1]) // an escape: its second byte is never a backslash that starts another
		i++
	}
	return out
}
