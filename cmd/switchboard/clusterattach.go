package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
)

// streamAttacher is the API's Attacher on the cluster, or nil without one:
// an agent's event stream opened on a node that does not own the agent is
// attached on the owner.
func (m *Main) streamAttacher() api.Attacher {
	if m.cluster == nil {
		return nil
	}
	return clusterAttacher{m.cluster}
}

// attachPrincipal is what an attach carries as its principal: the
// session the entry node verified and the seq its stream was opened with.
type attachPrincipal struct {
	api.Session
	SinceSeq *uint64 `json:"sinceSeq,omitempty"`
}

// attachError is an owner's *calls.Error on its way back to the node that
// holds the stream.
type attachError struct {
	Code    calls.Code `json:"code"`
	Message string     `json:"message"`
}

// serveAttach starts attaching here the streams other nodes hold for
// identities this node owns.
func (m *Main) serveAttach() error {
	if m.cluster == nil {
		return nil
	}
	return m.cluster.ServeAttach(func(ctx context.Context, req cluster.AttachRequest) (cluster.AttachResponse, func(string)) {
		var p attachPrincipal
		if err := json.Unmarshal(req.Principal, &p); err != nil {
			return cluster.AttachResponse{Refused: "malformed principal: " + err.Error()}, nil
		}
		att, err := m.api.AttachHere(ctx, p.Session, p.SinceSeq)
		var cerr *calls.Error
		switch {
		case errors.Is(err, api.ErrNotOwner):
			return cluster.AttachResponse{NotOwner: "?"}, nil
		case errors.As(err, &cerr):
			body, _ := json.Marshal(attachError{Code: cerr.Code, Message: cerr.Message})
			return cluster.AttachResponse{Error: body}, nil
		case err != nil:
			body, _ := json.Marshal(attachError{Code: calls.CodeInternal, Message: "internal error"})
			m.Logger.Error("attach a stream of another node", "from", req.From, "agent_id", req.Identity, "err", err)
			return cluster.AttachResponse{Error: body}, nil
		}
		body, err := json.Marshal(att.Snapshot)
		if err != nil {
			att.Detach("")
			m.Logger.Error("encode a snapshot for another node", "agent_id", req.Identity, "err", err)
			body, _ := json.Marshal(attachError{Code: calls.CodeInternal, Message: "internal error"})
			return cluster.AttachResponse{Error: body}, nil
		}
		return cluster.AttachResponse{Snapshot: body, Seq: att.Seq, Resumable: att.Resumable}, att.Detach
	})
}

// clusterAttacher adapts the cluster node to the API's Attacher.
type clusterAttacher struct{ node *cluster.Node }

func (a clusterAttacher) AttachRemote(ctx context.Context, owner string, sess api.Session, since *uint64, lost func(error)) (api.Attached, error) {
	identity := sess.Identifier.RawID()
	principal, err := json.Marshal(attachPrincipal{Session: sess, SinceSeq: since})
	if err != nil {
		return api.Attached{}, fmt.Errorf("encode the principal: %w", err)
	}
	att, resp, err := a.node.Attach(ctx, owner, identity, principal, lost)
	switch {
	case resp.NotOwner != "":
		a.node.Forget(identity)
		return api.Attached{}, fmt.Errorf("attach on node %s: %w", owner, api.ErrNotOwner)
	case len(resp.Error) > 0:
		var e attachError
		if jerr := json.Unmarshal(resp.Error, &e); jerr != nil || e.Code == "" {
			return api.Attached{}, fmt.Errorf("attach on node %s: malformed error %s", owner, resp.Error)
		}
		return api.Attached{}, &calls.Error{Code: e.Code, Message: e.Message, Op: "attach on node " + owner}
	case err != nil:
		a.node.Forget(identity) // ask the bucket next time
		return api.Attached{}, err
	}
	var snap calls.Snapshot
	if err := json.Unmarshal(resp.Snapshot, &snap); err != nil {
		att.Detach("")
		return api.Attached{}, fmt.Errorf("attach on node %s: malformed snapshot: %w", owner, err)
	}
	return api.Attached{Snapshot: snap, Seq: resp.Seq, Resumable: resp.Resumable, Detach: att.Detach}, nil
}
