package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// OpenAPI checks real answers against an OpenAPI 3 description (the
// API's, api.OpenAPI): the status must be one the operation documents
// (or its default), and the body must match the schema of its content
// type. It remembers which operations it saw answered, so a test can
// check it drove all of them. It is safe for concurrent use.
type OpenAPI struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string][]int // operationId → statuses seen, in order
}

// registerHTML has answers in text/html (the sign-in's refusal page)
// checked as text.
var registerHTML sync.Once

// NewOpenAPI loads and validates the description.
func NewOpenAPI(spec []byte) (*OpenAPI, error) {
	registerHTML.Do(func() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder) })
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI description: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI description is not valid: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI description: %w", err)
	}
	return &OpenAPI{doc: doc, router: router, seen: map[string][]int{}}, nil
}

// Doc is the loaded description.
func (o *OpenAPI) Doc() *openapi3.T { return o.doc }

// Check validates one answer to req. Requests to paths the description
// does not have are not checked, unless they answered a success under
// /api/ (an undocumented route); websocket upgrades (101) are only
// counted.
func (o *OpenAPI) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := o.router.FindRoute(req)
	if err != nil {
		if status < 300 && strings.HasPrefix(req.URL.Path, "/api/") {
			return fmt.Errorf("%s %s answered %d but the OpenAPI description has no such operation: %w", req.Method, req.URL.Path, status, err)
		}
		return nil
	}
	o.mu.Lock()
	o.seen[route.Operation.OperationID] = append(o.seen[route.Operation.OperationID], status)
	o.mu.Unlock()
	if status == http.StatusSwitchingProtocols {
		return nil
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s (%s) answered %d, which its OpenAPI description does not allow: %w; body %.500s",
			req.Method, req.URL.Path, route.Operation.OperationID, status, err, body)
	}
	return nil
}

// Transport is an http.RoundTripper that sends through next (nil:
// http.DefaultTransport) and checks every answer; an answer the
// description does not allow is the request's error.
func (o *OpenAPI) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &checkingTransport{o: o, next: next}
}

type checkingTransport struct {
	o    *OpenAPI
	next http.RoundTripper
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := t.o.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		return nil, err
	}
	return resp, nil
}

// Missing answers the operations never seen answered with a success
// (2xx or 101), except those in skip, sorted.
func (o *OpenAPI) Missing(skip ...string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var missing []string
	for _, item := range o.doc.Paths.Map() {
		for _, op := range item.Operations() {
			id := op.OperationID
			if slices.Contains(skip, id) {
				continue
			}
			if !slices.ContainsFunc(o.seen[id], func(s int) bool { return s < 300 }) {
				missing = append(missing, id)
			}
		}
	}
	slices.Sort(missing)
	return missing
}
