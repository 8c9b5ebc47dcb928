package api_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/api/apitest"
)

// TestMain checks every answer the tests of this package get through
// http.DefaultClient (apitest.Do, and so every server.do) against the
// OpenAPI description: a status it does not document or a body that does
// not match its schema fails the request.
func TestMain(m *testing.M) {
	spec, err := apitest.NewOpenAPI(api.OpenAPI)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.DefaultClient.Transport = spec.Transport(http.DefaultTransport)
	os.Exit(m.Run())
}

// TestOpenAPIServed: GET /api/openapi.yaml answers the description, which
// loads as valid OpenAPI 3.
func TestOpenAPIServed(t *testing.T) {
	s := newServer(t, serverOptions{})
	body := s.do(http.MethodGet, "/api/openapi.yaml", "", nil, http.StatusOK, nil)
	if string(body) != string(api.OpenAPI) {
		t.Fatal("GET /api/openapi.yaml does not answer the embedded description")
	}
	if _, err := apitest.NewOpenAPI(body); err != nil {
		t.Fatal(err)
	}
}
