package api

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/calls"
)

// This file encodes the hottest wire shapes (a Call, an event's envelope,
// stateChanged data) by appending to a byte slice, without reflection. The
// bytes are exactly what encoding/json produces for the same values (HTML
// escaping included); wire_test.go checks that against encoding/json, and
// that these types still have the fields written here. Anything else falls
// back to encoding/json.

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Rare: let encoding/json do its escaping.
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as encoding/json does (RFC 3339 with
// nanoseconds); like encoding/json it fails for years outside 0-9999.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, err
	}
	return append(b, '"'), nil
}

func appendJSONBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendIdentifier appends the identifier's JSON: Identifier.MarshalJSON's
// shape, compacted as encoding/json compacts a Marshaler's output.
func appendIdentifier(b []byte, id calls.Identifier) []byte {
	switch id.Kind {
	case calls.KindCommunicationUser:
		b = append(b, `{"communicationUserId":`...)
		b = appendJSONString(b, id.ID)
	case calls.KindPhoneNumber:
		b = append(b, `{"phoneNumber":`...)
		b = appendJSONString(b, id.ID)
	case calls.KindTeamsUser:
		cloud := id.Cloud
		if cloud == "" {
			cloud = calls.CloudPublic
		}
		b = append(b, `{"microsoftTeamsUserId":`...)
		b = appendJSONString(b, id.ID)
		b = append(b, `,"isAnonymous":`...)
		b = appendJSONBool(b, id.IsAnonymous)
		b = append(b, `,"cloud":`...)
		b = appendJSONString(b, cloud)
	default:
		b = append(b, `{"id":`...)
		b = appendJSONString(b, id.ID)
	}
	b = append(b, `,"rawId":`...)
	b = appendJSONString(b, id.RawID())
	return append(b, '}')
}

func appendCallerInfo(b []byte, ci calls.CallerInfo) []byte {
	b = append(b, `{"identifier":`...)
	b = appendIdentifier(b, ci.Identifier)
	if ci.DisplayName != "" {
		b = append(b, `,"displayName":`...)
		b = appendJSONString(b, ci.DisplayName)
	}
	return append(b, '}')
}

func appendEndReason(b []byte, r calls.EndReason) []byte {
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, `,"subCode":`...)
	b = strconv.AppendInt(b, int64(r.SubCode), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, r.Message)
	return append(b, '}')
}

func appendParticipant(b []byte, p *calls.Participant) []byte {
	b = append(b, `{"identifier":`...)
	b = appendIdentifier(b, p.Identifier)
	b = append(b, `,"rawId":`...)
	b = appendJSONString(b, p.RawID)
	if p.DisplayName != "" {
		b = append(b, `,"displayName":`...)
		b = appendJSONString(b, p.DisplayName)
	}
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(p.State))
	b = append(b, `,"isMuted":`...)
	b = appendJSONBool(b, p.IsMuted)
	b = append(b, `,"isSpeaking":`...)
	b = appendJSONBool(b, p.IsSpeaking)
	if p.MonitorMode != "" {
		b = append(b, `,"monitorMode":`...)
		b = appendJSONString(b, string(p.MonitorMode))
	}
	if p.CallEndReason != nil {
		b = append(b, `,"callEndReason":`...)
		b = appendEndReason(b, *p.CallEndReason)
	}
	b = append(b, `,"endpointDetails":`...)
	if p.EndpointDetails == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, e := range p.EndpointDetails {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"participantId":`...)
			b = appendJSONString(b, e.ParticipantID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendOptTime appends ,"name":time when t is set.
func appendOptTime(b []byte, name string, t *time.Time) ([]byte, error) {
	if t == nil {
		return b, nil
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONTime(b, *t)
}

// appendCall appends c as encoding/json encodes a calls.Call.
func appendCall(b []byte, c *calls.Call) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"serverCallId":`...)
	b = appendJSONString(b, c.ServerCallID)
	b = append(b, `,"agentId":`...)
	b = appendJSONString(b, c.AgentID)
	b = append(b, `,"direction":`...)
	b = appendJSONString(b, string(c.Direction))
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(c.Kind))
	if c.GroupID != "" {
		b = append(b, `,"groupId":`...)
		b = appendJSONString(b, c.GroupID)
	}
	if c.RoomID != "" {
		b = append(b, `,"roomId":`...)
		b = appendJSONString(b, c.RoomID)
	}
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(c.State))
	b = append(b, `,"isActive":`...)
	b = appendJSONBool(b, c.IsActive)
	b = append(b, `,"isMuted":`...)
	b = appendJSONBool(b, c.IsMuted)
	b = append(b, `,"isIncomingAudioMuted":`...)
	b = appendJSONBool(b, c.IsIncomingAudioMuted)
	b = append(b, `,"callerInfo":`...)
	b = appendCallerInfo(b, c.CallerInfo)
	b = append(b, `,"remoteParticipants":`...)
	if c.RemoteParticipants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.RemoteParticipants {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendParticipant(b, &c.RemoteParticipants[i])
		}
		b = append(b, ']')
	}
	if c.CallEndReason != nil {
		b = append(b, `,"callEndReason":`...)
		b = appendEndReason(b, *c.CallEndReason)
	}
	b = append(b, `,"startTime":`...)
	b, err := appendJSONTime(b, c.StartTime)
	if err != nil {
		return b, err
	}
	if b, err = appendOptTime(b, "connectedTime", c.ConnectedTime); err != nil {
		return b, err
	}
	if b, err = appendOptTime(b, "heldTime", c.HeldTime); err != nil {
		return b, err
	}
	if b, err = appendOptTime(b, "endTime", c.EndTime); err != nil {
		return b, err
	}
	if c.MonitorMode != "" {
		b = append(b, `,"monitorMode":`...)
		b = appendJSONString(b, string(c.MonitorMode))
	}
	if c.MonitoredCallID != "" {
		b = append(b, `,"monitoredCallId":`...)
		b = appendJSONString(b, c.MonitoredCallID)
	}
	if c.Lobby {
		b = append(b, `,"lobby":true`...)
	}
	if c.IsOrganizer {
		b = append(b, `,"isOrganizer":true`...)
	}
	if c.ConsultCallID != "" {
		b = append(b, `,"consultCallId":`...)
		b = appendJSONString(b, c.ConsultCallID)
	}
	if c.WrapUpCode != "" {
		b = append(b, `,"wrapUpCode":`...)
		b = appendJSONString(b, c.WrapUpCode)
	}
	if len(c.Queues) > 0 {
		b = append(b, `,"queues":[`...)
		for i, q := range c.Queues {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, q)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendEvent appends ev as it goes on the wire, without the seq each
// connection adds: what encoding/json makes of wireEvent.
func appendEvent(b []byte, ev *calls.Event) ([]byte, error) {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, string(ev.Type))
	b = append(b, `,"at":`...)
	b, err := appendJSONTime(b, ev.At)
	if err != nil {
		return b, err
	}
	b = append(b, `,"agentId":`...)
	b = appendJSONString(b, ev.AgentID)
	if ev.CallID != "" {
		b = append(b, `,"callId":`...)
		b = appendJSONString(b, ev.CallID)
	}
	if ev.Actor != nil {
		b = append(b, `,"actor":{"kind":`...)
		b = appendJSONString(b, string(ev.Actor.Kind))
		if ev.Actor.RawID != "" {
			b = append(b, `,"rawId":`...)
			b = appendJSONString(b, ev.Actor.RawID)
		}
		if ev.Actor.DisplayName != "" {
			b = append(b, `,"displayName":`...)
			b = appendJSONString(b, ev.Actor.DisplayName)
		}
		b = append(b, '}')
	}
	b = append(b, `,"data":`...)
	switch d := ev.Data.(type) {
	case calls.StateChangedData:
		b = append(b, `{"oldState":`...)
		b = appendJSONString(b, string(d.OldState))
		b = append(b, `,"state":`...)
		b = appendJSONString(b, string(d.State))
		b = append(b, `,"isActive":`...)
		b = appendJSONBool(b, d.IsActive)
		b = append(b, '}')
	case calls.ConnectionStateData:
		b = append(b, `{"oldState":`...)
		b = appendJSONString(b, string(d.OldState))
		b = append(b, `,"newState":`...)
		b = appendJSONString(b, string(d.NewState))
		if d.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, d.Reason)
		}
		b = append(b, '}')
	default:
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return b, err
		}
		b = append(b, data...)
	}
	return append(b, '}'), nil
}

// A bufPool keeps encoding buffers; buffers that grew past maxPooledBuf
// are let go rather than kept.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
