package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// movingOwner is a Forwarder whose leases move while a request is on its
// way (a race real leases give too rarely to test): Owner answers owners
// in turn, the last one repeating; Forward runs the request on the node's
// server, and a node it does not know answers that it is not the owner.
type movingOwner struct {
	mu     sync.Mutex
	owners []string
	err    error
	nodes  map[string]*api.Server
	asked  []string
	calls  map[string]string // live call id → the node the history says runs it
	peers  []string          // the nodes to ask about a call the history does not know
	agents map[string]string // rawId → the other node that owns it
}

func (m *movingOwner) AgentNode(_ context.Context, identity string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.agents[identity], nil
}

func (m *movingOwner) CallNodes(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.calls[id]; ok {
		return []string{n}, nil
	}
	return m.peers, nil
}

func (m *movingOwner) Owner(context.Context, string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return "", m.err
	}
	o := m.owners[0]
	if len(m.owners) > 1 {
		m.owners = m.owners[1:]
	}
	return o, nil
}

func (m *movingOwner) Forward(ctx context.Context, node string, req api.ForwardRequest) (api.ForwardResponse, error) {
	m.mu.Lock()
	m.asked = append(m.asked, node)
	srv := m.nodes[node]
	m.mu.Unlock()
	if srv == nil {
		return api.ForwardResponse{NotOwner: "?"}, nil
	}
	return srv.ServeForwarded(ctx, req), nil
}

// TestForwardRetriesOnce: when the owner a request was forwarded to no
// longer owns its identity, the entry node reads the owner again and
// forwards once more, or runs the request itself when the identity is now
// its own; a second miss, or no owner known, is 503.
func TestForwardRetriesOnce(t *testing.T) {
	owner := newServer(t, serverOptions{})
	for _, tt := range []struct {
		name   string
		owners []string
		err    error
		status int
		code   calls.Code
		asked  []string
		ranOn  string // "owner" or "entry": where the call was started
	}{
		{name: "moved to another node", owners: []string{"gone", "owner"}, status: http.StatusCreated, asked: []string{"gone", "owner"}, ranOn: "owner"},
		{name: "moved here", owners: []string{"gone", ""}, status: http.StatusCreated, asked: []string{"gone"}, ranOn: "entry"},
		{name: "moved twice", owners: []string{"gone", "gone again"}, status: http.StatusServiceUnavailable, code: calls.CodeUnavailable, asked: []string{"gone", "gone again"}},
		{name: "owner unknown", err: errors.New("NATS is out of reach"), status: http.StatusServiceUnavailable, code: calls.CodeUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw := &movingOwner{owners: tt.owners, err: tt.err, nodes: map[string]*api.Server{"owner": owner.api}}
			entry := newServer(t, serverOptions{forward: fw})
			user := "user-" + strings.ReplaceAll(tt.name, " ", "-")
			token := entry.token(user, calls.RoleAgent)
			body := map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}
			if tt.code != "" {
				entry.wantError(http.MethodPost, "/api/calls", token, body, tt.status, tt.code)
			} else {
				entry.do(http.MethodPost, "/api/calls", token, body, tt.status, nil)
			}
			if len(fw.asked) != len(tt.asked) || (len(tt.asked) > 0 && fw.asked[len(fw.asked)-1] != tt.asked[len(tt.asked)-1]) {
				t.Errorf("forwarded to %v, want %v", fw.asked, tt.asked)
			}
			p := calls.Principal{Identifier: calls.CommunicationUser(user), Role: calls.RoleAgent}
			for _, n := range []struct {
				name string
				srv  *server
			}{{"owner", owner}, {"entry", entry}} {
				list, err := n.srv.sb.ListCalls(context.Background(), p, "")
				if want := map[bool]int{true: 1, false: 0}[n.name == tt.ranOn]; err != nil || len(list) != want {
					t.Errorf("%s has %d calls of %s (%v), want %d", n.name, len(list), user, err, want)
				}
			}
		})
	}
}

// TestForwardedAnswerNotHeldByEntryStore: a change the owner made and
// answered is answered as is: the entry node's history store, which did
// not record it, does not hold it back (here it could never say a change
// is on disk).
func TestForwardedAnswerNotHeldByEntryStore(t *testing.T) {
	owner := newServer(t, serverOptions{})
	fw := &movingOwner{owners: []string{"owner"}, nodes: map[string]*api.Server{"owner": owner.api}}
	entry := newServer(t, serverOptions{forward: fw,
		durable: func(context.Context) error { return errors.New("the entry's disk is full") }})
	token := entry.token("dora", calls.RoleAgent)
	var call calls.Call
	entry.do(http.MethodPost, "/api/calls", token, map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}, http.StatusCreated, &call)
	if call.ID == "" || len(fw.asked) != 1 {
		t.Fatalf("call %+v, forwarded to %v", call, fw.asked)
	}
}

// TestSupervisorRequestGoesToCallNode: a supervisor's request naming a
// call runs on the node that runs the call, wherever the supervisor is
// owned: forwarded to the node the history names, or, when the history
// does not know the call, to each other node in turn until one runs it;
// run on the entry node when the call is its own. Any other request, and
// one naming a call no node runs, goes to the identity's owner.
func TestSupervisorRequestGoesToCallNode(t *testing.T) {
	callNode, idle := newServer(t, serverOptions{}), newServer(t, serverOptions{})
	agent := callNode.token("erin", calls.RoleAgent)
	var there calls.Call
	callNode.do(http.MethodPost, "/api/calls", agent, map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}, http.StatusCreated, &there)

	for _, tt := range []struct {
		name      string
		owner     string // the supervisor's owner: "" for the entry node
		method    string
		path      string // %s: the call's id
		inHistory bool   // the history names the call's node
		localCall bool   // the path names a call of the entry node
		unknown   bool   // no node runs the call
		status    int
		asked     []string
	}{
		{name: "call elsewhere, supervisor here", method: http.MethodGet, path: "/api/calls/%s", inHistory: true, status: http.StatusOK, asked: []string{"callnode"}},
		{name: "call elsewhere, supervisor on a third node", owner: "third", method: http.MethodPost, path: "/api/calls/%s/mute-all", inHistory: true, status: http.StatusOK, asked: []string{"callnode"}},
		{name: "call here, supervisor elsewhere", owner: "third", method: http.MethodGet, path: "/api/calls/%s", localCall: true, status: http.StatusOK},
		{name: "call unknown", method: http.MethodGet, path: "/api/calls/%s", unknown: true, status: http.StatusNotFound, asked: []string{"idle", "callnode"}},
		{name: "not a call's route", owner: "callnode", method: http.MethodGet, path: "/api/calls", status: http.StatusOK, asked: []string{"callnode"}},
		// Last: it ends the call.
		{name: "call not in the history yet", method: http.MethodPost, path: "/api/calls/%s/hangup", status: http.StatusOK, asked: []string{"idle", "callnode"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw := &movingOwner{owners: []string{tt.owner}, calls: map[string]string{},
				nodes: map[string]*api.Server{"callnode": callNode.api, "idle": idle.api}, peers: []string{"idle", "callnode"}}
			if tt.inHistory {
				fw.calls[there.ID] = "callnode"
			}
			entry := newServer(t, serverOptions{forward: fw})
			id := there.ID
			switch {
			case tt.localCall:
				var here calls.Call
				fw.owners = []string{""}
				entry.do(http.MethodPost, "/api/calls", entry.token("fred", calls.RoleAgent), map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}, http.StatusCreated, &here)
				fw.owners = []string{tt.owner}
				id = here.ID
			case tt.unknown:
				id = "00000000-0000-4000-8000-000000000000"
			}
			var body any
			if tt.method == http.MethodPost {
				body = map[string]bool{"forEveryone": true}
			}
			entry.do(tt.method, strings.ReplaceAll(tt.path, "%s", id), entry.token("sam", calls.RoleSupervisor), body, tt.status, nil)
			if !slices.Equal(fw.asked, tt.asked) {
				t.Errorf("forwarded to %v, want %v", fw.asked, tt.asked)
			}
		})
	}
}

// TestForwardedToCallNodeChecked: a request sent to a node as the call's
// node runs only if it is a supervisor's and names that call, and the
// node runs the call; else it is refused, or answered as not run here.
func TestForwardedToCallNodeChecked(t *testing.T) {
	srv := newServer(t, serverOptions{})
	agent := srv.token("gina", calls.RoleAgent)
	var call calls.Call
	srv.do(http.MethodPost, "/api/calls", agent, map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}, http.StatusCreated, &call)
	sup := api.Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("sam"), Role: calls.RoleSupervisor}}
	gina := api.Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("gina"), Role: calls.RoleAgent}}
	for _, tt := range []struct {
		name   string
		sess   api.Session
		target string
		call   string
		status int
		notRun bool // answered "not here" (NotOwner), not run
	}{
		{name: "a supervisor's, naming its call", sess: sup, target: "/api/calls/" + call.ID, call: call.ID, status: http.StatusOK},
		{name: "a supervisor's, naming a call this node does not run", sess: sup, target: "/api/calls/" + "00000000-0000-4000-8000-000000000000", call: "00000000-0000-4000-8000-000000000000", notRun: true},
		{name: "an agent's", sess: gina, target: "/api/calls/" + call.ID, call: call.ID, status: http.StatusBadRequest},
		{name: "naming another call", sess: sup, target: "/api/calls/" + call.ID, call: "other", status: http.StatusBadRequest},
		{name: "not a call's route", sess: sup, target: "/api/calls", call: call.ID, status: http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := srv.api.ServeForwarded(context.Background(), api.ForwardRequest{Method: http.MethodGet, Target: tt.target,
				Header: http.Header{}, Session: tt.sess, Call: tt.call})
			if resp.Status != tt.status || (resp.NotOwner != "") != tt.notRun {
				t.Errorf("status %d %s, not run %q; want %d, not run %v", resp.Status, resp.Body, resp.NotOwner, tt.status, tt.notRun)
			}
		})
	}
}

// TestSupervisorListGoesToAgentNode: a supervisor's list of an agent's
// calls runs on the node that owns the agent, wherever the supervisor is
// owned (any other node would answer an empty list), or here when no
// other node owns the agent; a list sent to a node that no longer owns
// the agent is answered by the entry node.
func TestSupervisorListGoesToAgentNode(t *testing.T) {
	agentNode := newServer(t, serverOptions{})
	var call calls.Call
	agentNode.do(http.MethodPost, "/api/calls", agentNode.token("hana", calls.RoleAgent), map[string]any{"participants": []map[string]string{{"id": "8:echo123"}}}, http.StatusCreated, &call)
	for _, tt := range []struct {
		name   string
		owner  string // the supervisor's owner
		agents map[string]string
		want   int // calls listed
		asked  []string
	}{
		{name: "agent elsewhere, supervisor here", agents: map[string]string{"8:acs:hana": "agentnode"}, want: 1, asked: []string{"agentnode"}},
		{name: "agent elsewhere, supervisor on a third node", owner: "third", agents: map[string]string{"8:acs:hana": "agentnode"}, want: 1, asked: []string{"agentnode"}},
		{name: "agent here or nowhere, supervisor elsewhere", owner: "third", want: 0},
		{name: "agent's lease moved", agents: map[string]string{"8:acs:hana": "gone"}, want: 0, asked: []string{"gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw := &movingOwner{owners: []string{tt.owner}, agents: tt.agents, nodes: map[string]*api.Server{"agentnode": agentNode.api}}
			entry := newServer(t, serverOptions{forward: fw})
			var list []calls.Call
			entry.do(http.MethodGet, "/api/calls?agent="+url.QueryEscape("8:acs:hana"), entry.token("sam", calls.RoleSupervisor), nil, http.StatusOK, &list)
			if len(list) != tt.want || !slices.Equal(fw.asked, tt.asked) {
				t.Errorf("%d calls listed, forwarded to %v; want %d, %v", len(list), fw.asked, tt.want, tt.asked)
			}
		})
	}
	sup := api.Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("sam"), Role: calls.RoleSupervisor}}
	hana := api.Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("hana"), Role: calls.RoleAgent}}
	for _, tt := range []struct {
		name   string
		sess   api.Session
		target string
		status int
	}{
		{name: "an agent's list sent as for an agent", sess: hana, target: "/api/calls?agent=8%3Aacs%3Ahana", status: http.StatusBadRequest},
		{name: "a list of another agent", sess: sup, target: "/api/calls?agent=8%3Aacs%3Aother", status: http.StatusBadRequest},
		{name: "a supervisor's list", sess: sup, target: "/api/calls?agent=8%3Aacs%3Ahana", status: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := agentNode.api.ServeForwarded(context.Background(), api.ForwardRequest{Method: http.MethodGet, Target: tt.target,
				Header: http.Header{}, Session: tt.sess, Agent: "8:acs:hana"})
			if resp.Status != tt.status {
				t.Errorf("status %d %s, want %d", resp.Status, resp.Body, tt.status)
			}
		})
	}
}
