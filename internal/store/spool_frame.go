package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// A spool frame's payload is one change, carrying its own key (the call's
// id, the change's version, and each event's place in it), so that writing
// it to Postgres again changes nothing. The spool file's header says which
// of two formats its frames have:
//
//   - Format 2, written since: the change's rows as the writer encoded
//     them, in binary (see appendSpoolFrame): the call's columns and its
//     JSON view as they go to Postgres, each participant's and event's
//     columns. Reading one back copies its strings and nothing else; the
//     view and event data are not parsed again.
//   - Format 1, written by earlier versions: one JSON object (spoolRecord)
//     with the call's view, from which the columns are derived again. A
//     spool of format 1 left by an earlier version is still read and
//     written to Postgres; new changes always go to a file of format 2.
const (
	spoolFormatJSON   = 1
	spoolFormatBinary = 2
)

// frameChange starts every payload of format 2, so that one read with the
// wrong format fails at once.
const frameChange = 'C'

// Flags of optional columns in a payload of format 2.
const (
	hasEnd = 1 << iota
	hasEndCode
	hasEndSubCode
	hasEndMessage
	hasDisplayName
	isMutedFlag
	hasActor
	hasData
)

var errBadPayload = errors.New("malformed spooled change")

// appendSpoolFrame appends c as a payload of format 2 to b.
func (c *change) appendSpoolFrame(b []byte) []byte {
	b = append(b, frameChange)
	b = binary.AppendVarint(b, c.version)
	b = binary.AppendVarint(b, c.recordedAt.UnixNano())
	r := &c.call
	for _, s := range [...]string{r.id, r.serverCallID, r.agentID, r.direction, r.kind, r.state} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, r.start.UnixMicro())
	flags := endFlags(r.endCode, r.endSubCode, r.endMessage)
	if r.end != nil {
		flags |= hasEnd
	}
	b = append(b, flags)
	if r.end != nil {
		b = binary.AppendVarint(b, r.end.UnixMicro())
	}
	b = appendEnd(b, r.endCode, r.endSubCode, r.endMessage)
	b = appendBytes(b, r.view)

	b = binary.AppendUvarint(b, uint64(len(c.parts)))
	for i := range c.parts {
		p := &c.parts[i]
		b = appendString(b, p.rawID)
		b = binary.AppendVarint(b, int64(p.position))
		b = appendString(b, p.state)
		flags := endFlags(p.endCode, p.endSubCode, p.endMessage)
		if p.displayName != nil {
			flags |= hasDisplayName
		}
		if p.isMuted {
			flags |= isMutedFlag
		}
		b = append(b, flags)
		if p.displayName != nil {
			b = appendString(b, *p.displayName)
		}
		b = appendEnd(b, p.endCode, p.endSubCode, p.endMessage)
	}

	b = binary.AppendUvarint(b, uint64(len(c.events)))
	for i := range c.events {
		e := &c.events[i]
		b = appendString(b, e.typ)
		b = binary.AppendVarint(b, e.at.UnixMicro())
		var flags byte
		if e.actor != nil {
			flags |= hasActor
		}
		if e.data != nil {
			flags |= hasData
		}
		b = append(b, flags)
		if e.actor != nil {
			b = appendString(b, string(e.actor.Kind))
			b = appendString(b, e.actor.RawID)
		}
		if e.data != nil {
			b = appendBytes(b, e.data)
		}
	}
	return b
}

func endFlags(code, sub *int32, msg *string) byte {
	var f byte
	if code != nil {
		f |= hasEndCode
	}
	if sub != nil {
		f |= hasEndSubCode
	}
	if msg != nil {
		f |= hasEndMessage
	}
	return f
}

func appendEnd(b []byte, code, sub *int32, msg *string) []byte {
	if code != nil {
		b = binary.AppendVarint(b, int64(*code))
	}
	if sub != nil {
		b = binary.AppendVarint(b, int64(*sub))
	}
	if msg != nil {
		b = appendString(b, *msg)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// changeFromSpool reads a payload of format 2 back. The view and the
// events' data share payload's memory, which the caller must not reuse.
func changeFromSpool(payload []byte) (change, error) {
	r := frameReader{b: payload}
	if r.byte() != frameChange {
		return change{}, fmt.Errorf("decode spooled change: %w: not a change", errBadPayload)
	}
	ch := change{version: r.varint(), recordedAt: time.Unix(0, r.varint()).UTC()}
	c := &ch.call
	c.id, c.serverCallID, c.agentID = r.string(), r.string(), r.string()
	c.direction, c.kind, c.state = r.string(), r.string(), r.string()
	c.start = r.micro()
	flags := r.byte()
	if flags&hasEnd != 0 {
		end := r.micro()
		c.end = &end
	}
	c.endCode, c.endSubCode, c.endMessage = r.end(flags)
	c.view = r.bytes()

	ch.parts = make([]partRow, r.count())
	for i := range ch.parts {
		p := &ch.parts[i]
		p.rawID = r.string()
		p.position = r.int32()
		p.state = r.string()
		flags := r.byte()
		p.isMuted = flags&isMutedFlag != 0
		if flags&hasDisplayName != 0 {
			name := r.string()
			p.displayName = &name
		}
		p.endCode, p.endSubCode, p.endMessage = r.end(flags)
	}

	ch.events = make([]eventRow, r.count())
	for i := range ch.events {
		e := &ch.events[i]
		e.typ = r.string()
		e.at = r.micro()
		flags := r.byte()
		if flags&hasActor != 0 {
			e.actor = &calls.Actor{Kind: calls.ActorKind(r.string()), RawID: r.string()}
		}
		if flags&hasData != 0 {
			e.data = r.bytes()
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d bytes after its end", errBadPayload, len(r.b))
	}
	if r.err != nil {
		return change{}, fmt.Errorf("decode spooled change %s/%d: %w", c.id, ch.version, r.err)
	}
	return ch, nil
}

// frameReader reads a payload of format 2. Its first error sticks, and
// every read after it answers a zero value.
type frameReader struct {
	b   []byte
	err error
}

func (r *frameReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: cut short", errBadPayload)
	}
	r.b = nil
}

func (r *frameReader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *frameReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *frameReader) int32() int32 {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail()
		return 0
	}
	return int32(v)
}

func (r *frameReader) micro() time.Time { return time.UnixMicro(r.varint()).UTC() }

// count reads a number of items, each of which takes at least a byte.
func (r *frameReader) count() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)-n) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *frameReader) bytes() []byte {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)-n) {
		r.fail()
		return nil
	}
	out := r.b[n : n+int(v) : n+int(v)]
	r.b = r.b[n+int(v):]
	return out
}

func (r *frameReader) string() string { return string(r.bytes()) }

func (r *frameReader) end(flags byte) (code, sub *int32, msg *string) {
	if flags&hasEndCode != 0 {
		v := r.int32()
		code = &v
	}
	if flags&hasEndSubCode != 0 {
		v := r.int32()
		sub = &v
	}
	if flags&hasEndMessage != 0 {
		v := r.string()
		msg = &v
	}
	return code, sub, msg
}

// decodeSpooled reads spool payloads of the given format back. One that
// cannot be read (which only a bug would write) is dropped, loudly. at
// maps each change to its payload.
func decodeSpooled(payloads [][]byte, format int, log *slog.Logger) (batch []change, at []int) {
	decode := changeFromSpool
	if format == spoolFormatJSON {
		decode = changeFromSpoolJSON
	}
	batch = make([]change, 0, len(payloads))
	at = make([]int, 0, len(payloads))
	for i, b := range payloads {
		c, err := decode(b)
		if err != nil {
			log.Error("history store: dropping a spooled change that cannot be read", "err", err)
			continue
		}
		batch = append(batch, c)
		at = append(at, i)
	}
	return batch, at
}

// spoolRecord is a payload of format 1: one JSON object that says what it
// is (Format) and carries its own key (CallID, Version, and each event's
// place in Events).
type spoolRecord struct {
	Format     string          `json:"format"`
	CallID     string          `json:"callId"`
	Version    int64           `json:"version"`
	RecordedAt time.Time       `json:"recordedAt"`
	Call       json.RawMessage `json:"call"` // the calls.Call
	Events     []spoolEvent    `json:"events,omitempty"`
}

type spoolEvent struct {
	Type  string          `json:"type"`
	At    time.Time       `json:"at"`
	Actor *calls.Actor    `json:"actor,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

const spoolRecordFormat = "switchboard.history.change/1"

// changeFromSpoolJSON reads a payload of format 1 back.
func changeFromSpoolJSON(payload []byte) (change, error) {
	var r spoolRecord
	if err := json.Unmarshal(payload, &r); err != nil {
		return change{}, fmt.Errorf("decode spooled change: %w", err)
	}
	if r.Format != spoolRecordFormat {
		return change{}, fmt.Errorf("decode spooled change: format %q, want %q", r.Format, spoolRecordFormat)
	}
	var v viewColumns
	if err := json.Unmarshal(r.Call, &v); err != nil {
		return change{}, fmt.Errorf("decode spooled change %s/%d: %w", r.CallID, r.Version, err)
	}
	c := v.call()
	ch := change{
		version:    r.Version,
		recordedAt: r.RecordedAt,
		call:       newCallRow(&c, r.Call),
		parts:      newPartRows(c.RemoteParticipants),
		events:     make([]eventRow, len(r.Events)),
	}
	for i, e := range r.Events {
		ch.events[i] = eventRow{typ: e.Type, at: e.At, actor: e.Actor, data: e.Data}
	}
	return ch, nil
}

// viewColumns is what a call's rows need from its JSON view. It reads the
// view without validating identifiers (as calls.Call would), so that any
// change the store took can be replayed.
type viewColumns struct {
	ID                 string           `json:"id"`
	ServerCallID       string           `json:"serverCallId"`
	AgentID            string           `json:"agentId"`
	Direction          calls.Direction  `json:"direction"`
	Kind               calls.Kind       `json:"kind"`
	State              calls.CallState  `json:"state"`
	StartTime          time.Time        `json:"startTime"`
	EndTime            *time.Time       `json:"endTime"`
	CallEndReason      *calls.EndReason `json:"callEndReason"`
	RemoteParticipants []struct {
		RawID         string                 `json:"rawId"`
		DisplayName   string                 `json:"displayName"`
		State         calls.ParticipantState `json:"state"`
		IsMuted       bool                   `json:"isMuted"`
		CallEndReason *calls.EndReason       `json:"callEndReason"`
	} `json:"remoteParticipants"`
}

// call is v as a Call with the fields the rows need.
func (v *viewColumns) call() calls.Call {
	c := calls.Call{
		ID: v.ID, ServerCallID: v.ServerCallID, AgentID: v.AgentID,
		Direction: v.Direction, Kind: v.Kind, State: v.State,
		StartTime: v.StartTime, EndTime: v.EndTime, CallEndReason: v.CallEndReason,
		RemoteParticipants: make([]calls.Participant, len(v.RemoteParticipants)),
	}
	for i, p := range v.RemoteParticipants {
		c.RemoteParticipants[i] = calls.Participant{
			RawID: p.RawID, DisplayName: p.DisplayName, State: p.State,
			IsMuted: p.IsMuted, CallEndReason: p.CallEndReason,
		}
	}
	return c
}
