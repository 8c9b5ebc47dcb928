package api

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

func TestMergeSnapshots(t *testing.T) {
	agent := func(id string, st calls.ConnectionState) calls.AgentStatus {
		return calls.AgentStatus{RawID: id, ConnectionState: st}
	}
	ids := func(s calls.Snapshot) (cs, ics, as []string) {
		for _, c := range s.Calls {
			cs = append(cs, c.ID)
		}
		for _, c := range s.IncomingCalls {
			ics = append(ics, c.ID)
		}
		for _, a := range s.Agents {
			as = append(as, a.RawID+"="+string(a.ConnectionState))
		}
		return
	}
	local := calls.Snapshot{
		ConnectionState: calls.Connected, Calls: []calls.Call{{ID: "c1"}}, IncomingCalls: []calls.IncomingCall{{ID: "i1"}},
		Agents: []calls.AgentStatus{agent("8:acs:b", calls.Connected), agent("8:acs:d", calls.Disconnected)},
	}
	tests := []struct {
		name              string
		remote            []calls.Snapshot
		calls, inc, agent []string
	}{
		{"none", nil, []string{"c1"}, []string{"i1"}, []string{"8:acs:b=Connected", "8:acs:d=Disconnected"}},
		{"two nodes", []calls.Snapshot{
			{Calls: []calls.Call{{ID: "c2"}}, Agents: []calls.AgentStatus{agent("8:acs:a", calls.Connected)}},
			{IncomingCalls: []calls.IncomingCall{{ID: "i2"}}, Agents: []calls.AgentStatus{agent("8:acs:c", calls.Connected)}},
		}, []string{"c1", "c2"}, []string{"i1", "i2"}, []string{"8:acs:a=Connected", "8:acs:b=Connected", "8:acs:c=Connected", "8:acs:d=Disconnected"}},
		{"an identity that moved: once, connected wins", []calls.Snapshot{
			{Calls: []calls.Call{{ID: "c1"}}, Agents: []calls.AgentStatus{agent("8:acs:d", calls.Connected), agent("8:acs:b", calls.Disconnected)}},
		}, []string{"c1"}, []string{"i1"}, []string{"8:acs:b=Connected", "8:acs:d=Connected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeSnapshots(local, tt.remote)
			cs, ics, as := ids(got)
			if !slices.Equal(cs, tt.calls) || !slices.Equal(ics, tt.inc) || !slices.Equal(as, tt.agent) {
				t.Errorf("calls %v, incoming %v, agents %v; want %v, %v, %v", cs, ics, as, tt.calls, tt.inc, tt.agent)
			}
			if len(local.Calls) != 1 || len(local.Agents) != 2 || local.Agents[1].ConnectionState != calls.Disconnected {
				t.Errorf("the local snapshot was changed: %+v", local)
			}
		})
	}
}
