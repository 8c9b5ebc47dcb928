package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// Forwarder carries requests to the node that owns their identity, in a
// cluster (cmd/switchboard wires internal/cluster to it). Nil in Config:
// every request runs here.
type Forwarder interface {
	// Owner answers the node that handles identity's requests: "" for
	// this node (which holds the identity's lease from then on, acquiring
	// it when no node held it), else the owning node's id.
	Owner(ctx context.Context, identity string) (string, error)
	// Forward runs req on node and answers its response. It answers an
	// error when the node could not be asked or did not answer.
	Forward(ctx context.Context, node string, req ForwardRequest) (ForwardResponse, error)
	// CallNodes answers the other nodes that may run the live call
	// callID, for a supervisor's request that names a call this node does
	// not run, in the order to ask them: the node the shared history
	// records for it, when it knows one, else every other live node. None:
	// the request goes to the identity's owner, as any other.
	CallNodes(ctx context.Context, callID string) ([]string, error)
	// AgentNode answers the other node that owns identity now, for a
	// supervisor's list of an agent's calls: "" when this node does or
	// no node does. Unlike Owner it never takes the identity.
	AgentNode(ctx context.Context, identity string) (string, error)
}

// ForwardRequest is an authenticated request on its way to the node that
// owns its identity: the verified session travels, never the token.
type ForwardRequest struct {
	Method string
	// Target is the path and query.
	Target  string
	Header  http.Header
	Body    []byte
	Client  string
	Session Session
	// Call, when set, names the live call the request acts on: it was
	// sent to the node that runs that call (a supervisor's request), not
	// to its identity's owner, and runs there whoever owns the identity.
	Call string
	// Agent, when set, names the agent whose calls a supervisor's list
	// asks for (GET /api/calls?agent=): it was sent to that agent's
	// owner, and runs there whoever owns the supervisor.
	Agent string
}

// ForwardResponse is the owner's answer.
type ForwardResponse struct {
	Status int
	Header http.Header
	Body   []byte
	// NotOwner, when set, says the node did not run the request because it
	// no longer owns the identity; it names the owner it knows of.
	NotOwner string
}

// codeWrongNode answers an event stream opened on a node that does not own
// its identity (events across nodes are a later phase).
const codeWrongNode calls.Code = "wrong_node"

// OwnerHeader names the owning node on a wrong_node answer.
const OwnerHeader = "X-Switchboard-Owner"

// forwardedHeaders are the request headers a forwarded request keeps
// (never Authorization: the session travels instead).
var forwardedHeaders = []string{"Content-Type", "Accept"}

// forwarded marks a request that another node forwarded here: its session
// was verified there. Only ServeForwarded puts it in a request's context,
// so no HTTP client can.
type forwarded struct {
	sess     Session
	notOwner string // set when this node no longer owns the identity
	call     string // set when sent to the node that runs this call (ForwardRequest.Call)
	agent    string // set when sent to this agent's owner (ForwardRequest.Agent)
}

type forwardedKey struct{}

// route runs a verified request here when this node owns its identity, or
// forwards it to the owner and writes the owner's answer unchanged. A
// supervisor's request naming a live call runs on the node that runs the
// call instead (callRoute).
func (s *Server) route(c echo.Context, sess Session, next echo.HandlerFunc) error {
	fw := s.cfg.Forward
	req := c.Request()
	ctx := req.Context()
	if here, node := s.recordingRoute(c); here {
		return next(&sessionContext{Context: c, sess: sess})
	} else if node != "" {
		resp, err := fw.Forward(ctx, node, s.forwardRequest(req, nil, sess, c.Param("id")))
		if err != nil {
			return &calls.Error{Code: calls.CodeUnavailable, Op: "forward to the recording's node", Err: err,
				Message: fmt.Sprintf("node %s, which wrote this recording, did not answer; try again", node)}
		}
		if resp.NotOwner == "" {
			return writeForwarded(c, resp)
		}
		// That node cannot read it either: routed as any other request.
	}
	if nodes, here, err := s.callRoute(c, sess); err != nil {
		return err
	} else if here {
		return next(&sessionContext{Context: c, sess: sess})
	} else if len(nodes) > 0 {
		body, err := readBody(req)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		freq := s.forwardRequest(req, body, sess, c.Param("id"))
		for _, node := range nodes {
			resp, err := fw.Forward(ctx, node, freq)
			if err != nil {
				return &calls.Error{Code: calls.CodeUnavailable, Op: "forward to the call's node", Err: err,
					Message: fmt.Sprintf("node %s, which may run this call, did not answer; try again", node)}
			}
			if resp.NotOwner == "" {
				return writeForwarded(c, resp)
			}
			// That node does not run the call: ask the next one.
		}
		// No node runs it: the identity's owner answers, as any other.
	}
	if node, agent, err := s.agentRoute(c, sess); err != nil {
		return err
	} else if agent != "" && node == "" {
		return next(&sessionContext{Context: c, sess: sess})
	} else if node != "" {
		body, err := readBody(req)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		freq := s.forwardRequest(req, body, sess, "")
		freq.Agent = agent
		resp, err := fw.Forward(ctx, node, freq)
		if err != nil {
			return &calls.Error{Code: calls.CodeUnavailable, Op: "forward to the agent's node", Err: err,
				Message: fmt.Sprintf("node %s, which serves this agent, did not answer; try again", node)}
		}
		if resp.NotOwner == "" {
			return writeForwarded(c, resp)
		}
		// The agent's lease moved: this node answers, as for any list.
		return next(&sessionContext{Context: c, sess: sess})
	}
	identity := sess.Identifier.RawID()
	owner, err := fw.Owner(ctx, identity)
	if err != nil {
		return &calls.Error{Code: calls.CodeUnavailable, Op: "find the identity's node", Err: err,
			Message: "this node cannot tell which node serves this identity now; try again"}
	}
	if owner == "" {
		return next(&sessionContext{Context: c, sess: sess})
	}
	if c.Path() == "/api/events" {
		if s.cfg.Attach != nil {
			return next(&sessionContext{Context: c, sess: sess, owner: owner})
		}
		return wrongNode(c, owner)
	}
	body, err := readBody(req)
	if err != nil {
		return err
	}
	freq := s.forwardRequest(req, body, sess, "")
	resp, err := fw.Forward(ctx, owner, freq)
	if err == nil && resp.NotOwner != "" {
		// The lease moved since we read it: read the owner again, once.
		if owner, err = fw.Owner(ctx, identity); err == nil {
			if owner == "" {
				req.Body = io.NopCloser(bytes.NewReader(body))
				return next(&sessionContext{Context: c, sess: sess})
			}
			resp, err = fw.Forward(ctx, owner, freq)
			if err == nil && resp.NotOwner != "" {
				err = fmt.Errorf("node %s does not own %s either", owner, identity)
			}
		}
	}
	if err != nil {
		return &calls.Error{Code: calls.CodeUnavailable, Op: "forward to the identity's node", Err: err,
			Message: fmt.Sprintf("node %s, which serves this identity, did not answer; try again", owner)}
	}
	return writeForwarded(c, resp)
}

// callRoute tells where a supervisor's request naming a call (a route
// under /api/calls/:id) runs: here when this node runs the call, else on
// whichever of nodes runs it (asked in turn); neither (no other node to
// ask, or the request is not such a request) leaves it to the identity's
// owner. A supervisor may act on any call, so the call's node, not the
// supervisor's, has it; an agent's calls are on its owner.
func (s *Server) callRoute(c echo.Context, sess Session) (nodes []string, here bool, err error) {
	if sess.Role != calls.RoleSupervisor || !strings.HasPrefix(c.Path(), "/api/calls/:id") {
		return nil, false, nil
	}
	id := c.Param("id")
	ctx := c.Request().Context()
	if s.runsCall(ctx, sess, id) {
		return nil, true, nil
	}
	nodes, err = s.cfg.Forward.CallNodes(ctx, id)
	if err != nil {
		return nil, false, &calls.Error{Code: calls.CodeUnavailable, Op: "find the call's node", Err: err,
			Message: "this node cannot tell which node runs this call now; try again"}
	}
	s.log.Debug("a supervisor's request naming a call this node does not run", "call_id", id, "nodes", nodes)
	return nodes, false, nil
}

// agentRoute tells where a supervisor's list of an agent's calls (GET
// /api/calls?agent=X) runs: on the node that owns the agent (node), or
// here when this node owns it or no node does (node "", agent set). Not
// such a request: agent "". An agent's live calls are on its owner, so
// any other node would answer an empty list.
func (s *Server) agentRoute(c echo.Context, sess Session) (node, agent string, err error) {
	if sess.Role != calls.RoleSupervisor {
		return "", "", nil
	}
	agent = agentOfRequest(c)
	if agent == "" || agent == sess.Identifier.RawID() {
		return "", "", nil
	}
	node, err = s.cfg.Forward.AgentNode(c.Request().Context(), agent)
	if err != nil {
		return "", "", &calls.Error{Code: calls.CodeUnavailable, Op: "find the agent's node", Err: err,
			Message: "this node cannot tell which node serves this agent now; try again"}
	}
	return node, agent, nil
}

// agentOfRequest is the agent a supervisor's request names, to run on
// that agent's owner: the list of her calls (GET /api/calls?agent=X) and
// her status (agentStatusPath); "" for any other request.
func agentOfRequest(c echo.Context) string {
	switch {
	case c.Path() == "/api/calls" && c.Request().Method == http.MethodGet:
		return c.QueryParam("agent")
	case c.Path() == agentStatusPath:
		raw, err := pathParam(c, "rawId")
		if err != nil {
			return ""
		}
		return raw
	}
	return ""
}

// runsCall says whether this node runs the live call id, as the
// supervisor sess sees it.
func (s *Server) runsCall(ctx context.Context, sess Session, id string) bool {
	_, err := s.cfg.Switchboard.GetCall(ctx, sess.Principal, id)
	return err == nil
}

// readBody reads a request's body to forward it.
func readBody(req *http.Request) ([]byte, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		if isTooLarge(err) {
			return nil, errTooLarge
		}
		return nil, calls.Errorf(calls.CodeInvalidRequest, "the request body could not be read")
	}
	return body, nil
}

// forwardRequest is req, whose body was read, on its way to another node
// as sess; call names the call it acts on when it goes to the call's node.
func (s *Server) forwardRequest(req *http.Request, body []byte, sess Session, call string) ForwardRequest {
	freq := ForwardRequest{Method: req.Method, Target: req.URL.RequestURI(), Header: http.Header{},
		Body: body, Client: req.RemoteAddr, Session: sess, Call: call}
	for _, h := range forwardedHeaders {
		if v := req.Header.Values(h); len(v) > 0 {
			freq.Header[h] = v
		}
	}
	return freq
}

// writeForwarded writes another node's answer unchanged.
func writeForwarded(c echo.Context, resp ForwardResponse) error {
	if held, ok := c.Response().Writer.(*heldAnswer); ok {
		held.forwarded = true // the owner waited for its store: this one has nothing to wait for
	}
	h := c.Response().Header()
	for k, v := range resp.Header {
		if k != "Content-Length" {
			h[k] = v
		}
	}
	c.Response().WriteHeader(resp.Status)
	_, err := c.Response().Write(resp.Body)
	return err
}

// wrongNode refuses an event stream on a node that does not own its
// identity, naming the owner.
func wrongNode(c echo.Context, owner string) error {
	c.Response().Header().Set(OwnerHeader, owner)
	c.Response().Header().Set("Retry-After", "1")
	return calls.Errorf(codeWrongNode,
		"this identity is served by node %s: open the event stream there (events across nodes come in a later phase)", owner)
}

// routeForwarded runs a request another node forwarded here, unless this
// node no longer owns its identity: then it runs nothing and says so. A
// request sent here as the node that may run the call it names (a
// supervisor's) runs whoever owns its identity, if this node runs the
// call; else it runs nothing and says so the same way.
func (s *Server) routeForwarded(c echo.Context, f *forwarded, next echo.HandlerFunc) error {
	if f.call != "" && c.Path() == recordingFileRoute {
		return s.routeForwardedRecording(c, f, next)
	}
	if f.call != "" {
		if f.sess.Role != calls.RoleSupervisor || !strings.HasPrefix(c.Path(), "/api/calls/:id") || c.Param("id") != f.call {
			return calls.Errorf(calls.CodeInvalidRequest, "only a supervisor's request naming its call is sent to the call's node")
		}
		if !s.runsCall(c.Request().Context(), f.sess, f.call) {
			f.notOwner = "?" // the entry node asks another node, or the owner
			return calls.Errorf(calls.CodeCallNotFound, "this node does not run call %s", f.call)
		}
		return next(&sessionContext{Context: c, sess: f.sess})
	}
	if f.agent != "" {
		if f.sess.Role != calls.RoleSupervisor || agentOfRequest(c) != f.agent {
			return calls.Errorf(calls.CodeInvalidRequest, "only a supervisor's request naming an agent is sent to the agent's node")
		}
		if s.cfg.Forward != nil {
			owner, err := s.cfg.Forward.AgentNode(c.Request().Context(), f.agent)
			if err != nil {
				return &calls.Error{Code: calls.CodeUnavailable, Op: "find the agent's node", Err: err,
					Message: "this node cannot tell which node serves this agent now; try again"}
			}
			if owner != "" {
				f.notOwner = owner
				return calls.Errorf(codeWrongNode, "this agent is served by node %s", owner)
			}
		}
		return next(&sessionContext{Context: c, sess: f.sess})
	}
	if s.cfg.Forward != nil {
		owner, err := s.cfg.Forward.Owner(c.Request().Context(), f.sess.Identifier.RawID())
		if err != nil {
			return &calls.Error{Code: calls.CodeUnavailable, Op: "find the identity's node", Err: err,
				Message: "this node cannot tell which node serves this identity now; try again"}
		}
		if owner != "" {
			f.notOwner = owner
			return calls.Errorf(codeWrongNode, "this identity is served by node %s", owner)
		}
	}
	return next(&sessionContext{Context: c, sess: f.sess})
}

// ServeForwarded runs a request another node forwarded here through this
// server's routes and middleware, as the session it carries (verified by
// the entry node: the caller must trust where req came from). A request
// that is not an authenticated API route, or whose session is not valid,
// is answered with an error, never run.
func (s *Server) ServeForwarded(ctx context.Context, req ForwardRequest) ForwardResponse {
	refuse := func(msg string) ForwardResponse {
		body, _ := json.Marshal(errorBody{Error: errorDetail{Code: calls.CodeInvalidRequest, Message: msg}})
		return ForwardResponse{Status: http.StatusBadRequest, Body: body,
			Header: http.Header{"Content-Type": {echo.MIMEApplicationJSON}}}
	}
	if !strings.HasPrefix(req.Target, "/api/") || strings.HasPrefix(req.Target, "/api/events") {
		return refuse("a forwarded request must name an API route other than the event stream")
	}
	if err := req.Session.Identifier.Validate(); err != nil || !req.Session.Role.Valid() {
		return refuse("a forwarded request must carry a valid identity and role")
	}
	f := &forwarded{sess: req.Session, call: req.Call, agent: req.Agent}
	r, err := http.NewRequestWithContext(context.WithValue(ctx, forwardedKey{}, f), req.Method, req.Target, bytes.NewReader(req.Body))
	if err != nil {
		return refuse("malformed forwarded request: " + err.Error())
	}
	for _, h := range forwardedHeaders {
		if v := req.Header[h]; len(v) > 0 {
			r.Header[h] = v
		}
	}
	r.RemoteAddr = req.Client
	r.RequestURI = req.Target
	rec := &recorder{header: http.Header{}}
	s.echo.ServeHTTP(rec, r)
	if f.notOwner != "" {
		return ForwardResponse{NotOwner: f.notOwner}
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return ForwardResponse{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
}

// forwardedOf answers the forwarded mark of a request, or nil.
func forwardedOf(ctx context.Context) *forwarded {
	f, _ := ctx.Value(forwardedKey{}).(*forwarded)
	return f
}

// recorder keeps a forwarded request's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
