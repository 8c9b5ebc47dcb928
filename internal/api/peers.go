package api

import (
	"context"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/internal/calls"
)

// Peers are the other nodes of a cluster, as a supervisor's connection
// needs them: their part of the snapshot. Their events reach the hub
// through DeliverRemote.
type Peers interface {
	// Snapshots answers every other node's supervised snapshot
	// (calls.Switchboard.SupervisedSnapshot) that arrived in time, and
	// holds back the other nodes' events (DeliverRemote) until release is
	// called, so that the connection subscribed meanwhile misses none of
	// them. An event a node published just before its snapshot may come
	// after it too (at least once, never lost).
	Snapshots(ctx context.Context) (snaps []calls.Snapshot, release func())
}

// mergeSnapshots adds the other nodes' calls and agents to a supervisor's
// snapshot of this node. A call or agent on several nodes (an identity
// that moved) is kept once: the first met, or for an agent the first
// connected one.
func mergeSnapshots(local calls.Snapshot, remote []calls.Snapshot) calls.Snapshot {
	out := local
	out.Calls = slices.Clone(local.Calls)
	out.IncomingCalls = slices.Clone(local.IncomingCalls)
	out.Agents = slices.Clone(local.Agents)
	seenCall := map[string]bool{}
	for _, c := range out.Calls {
		seenCall[c.ID] = true
	}
	for _, c := range out.IncomingCalls {
		seenCall[c.ID] = true
	}
	agents := map[string]int{}
	for i, a := range out.Agents {
		agents[a.RawID] = i
	}
	for _, r := range remote {
		for _, c := range r.Calls {
			if !seenCall[c.ID] {
				seenCall[c.ID] = true
				out.Calls = append(out.Calls, c)
			}
		}
		for _, c := range r.IncomingCalls {
			if !seenCall[c.ID] {
				seenCall[c.ID] = true
				out.IncomingCalls = append(out.IncomingCalls, c)
			}
		}
		for _, a := range r.Agents {
			i, ok := agents[a.RawID]
			switch {
			case !ok:
				agents[a.RawID] = len(out.Agents)
				out.Agents = append(out.Agents, a)
			case out.Agents[i].ConnectionState != calls.Connected && a.ConnectionState == calls.Connected:
				out.Agents[i] = a
			}
		}
	}
	slices.SortStableFunc(out.Agents, func(a, b calls.AgentStatus) int { return strings.Compare(a.RawID, b.RawID) })
	return out
}
